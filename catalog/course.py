"""What a course is, and how one course's metadata file is read and validated.

This module is the only place that knows the metadata format. It is plain data in and out
(the file's text and the list of files in the course directory), so the Pants plugin, which
reads files through the Pants engine, and every other consumer share the same rules.

It must import on Python 3.9 (Pants' own interpreter) as well as 3.11.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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
FLAVORS = ("pytorch", "tensorflow")
SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
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
    """A file too large for the repository, fetched while the image builds and checked."""

    path: str
    url: str
    sha256: str


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
        """The Pants address of the base image this course builds FROM."""
        return f"images/base:{self.flavor}"


DEFAULT_RESOURCES = Resources(
    memory_limit=2 * 2**30, memory_guarantee=1 * 2**30, cpu_limit=2.0, cpu_guarantee=0.5
)


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


def _table(data: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise CatalogError(source, key, "must be a table, like [" + key + "]")
    return value


def _reject_unknown(
    data: Mapping[str, Any], allowed: Iterable[str], source: str, prefix: str
) -> None:
    allowed = sorted(allowed)
    for key in data:
        if key not in allowed:
            raise CatalogError(
                source, prefix + key, f"unknown field; allowed fields are {', '.join(allowed)}"
            )


def _parse_resources(data: Mapping[str, Any], source: str) -> Resources:
    table = _table(data, "resources", source)
    _reject_unknown(
        table,
        ("memory_limit", "memory_guarantee", "cpu_limit", "cpu_guarantee"),
        source,
        "resources.",
    )
    d = DEFAULT_RESOURCES
    limit = parse_memory(
        table.get("memory_limit", d.memory_limit), source, "resources.memory_limit"
    )
    guarantee = parse_memory(
        table.get("memory_guarantee", min(d.memory_guarantee, limit)),
        source,
        "resources.memory_guarantee",
    )
    cpu_limit = _cpu(table.get("cpu_limit", d.cpu_limit), source, "resources.cpu_limit")
    cpu_guarantee = _cpu(
        table.get("cpu_guarantee", min(d.cpu_guarantee, cpu_limit)),
        source,
        "resources.cpu_guarantee",
    )
    if guarantee > limit:
        raise CatalogError(source, "resources.memory_guarantee", "must not exceed memory_limit")
    if cpu_guarantee > cpu_limit:
        raise CatalogError(source, "resources.cpu_guarantee", "must not exceed cpu_limit")
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


def _parse_notebooks(
    data: Mapping[str, Any], files: frozenset[str], source: str
) -> tuple[str, ...]:
    notebooks = data.get("notebooks")
    if not isinstance(notebooks, list) or not notebooks:
        raise CatalogError(
            source,
            "notebooks",
            "must list the course's notebooks, like ['lectures/01-intro.ipynb']",
        )
    result = []
    for entry in notebooks:
        path = normalize_notebook_path(entry) if isinstance(entry, str) else None
        if path is None or not path.endswith(".ipynb"):
            raise CatalogError(
                source, "notebooks", f"{entry!r} is not a relative path to an .ipynb file"
            )
        if path not in files:
            raise CatalogError(
                source, "notebooks", f"{path} does not exist in the course directory"
            )
        if path in result:
            raise CatalogError(source, "notebooks", f"{path} is listed twice")
        result.append(path)
    return tuple(result)


def _parse_data(data: Mapping[str, Any], source: str) -> tuple[DataFile, ...]:
    entries = data.get("data", [])
    if not isinstance(entries, list):
        raise CatalogError(source, "data", "must be a list of [[data]] tables")
    result = []
    for index, entry in enumerate(entries):
        where = f"data[{index}]"
        if not isinstance(entry, dict):
            raise CatalogError(source, where, "must be a table with path, url and sha256")
        _reject_unknown(entry, ("path", "url", "sha256"), source, where + ".")
        path = (
            normalize_notebook_path(entry.get("path", ""))
            if isinstance(entry.get("path"), str)
            else None
        )
        if path is None:
            raise CatalogError(source, where + ".path", "must be a relative path inside the course")
        url = entry.get("url")
        if not isinstance(url, str) or not url.startswith("https://"):
            raise CatalogError(source, where + ".url", "must be an https:// URL")
        sha = entry.get("sha256")
        if not isinstance(sha, str) or not _SHA256.match(sha):
            raise CatalogError(
                source, where + ".sha256", "must be the file's 64-character lowercase sha256"
            )
        result.append(DataFile(path=path, url=url, sha256=sha))
    return tuple(result)


def _course_notebook(entry: object, notebooks: Iterable[str], source: str, key: str) -> str:
    path = normalize_notebook_path(entry) if isinstance(entry, str) else None
    if path is None or path not in notebooks:
        raise CatalogError(
            source, f"smoke_test.{key}", f"{entry!r} is not a notebook of the course directory"
        )
    return path


def _parse_skip(
    table: Mapping[str, Any], notebooks: Iterable[str], source: str
) -> tuple[tuple[str, str], ...]:
    skip = table.get("skip", {})
    if not isinstance(skip, Mapping):
        raise CatalogError(
            source, "smoke_test.skip", 'must be a table like {"lab/x.ipynb" = "why it cannot run"}'
        )
    result = []
    for entry, reason in skip.items():
        path = _course_notebook(entry, notebooks, source, "skip")
        if not isinstance(reason, str) or not reason.strip():
            raise CatalogError(
                source, f"smoke_test.skip.{entry}", "needs a reason: why the notebook cannot run"
            )
        result.append((path, reason.strip()))
    return tuple(sorted(result))


def _parse_smoke_test(data: Mapping[str, Any], source: str, notebooks: Iterable[str]) -> SmokeTest:
    table = _table(data, "smoke_test", source)
    _reject_unknown(table, ("timeout_seconds", "network", "skip", "outputs"), source, "smoke_test.")
    outputs = table.get("outputs", SmokeTest.outputs)
    if outputs not in ("warn", "strict"):
        raise CatalogError(
            source,
            "smoke_test.outputs",
            'must be "warn" (outputs that differ from the saved ones are reported) or "strict" '
            "(they fail the notebook)",
        )
    timeout = table.get("timeout_seconds", SmokeTest.timeout_seconds)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
        raise CatalogError(
            source, "smoke_test.timeout_seconds", "must be a whole number of seconds > 0"
        )
    network = table.get("network", False)
    if isinstance(network, list):
        network = tuple(_course_notebook(entry, notebooks, source, "network") for entry in network)
    elif not isinstance(network, bool):
        raise CatalogError(
            source,
            "smoke_test.network",
            "must be true, false or the notebooks that need it, like ['data/download.ipynb']",
        )
    return SmokeTest(
        timeout_seconds=timeout,
        network=network,
        skip=_parse_skip(table, notebooks, source),
        outputs=outputs,
    )


_TOP_LEVEL_FIELDS = (
    "title",
    "description",
    "flavor",
    "gpu",
    "notebooks",
    "resources",
    "data",
    "smoke_test",
)


def parse_course(slug: str, text: str, files: Iterable[str]) -> Course:
    """Reads one course from its metadata text and the paths of the files in its directory.

    `files` are relative to the course directory (`lectures/01.ipynb`, `requirements.txt`).
    Raises CatalogError naming the file, the field and what is allowed.
    """
    source = f"courses/{slug}/{METADATA_FILE}"
    if not SLUG_PATTERN.match(slug):
        raise CatalogError(
            f"courses/{slug}",
            "",
            "a course directory name is its image tag: lowercase letters, digits and '-', "
            "at most 63 characters, starting and ending with a letter or digit",
        )
    try:
        data = _parse_toml(text)
    except _TomlError as e:
        raise CatalogError(source, "", f"is not valid TOML: {e}") from None
    _reject_unknown(data, _TOP_LEVEL_FIELDS, source, "")
    file_set = frozenset(files)

    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise CatalogError(source, "title", "is required: the course's name as learners see it")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise CatalogError(source, "description", "must be a string")
    flavor = data.get("flavor")
    if flavor not in FLAVORS:
        raise CatalogError(
            source,
            "flavor",
            f"{flavor!r} is not a base image flavor; use one of {', '.join(FLAVORS)}",
        )
    gpu = data.get("gpu", False)
    if not isinstance(gpu, bool):
        raise CatalogError(source, "gpu", "must be true or false")
    if "requirements.txt" not in file_set:
        raise CatalogError(
            f"courses/{slug}",
            "requirements.txt",
            "is missing; an empty file means no extra packages",
        )
    notebooks = _parse_notebooks(data, file_set, source)
    every_notebook = sorted(
        path
        for path in file_set
        if path.endswith(".ipynb") and ".ipynb_checkpoints/" not in f"/{path}"
    )
    return Course(
        slug=slug,
        title=title.strip(),
        description=description.strip(),
        flavor=flavor,
        gpu=gpu,
        resources=_parse_resources(data, source),
        notebooks=notebooks,
        has_dockerfile="Dockerfile" in file_set,
        data=_parse_data(data, source),
        smoke_test=_parse_smoke_test(data, source, every_notebook),
        other_notebooks=tuple(p for p in every_notebook if p not in notebooks),
    )


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
        }
    )


def _smoke_test_from_dict(data: Mapping[str, Any]) -> SmokeTest:
    skip = tuple((str(path), str(reason)) for path, reason in data.get("skip", ()))
    network = data.get("network", False)
    network = tuple(network) if isinstance(network, list) else network
    return SmokeTest(**{**data, "skip": skip, "network": network})
