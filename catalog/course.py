"""What a course is, and how one course's metadata file is read and validated.

This module is the only place that knows the metadata format. It is plain data in and out
(the file's text and the list of files in the course directory), so the Pants plugin, which
reads files through the Pants engine, and every other consumer share the same rules.

Two readings, one set of rules: `parse_course` returns the Course or raises CatalogError at the
first problem; `parse_course_leniently` never raises and lists every problem as data (`Problem`:
file, key, message), for the static checks.

It must import on Python 3.9 (Pants' own interpreter) as well as 3.11.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from catalog.flavors import BY_NAME, FLAVORS
from catalog.flavors import default_resources as _flavor_resources

try:  # Python 3.11+
    import tomllib as _toml_reader

    def _parse_toml(text: str) -> dict[str, Any]:
        return _toml_reader.loads(text)

    _TomlError: type[Exception] = _toml_reader.TOMLDecodeError
except ImportError:  # Python 3.9, inside Pants, which ships `toml`
    import toml as _toml_reader  # type: ignore[no-redef]

    def _parse_toml(text: str) -> dict[str, Any]:
        return dict(_toml_reader.loads(text))

    _TomlError = _toml_reader.TomlDecodeError  # type: ignore[attr-defined]


METADATA_FILE = "course.toml"
#: Lowercase letters and digits in words joined by single '-' (`--` names a GPU course's CPU
#: image, below), at most 63 characters: a Docker tag and a Kubernetes label value.
SLUG_PATTERN = re.compile(r"^(?=.{1,63}$)[a-z0-9]+(?:-[a-z0-9]+)*$")
#: The image map key of a GPU course's CPU image is its slug with this suffix (`<slug>--cpu`):
#: where a GPU course's server has no GPU, it runs its flavor's CPU image, not the CUDA one.
CPU_IMAGE_SUFFIX = "--cpu"
#: The longest slug of a GPU course: its CPU image's content tag `<slug>--cpu-<64 hex>` must fit
#: Docker's 128 characters.
GPU_SLUG_MAX = 128 - len(CPU_IMAGE_SUFFIX) - 65
MAX_REPO_FILE_BYTES = 100 * 1000 * 1000
_MEMORY_PATTERN = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]i?)?$")
_MEMORY_UNITS = {
    None: 1,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class CatalogError(ValueError):
    """Bad course metadata: says which file, which field and what is allowed."""

    def __init__(self, source: str, field_name: str, message: str) -> None:
        self.source = source
        self.field_name = field_name
        self.message = message
        where = f"{source}: {field_name}" if field_name else source
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Resources:
    """What Kubernetes (or Docker) gives one learner's server, in bytes and CPUs."""

    memory_limit: int
    memory_guarantee: int
    cpu_limit: float
    cpu_guarantee: float


@dataclass(frozen=True)
class DataFile:
    """A file too large for the repository, fetched while the image builds and checked; with
    `unpack`, a zip or tar archive extracted into the folder `path`."""

    path: str
    url: str
    sha256: str
    unpack: bool = False


@dataclass(frozen=True)
class SmokeTest:
    """How the course's notebooks are run before the image is published."""

    timeout_seconds: int = 600
    #: True: every notebook runs with network; or the notebooks that do (`network = ["x.ipynb"]`).
    network: bool | tuple[str, ...] = False
    #: Notebooks left out of the smoke test, each with the reason (`skip = {"x.ipynb" = "why"}`),
    #: shown in every report.
    skip: tuple[tuple[str, str], ...] = ()
    #: Outputs that differ from those saved in the notebooks: "warn" (reported) or "strict"
    #: (the notebook fails).
    outputs: str = "warn"

    def has_network(self, notebook: str) -> bool:
        return self.network is True or (
            isinstance(self.network, tuple) and notebook in self.network
        )


#: A learner's kept work per course, at most (`[kept_work] size`, the volume's size).
DEFAULT_WORK_SIZE = 1024**3


