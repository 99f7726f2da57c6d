"""Moves a course from its own repository (the system this replaces) into `courses/<slug>/`.

    ./pants run tools:import-course -- <path-to-course-repo> [--slug SLUG] [--title TITLE]
        [--description "What learners do in it."]

Such a repository holds a Dockerfile (at its root, or in a folder such as `docker/`) FROM a
docker-stacks image, a requirements.txt, notebooks and data, sometimes `COPY` lines that
rearrange folders and `RUN` lines of their own. The plan (`plan_import`, a pure function of the
repository's files) takes: the flavor from the `FROM` line (catalog/flavors.py), the requirements
from requirements.txt, `pip install` lines and the files their `-r` names, the folder layout
from the `COPY`/`ADD` lines into the home, every notebook found, and files over the repository
limit as `[[data]]` entries to fill in. The repository's own files (README, LICENSE, build
scripts, the Dockerfile's folder) stay out of the learner's home unless a `COPY` names them.
What it cannot convert (apt packages, other `RUN` commands, `ENV`...) is printed and written as
comments at the top of course.toml, for a person to decide.

Then: `./pants package images/base:: && ./pants run tools:pin-requirements -- <slug>` (the lock),
and `./pants test courses/<slug>::`, which names whatever is still to decide.
"""

from __future__ import annotations

import argparse
import hashlib
import posixpath
import re
import shlex
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from catalog import find_repo_root
from catalog.catalog import COURSES_DIR
from catalog.course import MAX_REPO_FILE_BYTES, SLUG_PATTERN
from catalog.course_toml import TODO_DESCRIPTION, CourseDraft, DataDraft, render_course_toml
from catalog.flavors import DEFAULT_FLAVOR, flavor_of_image
from tools.lock import REQUIREMENTS_FILE

HOME = "/home/jovyan"
#: Repository files that are the old build, not course content.
BUILD_FILES = {"Dockerfile", REQUIREMENTS_FILE, ".dockerignore", ".gitignore"}
_IGNORED = (".git/", ".github/", ".ipynb_checkpoints/", "__pycache__/")
#: Top-level files that describe or build the repository, not the course: left out of the
#: learner's home when a `COPY .` would take them (a `COPY` that names one keeps it).
_REPOSITORY_FILES = re.compile(
    r"^(README|LICEN[CS]E|COPYING|CONTRIBUTING|CHANGELOG|CODE_OF_CONDUCT)(\.[A-Za-z]+)?$"
    r"|^(Makefile|docker-compose\.ya?ml|[^/]+\.sh)$"
)
#: The files `plan_import` reads: Dockerfiles and requirement files.
_TEXT_INPUTS = re.compile(r"^(Dockerfile(\..+)?|.*\.(txt|in))$")
#: Commands of a `RUN` line that only clean up after an install: nothing to convert.
_CLEANUP = re.compile(
    r"^(rm\s+(-\S+\s+)*[\"']?(/tmp/|/var/lib/apt/|/var/cache/|/root/\.cache|\$HOME/\.cache|"
    r"/home/[^/\s]+/\.cache)\S*[\"']?(\s+[\"']?(/tmp/|/var/lib/apt/|/var/cache/)\S*[\"']?)*$"
    r"|fix-permissions\b|apt-get (update|clean|autoremove)\b|pip cache purge$|conda clean\b"
    r"|mamba clean\b)"
)


@dataclass(frozen=True)
class ImportPlan:
    flavor: str
    #: destination in the course directory -> source in the repository
    files: Mapping[str, str]
    requirements: tuple[str, ...]
    notebooks: tuple[str, ...]
    #: destination -> (size, sha256) of files over the repository limit: `[[data]]` entries
    data: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    #: what could not be converted, one line each, for a person to decide
    unconverted: tuple[str, ...] = ()


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def find_dockerfile(files: Iterable[str]) -> str | None:
    """The repository's Dockerfile: the one at its root, else the least deep one (`docker/`)."""
    found = sorted(
        (f for f in files if posixpath.basename(f) == "Dockerfile"),
        key=lambda f: (f.count("/"), f),
    )
    return found[0] if found else None


