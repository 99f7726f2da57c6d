"""Plain data for the course quality gate: static-check findings and smoke-test results.

Everything here is free of I/O so that checks, rendering (terminal table, JSON, JUnit XML) and
the publish gate can be tested with plain values. JSON round-trips through `to_dict`/`from_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

#: The `kind` written into result files, so tools can find them among other JSON files.
SMOKE_KIND = "course-smoke-test"
CHECK_KIND = "course-check"


@dataclass(frozen=True)
class Finding:
    """One problem found by a static check.

    `check` names the check (`missing-dependency`, `missing-data`, ...); `file` is relative to
    the course directory; `cell` is the 1-based position of the cell in the notebook (markdown
    cells count, as in JupyterLab's order).
    """

    check: str
    message: str
    file: str | None = None
    cell: int | None = None
    #: Extra structured facts (module, distribution, path...), for tools and tests.
    details: Mapping[str, str] = field(default_factory=dict)

    def location(self, course_dir: str = "") -> str:
        prefix = f"{course_dir}/" if course_dir else ""
        where = f"{prefix}{self.file}" if self.file else (course_dir or "course")
        return f"{where}: cell {self.cell}" if self.cell is not None else where

    def render(self, course_dir: str = "") -> str:
        return f"{self.location(course_dir)}: [{self.check}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "details": dict(self.details)}

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Finding:
        return Finding(
            check=data["check"],
            message=data["message"],
            file=data.get("file"),
            cell=data.get("cell"),
            details=dict(data.get("details") or {}),
        )


#: The static checks, in the order they run; a course passes when none has a finding.
CHECKS = (
    "metadata",
    "notebook-format",
    "syntax",
    "missing-dependency",
    "missing-data",
    "missing-image",
    "file-size",
    "expected-failures",
    "requirements-pinned",
    "requirements-lock",
)


@dataclass(frozen=True)
class CheckReport:
    course: str
    findings: tuple[Finding, ...]

    @property
    def passed(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": CHECK_KIND,
            "course": self.course,
            "passed": self.passed,
            "findings": [f.to_dict() for f in self.findings],
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> CheckReport:
        return CheckReport(
            course=data["course"],
            findings=tuple(Finding.from_dict(f) for f in data.get("findings", ())),
        )


class Status(str, Enum):
    """How one notebook's smoke test ended."""

    PASSED = "passed"
    #: A cell raised: `cell`, `exception` and `message` say which and what.
    FAILED = "failed"
    #: Still running after the course's `smoke_test.timeout_seconds`: the container was killed.
    TIMED_OUT = "timed-out"
    #: Killed by the kernel's OOM killer at the course's production memory limit.
    OUT_OF_MEMORY = "out-of-memory"
    #: The notebook the catalog names is not in the image.
    MISSING = "missing"
    #: A cell could not reach the network (no network in the smoke test, or unreachable): a
    #: failure of the network or of course.toml's `smoke_test.network`, not of the code.
    NETWORK = "network"
    #: The smoke test itself could not run (no image, Docker error): not the notebook's fault.
    ERROR = "error"


@dataclass(frozen=True)
class NotebookResult:
    path: str
    status: Status
    duration_seconds: float
    #: Peak memory of the container (cgroup), None when it could not be read.
    peak_memory_bytes: int | None = None
    #: 1-based position of the failing (or last started) cell, counting every cell.
    cell: int | None = None
    #: Exception class name for FAILED (`ModuleNotFoundError`), else None.
    exception: str | None = None
    message: str = ""
    #: Last lines of the container's output, for failures.
    log_tail: str = ""
    #: Every failing cell, (cell, exception), in order: every cell runs.
    failures: tuple[tuple[int, str], ...] = ()
    #: The failures expected-failures.toml records, which happened as recorded (so it passed).
    expected: tuple[tuple[int, str], ...] = ()
    #: Cells whose outputs differ from those saved in the notebook (drift.py): (cell, what,
    #: saved, now). A warning, or a failure with course.toml's `smoke_test.outputs = "strict"`.
    drift: tuple[tuple[int, str, str, str], ...] = ()

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    def summary(self) -> str:
        """One line: what happened, where."""
        if self.status is Status.PASSED and self.expected:
            cells = ", ".join(f"cell {cell} {name}" for cell, name in self.expected)
            return f"passed (expected failures: {cells})"
        if self.status is Status.PASSED:
            return "passed"
        where = f"cell {self.cell}: " if self.cell is not None else ""
        what = f"{self.exception}: {self.message}" if self.exception else self.message
        others = [f"cell {cell} {name}" for cell, name in self.failures if cell != self.cell]
        more = f" (also failing: {', '.join(others)})" if others else ""
        return f"{self.status.value}: {where}{what}".rstrip(": ") + more

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> NotebookResult:
        return NotebookResult(
            path=data["path"],
            status=Status(data["status"]),
            duration_seconds=float(data["duration_seconds"]),
            peak_memory_bytes=data.get("peak_memory_bytes"),
            cell=data.get("cell"),
            exception=data.get("exception"),
            message=data.get("message", ""),
            log_tail=data.get("log_tail", ""),
            failures=tuple((int(c), str(e)) for c, e in data.get("failures", ())),
            expected=tuple((int(c), str(e)) for c, e in data.get("expected", ())),
            drift=tuple((int(c), str(w), str(a), str(b)) for c, w, a, b in data.get("drift", ())),
        )


@dataclass(frozen=True)
class SmokeResult:
    """One course's smoke test: every notebook run in the course image."""

    course: str
    #: The image reference that was tested (the immutable content tag when known).
    image: str
    memory_limit_bytes: int
    timeout_seconds: int
    #: course.toml's `smoke_test.network`: every notebook (True), none, or these notebooks.
    network: bool | tuple[str, ...]
    notebooks: tuple[NotebookResult, ...]
    #: Set when the course could not be smoke-tested at all (e.g. no image).
    error: str = ""
    #: Where the notebooks ran, for a GPU course or a run with GPUs (`smoke.accelerator_report`):
    #: "GPU course smoke-tested on CPU", or what PyTorch saw in the container.
    accelerator: str = ""
    #: Notebooks course.toml leaves out of the smoke test, with its reasons (`smoke_test.skip`).
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def passed(self) -> bool:
        return not self.error and bool(self.notebooks) and all(n.passed for n in self.notebooks)

    @property
    def duration_seconds(self) -> float:
        return sum(n.duration_seconds for n in self.notebooks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": SMOKE_KIND,
            "course": self.course,
            "image": self.image,
            "passed": self.passed,
            "memory_limit_bytes": self.memory_limit_bytes,
            "timeout_seconds": self.timeout_seconds,
            "network": list(self.network) if isinstance(self.network, tuple) else self.network,
            "duration_seconds": round(self.duration_seconds, 3),
            "error": self.error,
            "accelerator": self.accelerator,
            "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
            "notebooks": [n.to_dict() for n in self.notebooks],
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> SmokeResult:
        if data.get("kind") != SMOKE_KIND:
            raise ValueError(f"not a smoke-test result (kind {data.get('kind')!r})")
        return SmokeResult(
            course=data["course"],
            image=data["image"],
            memory_limit_bytes=int(data["memory_limit_bytes"]),
            timeout_seconds=int(data["timeout_seconds"]),
            network=(
                tuple(data["network"]) if isinstance(data["network"], list) else data["network"]
            ),
            notebooks=tuple(NotebookResult.from_dict(n) for n in data.get("notebooks", ())),
            error=data.get("error", ""),
            accelerator=data.get("accelerator", ""),
            skipped=tuple((s["path"], s["reason"]) for s in data.get("skipped", ())),
        )


_UNITS = (("Gi", 2**30), ("G", 10**9), ("Mi", 2**20), ("M", 10**6), ("Ki", 2**10), ("K", 10**3))


def human_memory(amount: int) -> str:
    """Bytes as course.toml would spell them: `2Gi`, `384M`; otherwise megabytes."""
    for unit, size in _UNITS:
        if amount >= size and amount % size == 0:
            return f"{amount // size}{unit}"
    return f"{amount / 1e6:.0f} MB"