@dataclass(frozen=True)
class KeptWork:
    """A learner's work kept between servers, where the deployment keeps work (`keepWork`)."""

    #: False: this course's servers always start from the image (the course opts out).
    enabled: bool = True
    #: The learner's volume for this course, in bytes.
    size: int = DEFAULT_WORK_SIZE


@dataclass(frozen=True)
class Course:
    slug: str
    title: str
    flavor: str
    gpu: bool
    resources: Resources
    notebooks: tuple[str, ...]
    description: str = ""
    has_dockerfile: bool = False
    data: tuple[DataFile, ...] = ()
    smoke_test: SmokeTest = field(default_factory=SmokeTest)
    #: Every other `*.ipynb` of the course directory: no launch link, but checked and
    #: smoke-tested like the listed ones (helpers, solutions, extra labs ship to learners too).
    other_notebooks: tuple[str, ...] = ()
    #: `gpu = ["a.ipynb"]`: the notebooks whose links plan a GPU server; links to the course's
    #: other notebooks (and to its home folder) plan a CPU server unless they say `needs_gpu=true`.
    #: Empty with `gpu = true`: every link plans a GPU server.
    gpu_notebooks: tuple[str, ...] = ()
    kept_work: KeptWork = field(default_factory=KeptWork)

    @property
    def all_notebooks(self) -> tuple[str, ...]:
        return self.notebooks + self.other_notebooks

    @property
    def smoke_tested_notebooks(self) -> tuple[str, ...]:
        """Every notebook, less those `smoke_test.skip` leaves out."""
        skipped = {path for path, _ in self.smoke_test.skip}
        return tuple(path for path in self.all_notebooks if path not in skipped)

    @property
    def directory(self) -> str:
        return f"courses/{self.slug}"

    @property
    def base_image(self) -> str:
        """The Pants address of the base image this course builds FROM (its flavor's CUDA
        variant for a GPU course)."""
        return BY_NAME[self.flavor].base_image(self.gpu)

    def gpu_by_default(self, notebook: str | None) -> bool:
        """Whether a link to `notebook` (None: the course's home folder) plans a GPU server when
        it does not say `needs_gpu`."""
        return self.gpu and (not self.gpu_notebooks or notebook in self.gpu_notebooks)

    def image_key(self, gpu: bool) -> str:
        """The image map key of the image a server of this course runs: the course's own image
        (`<slug>`: CUDA for a GPU course), or for a GPU course's server without a GPU its CPU
        image (`<slug>--cpu`), built FROM the flavor's CPU base image."""
        return self.slug if gpu or not self.gpu else self.slug + CPU_IMAGE_SUFFIX

    @property
    def image_keys(self) -> tuple[str, ...]:
        """Every image this course has, by image map key: its own, and a GPU course's CPU one."""
        return (self.slug, self.slug + CPU_IMAGE_SUFFIX) if self.gpu else (self.slug,)

    def base_image_of(self, key: str) -> str:
        """The Pants address of the base image the image `key` (of `image_keys`) builds FROM."""
        return BY_NAME[self.flavor].base_image(self.gpu and key == self.slug)


@dataclass(frozen=True)
class Problem:
    """One problem of a course directory, as plain data.

    `file` is relative to the course directory (`course.toml`, `requirements.txt`), or "" for
    the directory itself (its name); `key` is the field of that file that is wrong
    (`resources.memory_limit`, `data[0].url`), or "" when the problem is the whole file.
    """

    file: str
    key: str
    message: str

    def render(self, directory: str = "") -> str:
        """`courses/x/course.toml: title: is required: ...` (with the course's directory)."""
        where = posixpath.join(directory, self.file) if directory and self.file else self.file
        where = where or directory
        return ": ".join(part for part in (where, self.key, self.message) if part)