def run_commands(arguments: str) -> list[str]:
    """The commands of a `RUN` line (shell `&&`, `||` and `;` between them)."""
    return [c.strip() for c in re.split(r"&&|\|\||;", arguments) if c.strip()]


def pip_install(command: str) -> tuple[list[str], list[str]] | None:
    """(packages, requirement files given with -r) of a `pip install` command; None if the
    command is something else."""
    words = shlex.split(command)
    for start in range(len(words) - 1):
        if words[start].endswith("pip") and words[start + 1] == "install":
            rest = words[start + 2 :]
            packages, files = [], []
            for previous, word in zip(["", *rest], rest):
                if previous in ("-r", "--requirement"):
                    files.append(word)
                elif not word.startswith("-") and previous not in ("-c", "--constraint"):
                    packages.append(word)
            return packages, files
    return None


def requirement_lines(text: str) -> list[str]:
    """The requirements of a requirements file: comments, blank lines and options left out."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def _home_path(destination: str, workdir: str) -> str | None:
    """A COPY destination as a path in the learner's home ('' for the home); None elsewhere."""
    for prefix in ("$HOME", "${HOME}"):
        if destination.startswith(prefix):
            destination = HOME + destination[len(prefix) :]
    if not destination.startswith("/"):
        destination = posixpath.join(workdir, destination)
    destination = posixpath.normpath(destination)
    if destination == HOME:
        return ""
    if destination.startswith(HOME + "/"):
        return destination[len(HOME) + 1 :]
    return None


def _copy(sources: list[str], destination: str, files: list[str]) -> dict[str, str]:
    """Destination -> source for one COPY, with Docker's rules for folders and single files."""
    placed = {}
    for source in sources:
        source = posixpath.normpath(source)
        if source == ".":
            placed.update({posixpath.join(destination, f): f for f in files})
        elif source in files:
            into_folder = destination == "" or destination.endswith("/") or len(sources) > 1
            name = posixpath.basename(source) if into_folder else ""
            placed[posixpath.normpath(posixpath.join(destination, name))] = source
        else:
            for f in files:
                if f.startswith(source + "/"):
                    placed[posixpath.join(destination, f[len(source) + 1 :])] = f
    return {posixpath.normpath(k): v for k, v in placed.items()}


