"""Python lock files of the images: the exact packages, with hashes, that an image layer installs.

A lock is pip-compile's output (`name==version` plus every `--hash=sha256:` of that release),
under a header that names its input and the input's sha256, so that a lock that no longer matches
its requirements is caught without resolving anything. A *layer* lock holds only what the layer
adds: pins that the image below already has installed at the same version are left out.

Images install a lock with `pip install --no-deps --require-hashes -r <lock>`: nothing outside
the lock can be installed, and a changed file on the index fails the build.

Pure functions of text; running the resolver is `tools/resolver.py`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: A course's lock, beside its requirements.txt (`./pants run tools:pin-requirements`).
LOCK_FILE = "requirements.lock"
REQUIREMENTS_FILE = "requirements.txt"

INPUT_DIGEST = re.compile(r"^# input: (?P<name>\S+) sha256:(?P<digest>[0-9a-f]{64})$")
#: `# modules: foo-grader = foo, foo_utils`: what a locked distribution lets notebooks import, read
#: from its own files when the lock was made (`modules_from_record`).
MODULES = re.compile(r"^# modules: (?P<name>\S+) = (?P<modules>.*)$")
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!_-]+)\s*\\?$")
_HASH = re.compile(r"--hash=sha256:(?P<hash>[0-9a-f]{64})")


class LockError(ValueError):
    """A lock file that cannot be installed as it is."""


def normalize(name: str) -> str:
    """PEP 503 normalized distribution name (`Scikit_Learn` -> `scikit-learn`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Pin:
    name: str  # normalized
    version: str
    hashes: tuple[str, ...]
    block: str  # the lines of the lock that make this pin (requirement, hashes, `# via`)


@dataclass(frozen=True)
class Lock:
    pins: Mapping[str, Pin]  # normalized name -> pin
    input_digest: str | None  # sha256 of the requirements it was made from (its header)
    #: normalized distribution -> the top-level modules it installs (its `# modules:` lines)
    modules: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def versions(self) -> dict[str, str]:
        return {name: pin.version for name, pin in self.pins.items()}

    def matches(self, input_text: str) -> bool:
        return self.input_digest == digest(input_text)


def _blocks(text: str) -> Iterable[tuple[int, str]]:
    """(line number, block) per requirement: its line and the indented lines after it."""
    start = 0
    lines: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line and not line[0].isspace() and not line.startswith("#"):
            if lines:
                yield start, "\n".join(lines)
            start, lines = number, [line]
        elif lines and line.startswith((" ", "\t")):
            lines.append(line)
        elif lines:
            yield start, "\n".join(lines)
            lines = []
    if lines:
        yield start, "\n".join(lines)


def parse_lock(text: str, source: str = "lock") -> Lock:
    """A lock's pins and header; LockError names the line of anything pip could not install."""
    input_digest = None
    modules: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        match = INPUT_DIGEST.match(line)
        if match:
            input_digest = match.group("digest")
        match = MODULES.match(line)
        if match:
            names = (m.strip() for m in match.group("modules").split(","))
            modules[normalize(match.group("name"))] = tuple(m for m in names if m)
    pins: dict[str, Pin] = {}
    for number, block in _blocks(text):
        first = block.splitlines()[0]
        match = _PIN.match(first)
        if not match:
            raise LockError(
                f"{source}, line {number}: {first!r} is not an exact `name==version` pin"
            )
        hashes = tuple(_HASH.findall(block))
        if not hashes:
            pin = first.rstrip(" \\")
            raise LockError(f"{source}, line {number}: {pin!r} has no --hash")
        name = normalize(match.group("name"))
        if name in pins:
            raise LockError(f"{source}, line {number}: {name} is pinned twice")
        pins[name] = Pin(name, match.group("version"), hashes, block)
    return Lock(pins, input_digest, modules)


def render_lock(
    header: Iterable[str],
    input_name: str,
    input_text: str,
    compiled: str,
    installed: Mapping[str, str] | None = None,
    modules: Mapping[str, Iterable[str]] | None = None,
) -> str:
    """A lock file from pip-compile's output, leaving out pins already `installed` below;
    `modules`: distribution -> top-level modules, written as `# modules:` lines."""
    below = {normalize(name): version for name, version in (installed or {}).items()}
    kept = [
        pin.block
        for pin in parse_lock(compiled, "pip-compile's output").pins.values()
        if below.get(pin.name) != pin.version
    ]
    lines = [*(f"# {line}" if line else "#" for line in header)]
    lines.append(f"# input: {input_name} sha256:{digest(input_text)}")
    for name, names in sorted((modules or {}).items()):
        if names:
            lines.append(f"# modules: {normalize(name)} = {', '.join(sorted(set(names)))}")
    return "\n".join(lines + kept) + "\n"


def pinned_by(asked: str, have: str) -> bool:
    """Whether `name==asked` accepts the installed `have`: as PEP 440 says, a version without a
    local label accepts every local build of it (`==2.13.0` accepts `2.13.0+cpu`)."""
    return have == asked or ("+" not in asked and have.split("+", 1)[0] == asked)


def freeze_versions(text: str) -> dict[str, str]:
    """`pip list --format=freeze` (or any `name==version` lines) as normalized name -> version."""
    versions = {}
    for line in text.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and name and not name.startswith("#"):
            versions[normalize(name)] = version.strip()
    return versions


def pex_lock_versions(text: str) -> dict[str, str]:
    """Distribution -> version of a Pants (pex) lockfile such as 3rdparty/python/default.lock:
    JSON after a header of `//` comment lines."""
    body = "\n".join(line for line in text.splitlines() if not line.startswith("//"))
    return {
        normalize(requirement["project_name"]): requirement["version"]
        for resolve in json.loads(body)["locked_resolves"]
        for requirement in resolve["locked_requirements"]
    }


def constraints_text(versions: Mapping[str, str]) -> str:
    return "".join(f"{name}=={version}\n" for name, version in sorted(versions.items()))


def modules_from_record(record: str) -> tuple[str, str, set[str]] | None:
    """(distribution, version, top-level modules) from a wheel's installed RECORD file: the
    packages and modules it puts on sys.path, whatever its name says (`foo-grader` -> `foo`)."""
    modules: set[str] = set()
    dist_info = None
    for line in record.splitlines():
        path = line.rsplit(",", 2)[0]
        top = path.split("/", 1)[0]
        if top.endswith(".dist-info"):
            dist_info = top
            continue
        if top in ("", "..", "__pycache__") or top.endswith(".data"):
            continue
        name = top.split(".", 1)[0] if "/" not in path else top
        if "/" not in path and not top.endswith((".py", ".so", ".pyd")):
            continue  # a stray file at the top (a licence, a .pth)
        if name.isidentifier():
            modules.add(name)
    if dist_info is None:
        return None
    name, _, version = dist_info[: -len(".dist-info")].partition("-")
    return normalize(name), version, modules


def course_lock(
    slug: str,
    flavor: str,
    requirements: str,
    compiled: str = "",
    installed: Mapping[str, str] | None = None,
    modules: Mapping[str, Iterable[str]] | None = None,
) -> str:
    """The text of a course's requirements.lock (`compiled`: pip-compile's output in the flavor)."""
    return render_lock(
        [
            f"What the course {slug} installs on top of the {flavor} flavor: the whole tree of "
            f"its {REQUIREMENTS_FILE}, less what the flavor has.",
            f"Generated by `./pants run tools:pin-requirements -- {slug}`; do not edit.",
        ],
        REQUIREMENTS_FILE,
        requirements,
        compiled,
        installed,
        modules,
    )