@dataclass(frozen=True)
class CourseReading:
    """A lenient reading of one course directory: every problem, not only the first.

    `course` is the Course when there is no problem, else None. `flavor` and `data` are what
    could be read in any case (the flavor when course.toml names a valid one, the valid [[data]]
    entries), for checks that go on despite the problems.
    """

    slug: str
    course: Course | None
    problems: tuple[Problem, ...]
    flavor: str | None = None
    data: tuple[DataFile, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.problems


def default_resources(flavor: object, gpu: bool) -> Resources:
    """What a learner's server gets where course.toml has no [resources] (catalog/flavors.py)."""
    return Resources(*_flavor_resources(flavor, gpu))


_MISSING_METADATA = (
    "is missing; every directory under courses/ is a course (see README: add a course)"
)

_T = TypeVar("_T")


class _Problems:
    """The errors found so far in one course: each check records its own and reading goes on."""

    def __init__(self) -> None:
        self.errors: list[CatalogError] = []

    def add(self, source: str, field_name: str, message: str) -> None:
        self.errors.append(CatalogError(source, field_name, message))

    def call(self, function: Callable[..., _T], *args: Any) -> _T | None:
        """What `function(*args)` returns, or None when it raises CatalogError (recorded)."""
        try:
            return function(*args)
        except CatalogError as e:
            self.errors.append(e)
            return None


def parse_memory(value: object, source: str, field_name: str) -> int:
    """`"2G"`, `"512Mi"` or a byte count, as Kubernetes spells quantities; returns bytes."""
    if isinstance(value, bool):
        value = None  # bools are ints in Python: refuse them below
    if isinstance(value, int) and value > 0:
        return value
    match = _MEMORY_PATTERN.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise CatalogError(
            source,
            field_name,
            f"{value!r} is not a memory size; use a number with K, M, G, Ki, Mi or Gi, like '2G'",
        )
    amount = int(float(match.group(1)) * _MEMORY_UNITS[match.group(2)])
    if amount <= 0:
        raise CatalogError(source, field_name, "must be more than zero")
    return amount


def format_memory(amount: int) -> str:
    """Bytes as the shortest exact Kubernetes quantity (`2147483648` -> `2Gi`)."""
    for unit in ("Ti", "Gi", "Mi", "Ki", "T", "G", "M", "K"):
        size = _MEMORY_UNITS[unit]
        if amount % size == 0:
            return f"{amount // size}{unit}"
    return str(amount)


def _cpu(value: object, source: str, field_name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise CatalogError(source, field_name, f"{value!r} is not a CPU count; use a number > 0")
    return float(value)


def _table(
    data: Mapping[str, Any], key: str, source: str, problems: _Problems
) -> Mapping[str, Any]:
    value = data.get(key, {})
    if isinstance(value, dict):
        return value
    problems.add(source, key, "must be a table, like [" + key + "]")
    return {}


def _reject_unknown(
    data: Mapping[str, Any], allowed: Iterable[str], source: str, prefix: str, problems: _Problems
) -> None:
    allowed = sorted(allowed)
    for key in data:
        if key not in allowed:
            problems.add(
                source, prefix + key, f"unknown field; allowed fields are {', '.join(allowed)}"
            )


def _parse_resources(
    data: Mapping[str, Any], defaults: Resources, source: str, problems: _Problems
) -> Resources | None:
    before = len(problems.errors)
    table = _table(data, "resources", source, problems)
    _reject_unknown(
        table,
        ("memory_limit", "memory_guarantee", "cpu_limit", "cpu_guarantee"),
        source,
        "resources.",
        problems,
    )
    d = defaults
    limit = problems.call(
        parse_memory, table.get("memory_limit", d.memory_limit), source, "resources.memory_limit"
    )
    guarantee = problems.call(
        parse_memory,
        table.get("memory_guarantee", min(d.memory_guarantee, limit or d.memory_limit)),
        source,
        "resources.memory_guarantee",
    )
    cpu_limit = problems.call(
        _cpu, table.get("cpu_limit", d.cpu_limit), source, "resources.cpu_limit"
    )
    cpu_guarantee = problems.call(
        _cpu,
        table.get("cpu_guarantee", min(d.cpu_guarantee, cpu_limit or d.cpu_limit)),
        source,
        "resources.cpu_guarantee",
    )
    if limit is not None and guarantee is not None and guarantee > limit:
        problems.add(source, "resources.memory_guarantee", "must not exceed memory_limit")
    if cpu_limit is not None and cpu_guarantee is not None and cpu_guarantee > cpu_limit:
        problems.add(source, "resources.cpu_guarantee", "must not exceed cpu_limit")
    if (
        len(problems.errors) > before
        or limit is None
        or guarantee is None
        or cpu_limit is None
        or cpu_guarantee is None
    ):
        return None
    return Resources(limit, guarantee, cpu_limit, cpu_guarantee)


def normalize_notebook_path(path: str) -> str | None:
    """A notebook path relative to the course directory, normalized; None if it is unsafe.

    Unsafe: absolute, escaping the directory, empty, with control characters or backslashes.
    """
    if not path or any(ord(ch) < 32 or ord(ch) == 127 for ch in path) or "\\" in path:
        return None
    if path.startswith("/"):
        return None
    normalized = posixpath.normpath(path)
    if normalized == "." or normalized.startswith("../") or normalized == "..":
        return None
    return normalized


def _listed_notebooks(data: Mapping[str, Any]) -> list[str]:
    """The safe paths `notebooks` lists, normalized, whether or not the rest is valid."""
    entries = data.get("notebooks")
    if not isinstance(entries, list):
        return []
    paths = [normalize_notebook_path(e) if isinstance(e, str) else None for e in entries]
    return [p for p in paths if p]


def _not_there_hint(path: str, files: Iterable[str]) -> str:
    """Where a listed notebook went, when the course has a file of that name elsewhere."""
    name = posixpath.basename(path)
    elsewhere = sorted(f for f in files if posixpath.basename(f) == name and f != path)
    if elsewhere:
        return f"; it is now at {' or '.join(elsewhere)}: update `notebooks`"
    return "; restore it, or remove it from `notebooks`"


def _parse_notebooks(
    data: Mapping[str, Any], files: frozenset[str], source: str, problems: _Problems
) -> tuple[str, ...]:
    notebooks = data.get("notebooks")
    if not isinstance(notebooks, list) or not notebooks:
        problems.add(
            source,
            "notebooks",
            "must list the course's notebooks, like ['lectures/01-intro.ipynb']",
        )
        return ()
    result: list[str] = []
    seen: set[str] = set()
    for entry in notebooks:
        path = normalize_notebook_path(entry) if isinstance(entry, str) else None
        if path is None or not path.endswith(".ipynb"):
            problems.add(source, "notebooks", f"{entry!r} is not a relative path to an .ipynb file")
        elif path in seen:
            problems.add(source, "notebooks", f"{path} is listed twice")
        elif path not in files:
            problems.add(
                source,
                "notebooks",
                f"{path} does not exist in the course directory{_not_there_hint(path, files)}",
            )
        else:
            result.append(path)
        if path is not None:
            seen.add(path)
    return tuple(result)


def _parse_gpu(
    value: object, notebooks: Sequence[str], source: str, problems: _Problems
) -> tuple[bool, tuple[str, ...]]:
    """`gpu = true | false | ["lectures/train.ipynb"]`: whether the course has a GPU image, and
    the notebooks whose links plan a GPU server (none listed: all of them)."""
    if isinstance(value, bool):
        return value, ()
    message = (
        "must be true (every link plans a GPU server), false, or the notebooks that need one, "
        "like ['lectures/train.ipynb']"
    )
    if not isinstance(value, list) or not value:
        problems.add(source, "gpu", message)
        return False, ()
    listed: list[str] = []
    for entry in value:
        path = normalize_notebook_path(entry) if isinstance(entry, str) else None
        if path is None or path not in notebooks:
            problems.add(source, "gpu", f"{entry!r} is not one of the notebooks `notebooks` lists")
        elif path not in listed:
            listed.append(path)
    return True, tuple(listed)


def _parse_data(data: Mapping[str, Any], source: str, problems: _Problems) -> tuple[DataFile, ...]:
    """The valid [[data]] entries (every invalid one is recorded)."""
    entries = data.get("data", [])
    if not isinstance(entries, list):
        problems.add(source, "data", "must be a list of [[data]] tables")
        return ()
    result = []
    for index, entry in enumerate(entries):
        where = f"data[{index}]"
        if not isinstance(entry, dict):
            problems.add(source, where, "must be a table with path, url and sha256")
            continue
        before = len(problems.errors)
        _reject_unknown(entry, ("path", "url", "sha256", "unpack"), source, where + ".", problems)
        path = (
            normalize_notebook_path(entry.get("path", ""))
            if isinstance(entry.get("path"), str)
            else None
        )
        if path is None:
            problems.add(source, where + ".path", "must be a relative path inside the course")
        url = entry.get("url")
        if not isinstance(url, str) or not url.startswith("https://"):
            problems.add(source, where + ".url", "must be an https:// URL")
        sha = entry.get("sha256")
        if not isinstance(sha, str) or not _SHA256.match(sha):
            problems.add(
                source, where + ".sha256", "must be the file's 64-character lowercase sha256"
            )
        unpack = entry.get("unpack", False)
        if not isinstance(unpack, bool):
            problems.add(source, where + ".unpack", "must be true or false")
        if path is not None and isinstance(url, str) and isinstance(sha, str):
            if len(problems.errors) == before:
                result.append(DataFile(path=path, url=url, sha256=sha, unpack=unpack is True))
    return tuple(result)


def _course_notebook(
    entry: object, notebooks: Iterable[str], source: str, key: str, problems: _Problems
) -> str | None:
    path = normalize_notebook_path(entry) if isinstance(entry, str) else None
    if path is None or path not in notebooks:
        problems.add(
            source, f"smoke_test.{key}", f"{entry!r} is not a notebook of the course directory"
        )
        return None
    return path


def _parse_skip(
    table: Mapping[str, Any], notebooks: Iterable[str], source: str, problems: _Problems
) -> tuple[tuple[str, str], ...]:
    skip = table.get("skip", {})
    if not isinstance(skip, Mapping):
        problems.add(
            source, "smoke_test.skip", 'must be a table like {"lab/x.ipynb" = "why it cannot run"}'
        )
        return ()
    result = []
    for entry, reason in skip.items():
        path = _course_notebook(entry, notebooks, source, "skip", problems)
        if not isinstance(reason, str) or not reason.strip():
            problems.add(
                source, f"smoke_test.skip.{entry}", "needs a reason: why the notebook cannot run"
            )
        elif path is not None:
            result.append((path, reason.strip()))
    return tuple(sorted(result))


def _parse_smoke_test(
    data: Mapping[str, Any], source: str, notebooks: Iterable[str], problems: _Problems
) -> SmokeTest | None:
    before = len(problems.errors)
    table = _table(data, "smoke_test", source, problems)
    _reject_unknown(
        table, ("timeout_seconds", "network", "skip", "outputs"), source, "smoke_test.", problems
    )
    outputs = table.get("outputs", SmokeTest.outputs)
    if outputs not in ("warn", "strict"):
        problems.add(
            source,
            "smoke_test.outputs",
            'must be "warn" (outputs that differ from the saved ones are reported) or "strict" '
            "(they fail the notebook)",
        )
    timeout = table.get("timeout_seconds", SmokeTest.timeout_seconds)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
        problems.add(source, "smoke_test.timeout_seconds", "must be a whole number of seconds > 0")
    network = table.get("network", False)
    if isinstance(network, list):
        paths = [
            _course_notebook(entry, notebooks, source, "network", problems) for entry in network
        ]
        network = tuple(path for path in paths if path is not None)
    elif not isinstance(network, bool):
        problems.add(
            source,
            "smoke_test.network",
            "must be true, false or the notebooks that need it, like ['data/download.ipynb']",
        )
    skip = _parse_skip(table, notebooks, source, problems)
    if len(problems.errors) > before:
        return None
    return SmokeTest(timeout_seconds=timeout, network=network, skip=skip, outputs=outputs)


def _parse_kept_work(data: Mapping[str, Any], source: str, problems: _Problems) -> KeptWork | None:
    table = _table(data, "kept_work", source, problems)
    _reject_unknown(table, ("enabled", "size"), source, "kept_work.", problems)
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.add(source, "kept_work.enabled", "must be true or false")
        return None
    size = problems.call(parse_memory, table.get("size", "1Gi"), source, "kept_work.size")
    return None if size is None else KeptWork(enabled=enabled, size=size)


_TOP_LEVEL_FIELDS = (
    "title",
    "description",
    "flavor",
    "gpu",
    "notebooks",
    "resources",
    "data",
    "smoke_test",
    "kept_work",
)


def _require_requirements(directory: str, files: frozenset[str], problems: _Problems) -> None:
    if "requirements.txt" not in files:
        problems.add(
            directory, "requirements.txt", "is missing; an empty file means no extra packages"
        )


def _read(
    slug: str, text: str | None, files: Iterable[str], allow_missing_notebooks: bool
) -> tuple[CourseReading, list[CatalogError]]:
    """Every rule, in order, each recording its problems: the reading and the errors."""
    directory = f"courses/{slug}"
    source = f"{directory}/{METADATA_FILE}"
    problems = _Problems()
    file_set = frozenset(files)
    if text is None:
        problems.add(directory, METADATA_FILE, _MISSING_METADATA)
    if not SLUG_PATTERN.match(slug):
        problems.add(
            directory,
            "",
            "a course directory name is its image tag: lowercase letters and digits in words "
            "joined by single '-', at most 63 characters",
        )
    data: dict[str, Any] | None = None
    if text is not None:
        try:
            data = _parse_toml(text)
        except _TomlError as e:
            problems.add(source, "", f"is not valid TOML: {e}")
    if data is None:  # nothing more to read in course.toml
        _require_requirements(directory, file_set, problems)
        return _reading(slug, None, problems.errors, None, ()), problems.errors

    _reject_unknown(data, _TOP_LEVEL_FIELDS, source, "", problems)
    title: Any = data.get("title")
    if not isinstance(title, str) or not title.strip():
        problems.add(source, "title", "is required: the course's name as learners see it")
    description = data.get("description", "")
    if not isinstance(description, str):
        problems.add(source, "description", "must be a string")
    flavor: Any = data.get("flavor")
    if flavor not in FLAVORS:
        problems.add(
            source,
            "flavor",
            f"{flavor!r} is not a base image flavor; use one of {', '.join(FLAVORS)}",
        )
    _require_requirements(directory, file_set, problems)
    if allow_missing_notebooks:
        file_set = file_set.union(_listed_notebooks(data))
    notebooks = _parse_notebooks(data, file_set, source, problems)
    gpu, gpu_notebooks = _parse_gpu(data.get("gpu", False), notebooks, source, problems)
    if gpu and SLUG_PATTERN.match(slug) and len(slug) > GPU_SLUG_MAX:
        problems.add(
            directory,
            "",
            f"a GPU course's directory name is at most {GPU_SLUG_MAX} characters: its CPU "
            f"image's tag <name>{CPU_IMAGE_SUFFIX}-<hash> must fit Docker's 128",
        )
    every_notebook = sorted(
        path
        for path in file_set
        if path.endswith(".ipynb") and ".ipynb_checkpoints/" not in f"/{path}"
    )
    resources = _parse_resources(data, default_resources(flavor, gpu), source, problems)
    fetched = _parse_data(data, source, problems)
    smoke_test = _parse_smoke_test(data, source, every_notebook, problems)
    kept_work = _parse_kept_work(data, source, problems)
    course = None
    if not problems.errors and resources is not None and smoke_test is not None and kept_work:
        course = Course(
            slug=slug,
            title=title.strip(),
            description=description.strip(),
            flavor=flavor,
            gpu=gpu,
            resources=resources,
            notebooks=notebooks,
            has_dockerfile="Dockerfile" in file_set,
            data=fetched,
            smoke_test=smoke_test,
            other_notebooks=tuple(p for p in every_notebook if p not in notebooks),
            gpu_notebooks=gpu_notebooks,
            kept_work=kept_work,
        )
    valid_flavor = flavor if flavor in FLAVORS else None
    return _reading(slug, course, problems.errors, valid_flavor, fetched), problems.errors


def _reading(
    slug: str,
    course: Course | None,
    errors: Sequence[CatalogError],
    flavor: str | None,
    data: tuple[DataFile, ...],
) -> CourseReading:
    directory = f"courses/{slug}"

    def problem(error: CatalogError) -> Problem:
        if error.source == directory:  # a file of the directory (the field), or its name ("")
            return Problem(error.field_name, "", error.message)
        return Problem(error.source[len(directory) + 1 :], error.field_name, error.message)

    return CourseReading(slug, course, tuple(problem(e) for e in errors), flavor, data)


def parse_course_leniently(slug: str, text: str | None, files: Iterable[str]) -> CourseReading:
    """Reads one course as `parse_course` does, but never raises: every problem, as data.

    `text` is None when the directory has no course.toml. Plain data in and out, like
    parse_course; `read_course_leniently` reads a directory.
    """
    return _read(slug, text, files, allow_missing_notebooks=False)[0]


def parse_course(
    slug: str, text: str | None, files: Iterable[str], *, allow_missing_notebooks: bool = False
) -> Course:
    """Reads one course from its metadata text and the paths of the files in its directory.

    `files` are relative to the course directory (`lectures/01.ipynb`, `requirements.txt`);
    `text` is None when there is no course.toml. Raises CatalogError naming the file, the field
    and what is allowed: the first problem that `parse_course_leniently` lists. With
    `allow_missing_notebooks`, a notebook `notebooks` lists need not be in `files` (the smoke
    test then reports it missing from the image, where learners would miss it).
    """
    reading, errors = _read(slug, text, files, allow_missing_notebooks)
    if errors:
        raise errors[0]
    assert reading.course is not None
    return reading.course


def course_to_dict(course: Course) -> dict[str, Any]:
    """Plain JSON data (lists, not tuples), for handing the catalog on (Helm values, files)."""
    return json.loads(json.dumps(dataclasses.asdict(course)))


def course_from_dict(data: Mapping[str, Any]) -> Course:
    """The inverse of course_to_dict."""
    return Course(
        **{
            **data,
            "resources": Resources(**data["resources"]),
            "notebooks": tuple(data["notebooks"]),
            "data": tuple(DataFile(**d) for d in data.get("data", ())),
            "smoke_test": _smoke_test_from_dict(data.get("smoke_test", {})),
            "other_notebooks": tuple(data.get("other_notebooks", ())),
            "gpu_notebooks": tuple(data.get("gpu_notebooks", ())),
            "kept_work": KeptWork(**data.get("kept_work", {})),
        }
    )


def _smoke_test_from_dict(data: Mapping[str, Any]) -> SmokeTest:
    skip = tuple((str(path), str(reason)) for path, reason in data.get("skip", ()))
    network = data.get("network", False)
    network = tuple(network) if isinstance(network, list) else network
    return SmokeTest(**{**data, "skip": skip, "network": network})