def plan_import(
    sizes: Mapping[str, int],
    texts: Mapping[str, str],
    digests: Mapping[str, str] | None = None,
    limit: int = MAX_REPO_FILE_BYTES,
) -> ImportPlan:
    """What a course repository becomes: `sizes` is every file (relative path -> bytes),
    `texts` the text of its Dockerfiles and requirement files, `digests` the sha256 of the
    files over `limit`."""
    files = sorted(f for f in sizes if not f.startswith(_IGNORED) and "/." not in f"/{f}")
    dockerfile = find_dockerfile(files)
    unconverted: list[str] = []
    flavor = None
    packages: list[str] = []
    placed: dict[str, str] = {}
    #: Where each single file a COPY named landed in the image (for `pip install -r`):
    #: image path -> (source, the instruction, whether it went outside the learner's home).
    elsewhere: dict[str, tuple[str, str, bool]] = {}
    #: Requirement files a `pip install -r` read.
    installed: set[str] = set()
    #: The repository's own files a `COPY .` (or no COPY at all) would have put in the home.
    held_back: set[str] = set()
    copied = False
    workdir = HOME
    for keyword, args in dockerfile_instructions(texts.get(dockerfile or "", "")):
        if keyword == "FROM":
            image = args.split()[0]
            flavor = flavor_of_image(image)
            if flavor is None:
                unconverted.append(
                    f"FROM {args}: not a docker-stacks image; flavor set to {DEFAULT_FLAVOR}"
                )
        elif keyword in ("COPY", "ADD"):
            words = [w for w in shlex.split(args) if not w.startswith("--")]
            if len(words) < 2:
                unconverted.append(f"{keyword} {args}")
                continue
            *sources, target = words
            destination = _home_path(target, workdir)
            into_folder = len(sources) > 1 or target.endswith("/") or target in (".", "./")
            for source in (s for s in sources if s in files):
                path = posixpath.join(target, posixpath.basename(source)) if into_folder else target
                in_image = posixpath.normpath(posixpath.join(workdir, path))
                elsewhere[in_image] = (source, f"{keyword} {args}", destination is None)
            if destination is None:
                if not all(s in files for s in sources):
                    unconverted.append(f"{keyword} {args}: not into the learner's home")
                continue
            if all(s in BUILD_FILES for s in sources):
                continue  # the old build's own files (its requirements.txt), not the course's
            copied = True
            whole = [s for s in sources if posixpath.normpath(s) == "."]
            placed.update(_copy(sources, destination, files))
            if whole:  # `COPY .`: the repository's own files are not the course's
                for f in _repository_files(files, dockerfile):
                    if placed.pop(posixpath.normpath(posixpath.join(destination, f)), None):
                        held_back.add(f)
        elif keyword == "RUN":
            for command in run_commands(args):
                named, read, problems = _run_command(command, workdir, files, elsewhere, texts)
                packages += named
                installed |= read
                unconverted += problems
        elif keyword == "WORKDIR":
            workdir = posixpath.join(workdir, args)
        elif keyword == "USER" or keyword == "ARG":
            continue
        else:
            unconverted.append(f"{keyword} {args}")
    if flavor is None:
        flavor = DEFAULT_FLAVOR
        if dockerfile is None:
            unconverted.append(f"no Dockerfile: flavor set to {DEFAULT_FLAVOR}")
    if not copied:
        held_back |= set(_repository_files(files, dockerfile))
        placed = {f: f for f in files if f not in held_back}
    # A single file copied out of the home counts only where an install read it.
    unconverted += sorted(
        {
            f"{instruction}: not into the learner's home"
            for source, instruction, outside in elsewhere.values()
            if outside and source not in installed and source not in BUILD_FILES
        }
    )
    build = installed | {dockerfile}
    placed = {
        d: s
        for d, s in placed.items()
        if s not in BUILD_FILES and s not in build and not d.startswith("..")
    }
    left_out = sorted(f for f in held_back if _REPOSITORY_FILES.match(f))
    if left_out:
        unconverted.append(
            f"left out of the learner's home, as the repository's own: {', '.join(left_out)} "
            "(copy one into the course if learners need it)"
        )
    if REQUIREMENTS_FILE in texts and REQUIREMENTS_FILE not in installed:
        packages += requirement_lines(texts[REQUIREMENTS_FILE])
    data = {
        d: (sizes[s], (digests or {}).get(s, "")) for d, s in placed.items() if sizes[s] > limit
    }
    return ImportPlan(
        flavor=flavor,
        files={d: s for d, s in sorted(placed.items()) if d not in data},
        requirements=tuple(dict.fromkeys(packages)),
        notebooks=tuple(sorted(d for d in placed if d.endswith(".ipynb"))),
        data=data,
        unconverted=tuple(unconverted),
    )


def _repository_files(files: list[str], dockerfile: str | None) -> list[str]:
    """The files that describe or build the repository: README, LICENSE, build scripts, and
    the folder of a Dockerfile that is not at the root (`docker/`)."""
    folder = posixpath.dirname(dockerfile) + "/" if dockerfile and "/" in dockerfile else None
    return [f for f in files if _REPOSITORY_FILES.match(f) or (folder and f.startswith(folder))]


