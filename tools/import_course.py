"""Moves a course from its own repository (the system this replaces) into `courses/<slug>/`.

    ./pants run tools:import-course -- <path-to-course-repo> [--slug SLUG] [--title TITLE]

Such a repository holds a Dockerfile FROM a docker-stacks image, a requirements.txt, notebooks and
data, sometimes `COPY` lines that rearrange folders and `RUN` lines of their own. The plan
(`plan_import`, a pure function of the repository's files) takes: the flavor from the `FROM`
line (a tensorflow image -> `tensorflow`, any other docker-stacks image -> `pytorch`), the
requirements from requirements.txt and `pip install` lines, the folder layout from the `COPY`/
`ADD` lines into the home, every notebook found, and files over the repository limit as
`[[data]]` entries to fill in. What it cannot convert (apt packages, other `RUN` lines, `ENV`...)
is printed and written as comments at the top of course.toml, for a person to decide.

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
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from catalog import find_repo_root
from catalog.catalog import COURSES_DIR
from catalog.course import MAX_REPO_FILE_BYTES, SLUG_PATTERN
from catalog.course_toml import CourseDraft, DataDraft, render_course_toml
from catalog.flavors import DEFAULT_FLAVOR, flavor_of_image
from tools.lock import REQUIREMENTS_FILE

HOME = "/home/jovyan"
#: Repository files that are the old build, not course content.
BUILD_FILES = {"Dockerfile", REQUIREMENTS_FILE, ".dockerignore", ".gitignore"}
_IGNORED = (".git/", ".github/", ".ipynb_checkpoints/", "__pycache__/")


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


def _pip_packages(command: str) -> list[str] | None:
    """The packages of a `pip install` command (None if it is not one, or not only that)."""
    words = shlex.split(command)
    for start in range(len(words) - 1):
        if words[start].endswith("pip") and words[start + 1] == "install":
            rest = words[start + 2 :]
            if any(w in ("&&", ";", "||") for w in rest):
                return None
            options_with_values = ("-r", "--requirement", "-c", "--constraint")
            return [
                w
                for previous, w in zip(["", *rest], rest)
                if not w.startswith("-") and previous not in options_with_values
            ]
    return None


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
    dockerfile: str | None,
    requirements: str | None,
    digests: Mapping[str, str] | None = None,
    limit: int = MAX_REPO_FILE_BYTES,
) -> ImportPlan:
    """What a course repository becomes: `sizes` is every file (relative path -> bytes),
    `digests` the sha256 of those over `limit`."""
    files = sorted(f for f in sizes if not f.startswith(_IGNORED) and "/." not in f"/{f}")
    unconverted: list[str] = []
    flavor = None
    packages: list[str] = []
    placed: dict[str, str] = {}
    copied = False
    workdir = HOME
    for keyword, args in dockerfile_instructions(dockerfile or ""):
        if keyword == "FROM":
            image = args.split()[0]
            flavor = flavor_of_image(image)
            if flavor is None:
                unconverted.append(
                    f"FROM {args}: not a docker-stacks image; flavor set to {DEFAULT_FLAVOR}"
                )
        elif keyword in ("COPY", "ADD"):
            words = [w for w in shlex.split(args) if not w.startswith("--")]
            destination = _home_path(words[-1], workdir) if len(words) > 1 else None
            if words[:-1] == [REQUIREMENTS_FILE]:
                continue  # the old build's own install step
            if destination is None:
                unconverted.append(f"{keyword} {args}: not into the learner's home")
                continue
            copied = True
            placed.update(_copy(words[:-1], destination, files))
        elif keyword == "RUN":
            pip = _pip_packages(args)
            if pip is not None:
                packages += pip
            else:
                apt = re.search(r"apt-get install\s+(?:-\S+\s+)*([^&;|]+)", args)
                if apt:
                    names = [w for w in apt.group(1).split() if not w.startswith("-")]
                    unconverted.append(
                        f"RUN apt-get install {' '.join(names)}: Debian packages; a course "
                        "Dockerfile of its own (README: add a course) or the base image"
                    )
                else:
                    unconverted.append(f"RUN {args}: no equivalent; decide whether it matters")
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
        placed = {f: f for f in files}
    placed = {d: s for d, s in placed.items() if s not in BUILD_FILES and not d.startswith("..")}
    for line in (requirements or "").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            packages.append(line)
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


def course_toml(plan: ImportPlan, title: str, source: str) -> str:
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
    draft = CourseDraft(title, plan.flavor, plan.notebooks, data=data, header=tuple(header))
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
    dockerfile, requirements = source / "Dockerfile", source / REQUIREMENTS_FILE
    plan = plan_import(
        sizes,
        dockerfile.read_text() if dockerfile.is_file() else None,
        requirements.read_text() if requirements.is_file() else None,
        digests,
        MAX_REPO_FILE_BYTES,
    )
    print(f"import-course: {source} -> {target} (flavor {plan.flavor})")
    for destination, origin in plan.files.items():
        (target / destination).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / origin, target / destination)
    title = args.title or slug.replace("-", " ").capitalize()
    (target / "course.toml").write_text(course_toml(plan, title, source.name))
    (target / REQUIREMENTS_FILE).write_text("".join(f"{r}\n" for r in plan.requirements))
    (target / "BUILD").write_text("course()\n")
    print(f"import-course: {len(plan.files)} files, notebooks: {', '.join(plan.notebooks)}")
    for path in plan.data:
        print(f"import-course: {path} is over the repository limit: a [[data]] entry to fill in")
    for item in plan.unconverted:
        print(f"import-course: not converted: {item}", file=sys.stderr)
    print(
        "Next: pin the requirements (`name==version`), then\n"
        f"  ./pants package images/base:: && ./pants run tools:pin-requirements -- {slug}\n"
        f"  ./pants test courses/{slug}::     names whatever is still to decide"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
