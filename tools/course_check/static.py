"""Static checks of one course directory: no image, no kernel, a second or so per course.

`check_course(directory)` reads the directory and returns a CheckReport; every check is a
function of plain data (`CourseFiles`) returning findings, so each is tested on its own.

Checks (model.CHECKS, in that order): metadata (every problem of the catalog's lenient reading),
notebook-format (nbformat schema), syntax (every code cell parses once magics are removed;
cells tagged `raises-exception` or recorded in expected-failures.toml fail on purpose, and no check
looks into them), missing-dependency (every import is provided by the flavor, requirements.txt, the stdlib or the
course's own modules), missing-data (every relative path a notebook reads exists), missing-image
(every image a markdown cell shows from a file exists), file-size (nothing over the repository
limit: use course.toml [[data]]), expected-failures (expected-failures.toml names the course's
cells), requirements-pinned, requirements-lock (requirements.lock installs and covers
requirements.txt, which it was made from).
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import nbformat

from catalog import CourseReading, course_files, read_course_leniently
from catalog.course import MAX_REPO_FILE_BYTES
from tools.course_check.dependencies import (
    Flavor,
    load_flavors,
    missing_module_advice,
    modules_of_requirements,
    parse_requirements,
    suggest_distribution,
)
from tools.course_check.expected import (
    EXPECTED_FILE,
    ExpectedFailuresError,
    code_cell_numbers,
    parse_expected,
)
from tools.course_check.model import CheckReport, Finding
from tools.course_check.notebook_code import (
    ParsedCell,
    code_cells,
    file_accesses,
    image_references,
    imports,
    parse_cells,
)
from tools.lock import LOCK_FILE, REQUIREMENTS_FILE, LockError, normalize, parse_lock, pinned_by

HOME = "/home/jovyan/"


@dataclass(frozen=True)
class CourseFiles:
    """A course directory as plain data: what the checks look at."""

    slug: str
    metadata: CourseReading  # the catalog's lenient reading: the course, or every problem
    files: tuple[str, ...]  # every file, relative, POSIX
    sizes: Mapping[str, int]
    requirements: str | None
    notebooks: Mapping[str, str] = field(default_factory=dict)  # every .ipynb: path -> text
    lock: str | None = None  # requirements.lock's text; None when missing
    expected: str | None = None  # expected-failures.toml's text; None when missing

    @staticmethod
    def read(directory: Path) -> CourseFiles:
        files = tuple(course_files(directory))
        requirements = directory / REQUIREMENTS_FILE
        lock = directory / LOCK_FILE
        expected = directory / EXPECTED_FILE
        return CourseFiles(
            slug=directory.name,
            metadata=read_course_leniently(directory),
            files=files,
            sizes={f: (directory / f).stat().st_size for f in files},
            requirements=(
                requirements.read_text(encoding="utf-8") if requirements.is_file() else None
            ),
            notebooks={
                f: (directory / f).read_text(encoding="utf-8", errors="replace")
                for f in files
                if f.endswith(".ipynb")
            },
            lock=lock.read_text(encoding="utf-8") if lock.is_file() else None,
            expected=expected.read_text(encoding="utf-8") if expected.is_file() else None,
        )


# --- metadata -------------------------------------------------------------------------------


def check_metadata(reading: CourseReading) -> list[Finding]:
    """Every problem the catalog finds: course.toml, the files it requires, the directory name."""
    return [
        Finding(
            "metadata",
            f"{problem.key}: {problem.message}" if problem.key else problem.message,
            problem.file or None,
            details={"field": problem.key},
        )
        for problem in reading.problems
    ]


def check_description(reading: CourseReading) -> list[Finding]:
    """The description learners read in the course list is the course's own, not the TODO that
    new-course and import-course leave for a person to write."""
    course = reading.course
    if course is None or not re.match(r"TODO\b", course.description):
        return []
    return [
        Finding(
            "metadata",
            "description: still the placeholder; write one or two sentences that tell learners "
            "what the course is about (or pass --description to new-course/import-course)",
            "course.toml",
            details={"field": "description"},
        )
    ]


# --- notebooks --------------------------------------------------------------------------------


def _elsewhere_hint(path: str, files: Sequence[str]) -> str:
    """`; a file with that name is at X` when the course has the file under another folder."""
    name = posixpath.basename(path)
    elsewhere = sorted(f for f in files if posixpath.basename(f) == name and f != path)
    return f"; a file with that name is at {', '.join(elsewhere)}" if elsewhere else ""


def check_notebook_format(path: str, text: str) -> tuple[Any | None, list[Finding]]:
    """Reads one notebook with nbformat and validates it against its schema."""
    try:
        notebook = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    except Exception as e:  # nbformat raises JSON, reader and validation errors
        return None, [Finding("notebook-format", f"is not a readable notebook: {e}", path)]
    if notebook.get("nbformat", 0) < 4:
        return None, [
            Finding(
                "notebook-format",
                f"is nbformat {notebook.get('nbformat')}; save it with JupyterLab (nbformat 4)",
                path,
            )
        ]
    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as e:
        message = str(e).splitlines()[0]
        return None, [Finding("notebook-format", f"is not valid nbformat: {message}", path)]
    return notebook, []


def check_syntax(
    path: str, notebook: Mapping[str, Any], recorded: Iterable[int] = ()
) -> tuple[list[ParsedCell], list[Finding]]:
    """Every code cell parses, less those that fail on purpose: tagged `raises-exception`, or
    recorded in expected-failures.toml (a student's blank, `def ...`, does not parse)."""
    recorded = set(recorded)
    cells = [dataclasses.replace(c, raises_exception=True) if c.number in recorded else c
             for c in code_cells(notebook)]  # fmt: skip
    parsed, errors = parse_cells(cells)
    return parsed, [
        Finding(
            "syntax",
            f"SyntaxError: {e.message} (line {e.line} of the cell: {e.text!r})",
            path,
            e.cell,
            details={"line": str(e.line)},
        )
        for e in errors
    ]


def _local_module(module: str, notebook_dir: str, files: Sequence[str]) -> bool:
    for base in {notebook_dir, ""}:
        stem = posixpath.join(base, module) if base else module
        if f"{stem}.py" in files or any(f.startswith(f"{stem}/") for f in files):
            return True
    return False


def check_imports(
    path: str,
    parsed: Sequence[ParsedCell],
    flavor: Flavor,
    requirement_modules: Mapping[str, str],
    files: Sequence[str],
    flavors: Mapping[str, Flavor],
) -> list[Finding]:
    findings = []
    reported: set[str] = set()
    notebook_dir = posixpath.dirname(path)
    written = {c.cell.writes_file for c in parsed if c.cell.writes_file}
    for found in imports(parsed):
        top = found.top_level
        if found.optional or top in reported:
            continue
        if top in flavor.modules or top in requirement_modules or top == "__future__":
            continue
        if _local_module(top, notebook_dir, files) or f"{top}.py" in written:
            continue
        reported.add(top)
        distribution = suggest_distribution(found.module, flavors)
        advice = missing_module_advice(found.module, flavors, flavor.name)
        findings.append(
            Finding(
                "missing-dependency",
                f"imports `{found.module}` (line {found.line} of the cell), which neither the "
                f"{flavor.name} base image nor requirements.txt provides; {advice}",
                path,
                found.cell,
                details={"module": top, "distribution": distribution or ""},
            )
        )
    return findings


def _resolve(path: str, notebook_dir: str) -> str | None:
    """A path as the notebook sees it -> relative to the course directory (the learner's home)."""
    if path.startswith("~/"):
        return posixpath.normpath(path[2:])
    if path.startswith(HOME):
        return posixpath.normpath(path[len(HOME) :])
    if path.startswith("/"):
        return None  # somewhere in the image, not course content
    return posixpath.normpath(posixpath.join(notebook_dir, path))


def check_data_paths(
    path: str, parsed: Sequence[ParsedCell], files: Sequence[str], fetched: Sequence[str]
) -> list[Finding]:
    reads, writes = file_accesses(parsed)
    notebook_dir = posixpath.dirname(path)
    available = set(files) | set(fetched)
    written = {_resolve(w, notebook_dir) for w in writes}
    findings = []
    for read in reads:
        if "://" in read.path or not read.path.strip():
            continue
        target = _resolve(read.path, notebook_dir)
        if target is None or target in written:
            continue
        if target == ".." or target.startswith("../"):
            findings.append(
                Finding(
                    "missing-data",
                    f"reads {read.path!r} ({read.function}, line {read.line} of the cell), which "
                    "is outside the course directory: learners get only the course directory",
                    path,
                    read.cell,
                    details={"path": read.path, "resolved": target},
                )
            )
            continue
        if any(ch in target for ch in "*?["):
            if any(fnmatch(f, target) for f in available):
                continue
        elif target in available or any(f.startswith(target.rstrip("/") + "/") for f in available):
            continue
        elif any(target.startswith(folder) for folder in fetched if folder.endswith("/")):
            continue  # in an archive unpacked at build time
        hint = _elsewhere_hint(target, list(available))
        findings.append(
            Finding(
                "missing-data",
                f"reads {read.path!r} ({read.function}, line {read.line} of the cell), which "
                f"would be {target} in the course directory, but there is no such file{hint}. "
                "Add it to the course (over 100 MB: a [[data]] entry in course.toml)",
                path,
                read.cell,
                details={"path": read.path, "resolved": target},
            )
        )
    return findings


def check_images(path: str, notebook: Mapping[str, Any], files: Sequence[str]) -> list[Finding]:
    """Every image a markdown cell shows from a file is in the course."""
    notebook_dir = posixpath.dirname(path)
    findings = []
    for image in image_references(notebook):
        target = _resolve(image.path, notebook_dir)
        if target is None or target in files:
            continue
        hint = _elsewhere_hint(target, files)
        findings.append(
            Finding(
                "missing-image",
                f"shows the image {image.path!r}, which would be {target} in the course "
                f"directory, but there is no such file{hint}",
                path,
                image.cell,
                details={"path": image.path, "resolved": target},
            )
        )
    return findings


def recorded_failures(course: CourseFiles) -> dict[str, dict[int, str]]:
    """The cells expected-failures.toml records ({} without it, or when it is wrong: that is
    check_expected_failures' finding)."""
    if course.expected is None:
        return {}
    cells = {path: code_cell_numbers(text) for path, text in course.notebooks.items()}
    try:
        return parse_expected(course.expected, cells)
    except ExpectedFailuresError:
        return {}


def check_expected_failures(course: CourseFiles) -> list[Finding]:
    """expected-failures.toml names notebooks and code cells of this course (tools/course_check/
    expected.py)."""
    if course.expected is None:
        return []
    cells = {path: code_cell_numbers(text) for path, text in course.notebooks.items()}
    try:
        parse_expected(course.expected, cells)
    except ExpectedFailuresError as e:
        return [Finding("expected-failures", str(e), EXPECTED_FILE)]
    return []


# --- files ------------------------------------------------------------------------------------


def check_file_sizes(course: CourseFiles, limit: int = MAX_REPO_FILE_BYTES) -> list[Finding]:
    return [
        Finding(
            "file-size",
            f"is {size / 1e6:.1f} MB, over the repository's {limit / 1e6:.0f} MB limit: remove it "
            "and list it in course.toml as [[data]] (path, https url, sha256); the image build "
            "fetches and verifies it (images/base/fetch-course-data)",
            name,
            details={"bytes": str(size)},
        )
        for name, size in sorted(course.sizes.items())
        if size > limit
    ]


def check_requirements(text: str | None) -> list[Finding]:
    if text is None:
        return []  # the metadata check reports a missing requirements.txt
    requirements, problems = parse_requirements(text)
    findings = [
        Finding("requirements-pinned", f"line {p.line}: {p.text!r} {p.message}", "requirements.txt")
        for p in problems
    ]
    findings += [
        Finding(
            "requirements-pinned",
            f"line {r.line}: {r.text!r} is not pinned: use an exact version, like "
            f"`{r.name}==1.2.3`, so that every build installs the same thing",
            "requirements.txt",
            details={"requirement": r.name},
        )
        for r in requirements
        if not r.pinned
    ]
    return findings


def check_lock(
    slug: str, requirements: str | None, lock: str | None, flavor: Flavor | None
) -> list[Finding]:
    """requirements.lock is installable and covers every requirement (with the flavor's packages)."""
    if requirements is None:
        return []  # the metadata check reports a missing requirements.txt
    fix = f"run `./pants run tools:pin-requirements -- {slug}`"
    if lock is None:
        return [
            Finding(
                "requirements-lock",
                f"{LOCK_FILE} is missing (the image installs exactly that lock); {fix}",
                LOCK_FILE,
            )
        ]
    try:
        parsed = parse_lock(lock, LOCK_FILE)
    except LockError as e:
        return [Finding("requirements-lock", f"{e}; {fix}", LOCK_FILE)]
    findings = []
    if not parsed.matches(requirements):
        findings.append(
            Finding(
                "requirements-lock",
                f"{REQUIREMENTS_FILE} changed since {LOCK_FILE} was made; {fix}",
                LOCK_FILE,
            )
        )
    locked = parsed.versions()
    below = dict(flavor.installed) if flavor else {}
    the_flavor = f"the {flavor.name} flavor" if flavor else "the flavor"
    for requirement in parse_requirements(requirements)[0]:
        name = normalize(requirement.name)
        have = locked.get(name) or below.get(name)
        if have is None:
            message = (
                f"{requirement.name} is not covered: neither {LOCK_FILE} nor {the_flavor} has it"
            )
        elif requirement.version and not pinned_by(requirement.version, have):
            source = LOCK_FILE if name in locked else the_flavor
            message = (
                f"{requirement.text!r} asks for {requirement.version}, but {source} has "
                f"{name}=={have}"
            )
        else:
            continue
        findings.append(
            Finding(
                "requirements-lock",
                f"line {requirement.line}: {message}; {fix}",
                REQUIREMENTS_FILE,
                details={"requirement": requirement.name},
            )
        )
    return findings


# --- the whole course -------------------------------------------------------------------------


def check_course_files(
    course: CourseFiles, flavors: Mapping[str, Flavor] | None = None
) -> CheckReport:
    flavors = load_flavors() if flavors is None else flavors
    findings = check_metadata(course.metadata) + check_description(course.metadata)
    # What could be read despite other problems: the flavor, the valid [[data]] entries.
    # An unpacked archive is a folder: `path/` (whatever is read under it may be in it).
    flavor_name = course.metadata.flavor
    fetched = [d.path + ("/" if d.unpack else "") for d in course.metadata.data]
    requirements, _ = parse_requirements(course.requirements or "")
    requirement_modules = modules_of_requirements(requirements, flavors)
    # What the locked distributions install, from their own files (the lock's `# modules:`).
    try:
        locked_modules = parse_lock(course.lock or "").modules
    except LockError:  # reported by check_lock
        locked_modules = {}
    for distribution, modules in locked_modules.items():
        for module in modules:
            requirement_modules.setdefault(module, distribution)
    flavor = flavors.get(flavor_name) if flavor_name else None
    recorded = recorded_failures(course)
    for path in sorted(course.notebooks):
        notebook, format_findings = check_notebook_format(path, course.notebooks[path])
        findings += format_findings
        if notebook is None:
            continue
        # Every notebook, listed or not: whatever is in the directory ships to learners.
        parsed, syntax_findings = check_syntax(path, notebook, recorded.get(path, {}))
        findings += syntax_findings
        if flavor is not None:
            findings += check_imports(
                path, parsed, flavor, requirement_modules, course.files, flavors
            )
        findings += check_data_paths(path, parsed, course.files, fetched)
        findings += check_images(path, notebook, course.files)
    findings += check_file_sizes(course)
    findings += check_expected_failures(course)
    findings += check_requirements(course.requirements)
    findings += check_lock(course.slug, course.requirements, course.lock, flavor)
    return CheckReport(course.slug, tuple(findings))


def check_course(directory: Path, flavors: Mapping[str, Flavor] | None = None) -> CheckReport:
    return check_course_files(CourseFiles.read(directory), flavors)