def _run_command(
    command: str,
    workdir: str,
    files: list[str],
    elsewhere: Mapping[str, tuple[str, str, bool]],
    texts: Mapping[str, str],
) -> tuple[list[str], set[str], list[str]]:
    """One command of a `RUN` line: (the packages it installs, the repository's requirement
    files it reads, what cannot be converted)."""
    pip = pip_install(command)
    if pip is not None:
        named, requirement_files = pip
        packages, read, problems = list(named), set(), []
        for name in requirement_files:
            # The file as the COPY before put it there, or as the build context has it.
            copied = elsewhere.get(posixpath.normpath(posixpath.join(workdir, name)))
            source = copied[0] if copied else (name if name in files else None)
            if source is None or source not in texts:
                problems.append(f"RUN {command}: {name} is not a file of the repository")
            else:
                read.add(source)
                packages += requirement_lines(texts[source])
        return packages, read, problems
    if _CLEANUP.match(command):
        return [], set(), []
    apt = re.search(r"apt-get install\s+(?:-\S+\s+)*(.+)", command)
    if apt:
        names = [w for w in apt.group(1).split() if not w.startswith("-")]
        return (
            [],
            set(),
            [
                f"RUN apt-get install {' '.join(names)}: Debian packages; a course "
                "Dockerfile of its own (README: add a course) or the base image"
            ],
        )
    return [], set(), [f"RUN {command}: no equivalent; decide whether it matters"]


def course_toml(plan: ImportPlan, title: str, source: str, description: str | None = None) -> str:
    header = [f"Imported from {source} by ./pants run tools:import-course."]
    if plan.unconverted:
        header.append("Not converted, for a person to decide (then delete these lines):")
        header += [f"  {item}" for item in plan.unconverted]
    data = tuple(
        DataDraft(
            path,
            sha256,
            note=f"{size / 1e6:.0f} MB: over the repository limit, publish it and say where",
        )
        for path, (size, sha256) in sorted(plan.data.items())
    )
    draft = CourseDraft(
        title,
        plan.flavor,
        plan.notebooks,
        data=data,
        header=tuple(header),
        description=description or TODO_DESCRIPTION,
    )
    return render_course_toml(draft)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repository", type=Path, help="the course repository (a folder)")
    parser.add_argument("--slug", help="the course's slug (default: the folder's name)")
    parser.add_argument("--title", help="the course's title (default: from the slug)")
    parser.add_argument(
        "--description", help="one or two sentences learners read (default: a TODO to write)"
    )
    parser.add_argument("--root", type=Path, help="the monorepo (default: this checkout)")
    args = parser.parse_args(argv)
    source: Path = args.repository
    if not source.is_dir():
        parser.error(f"{source} is not a folder")
    slug = args.slug or source.resolve().name.lower()
    if not SLUG_PATTERN.match(slug):
        parser.error(f"{slug!r} is not a course slug (lowercase letters, digits, '-'): use --slug")
    target = (args.root or find_repo_root()) / COURSES_DIR / slug
    if target.exists():
        parser.error(f"{target} already exists")
    sizes = {
        p.relative_to(source).as_posix(): p.stat().st_size
        for p in sorted(source.rglob("*"))
        if p.is_file()
    }
    digests = {f: _sha256(source / f) for f, size in sizes.items() if size > MAX_REPO_FILE_BYTES}
    texts = {
        f: (source / f).read_text(errors="replace")
        for f, size in sizes.items()
        if size < 1_000_000 and _TEXT_INPUTS.match(posixpath.basename(f))
    }
    plan = plan_import(sizes, texts, digests, MAX_REPO_FILE_BYTES)
    print(f"import-course: {source} -> {target} (flavor {plan.flavor})", flush=True)
    for destination, origin in plan.files.items():
        (target / destination).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / origin, target / destination)
    title = args.title or slug.replace("-", " ").capitalize()
    (target / "course.toml").write_text(course_toml(plan, title, source.name, args.description))
    (target / REQUIREMENTS_FILE).write_text("".join(f"{r}\n" for r in plan.requirements))
    (target / "BUILD").write_text("course()\n")
    print(f"import-course: {len(plan.files)} files, notebooks: {', '.join(plan.notebooks)}")
    for path in plan.data:
        print(f"import-course: {path} is over the repository limit: a [[data]] entry to fill in")
    for item in plan.unconverted:
        # One stream: `./pants run` relays stdout and stderr apart, which splits lines.
        print(f"import-course: not converted: {item}")
    print(
        "Next: pin the requirements (`name==version`), then\n"
        f"  ./pants package images/base:: && ./pants run tools:pin-requirements -- {slug}\n"
        f"  ./pants test courses/{slug}::     names whatever is still to decide"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
