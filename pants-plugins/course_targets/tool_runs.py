"""What the course quality gate's test types run, as plain data: one `ToolRun` per test.

`courses/<slug>#check` and `#smoke-test` differ only in the tool that runs (a `pex_binary` target
in tools/), its arguments, and its timeout; quality.py has one runner for both, and builds its
input with `check_run` and `smoke_test_run`. No Pants imports, so tests/plugin/ tests this
without Pants.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog import Course
from course_targets.course_image import course_file_globs

#: The tools that run the tests (Pants targets; each runs with its own `entry_point`). The
#: generated tests depend on them, so a change to one re-runs it for every course
#: (--changed-since).
CHECK_TOOL = "tools:course-check"
SMOKE_TEST_TOOL = "tools:smoke-test"
#: Where a tool writes its results in the sandbox; they become the test's extra output and its
#: JUnit reports.
OUTPUT_DIR = "course-quality-results"
#: Seconds the smoke test may take beyond its notebooks' own timeouts (containers, the kernel).
SMOKE_OVERHEAD_SECONDS = 120
PER_NOTEBOOK_OVERHEAD_SECONDS = 30


@dataclass(frozen=True)
class ToolRun:
    """One run of a quality tool on one course."""

    #: The tool's arguments.
    argv: tuple[str, ...]
    #: What Pants shows while it runs.
    description: str
    #: Path globs of the process's input files: the course directory.
    inputs: tuple[str, ...]
    #: Seconds; None: no limit.
    timeout_seconds: int | None = None
    #: Whether Pants logs the result files' paths (the smoke test's report is worth opening).
    log_extra_output: bool = False


def _output_arguments(shown_output_dir: str) -> tuple[str, ...]:
    """Where the tool writes its results, and where Pants puts them for the reader
    (`dist/test/<the test's address, path-safe>`)."""
    return ("--output-dir", OUTPUT_DIR, "--shown-output-dir", shown_output_dir)


def check_run(directory: str, shown_output_dir: str) -> ToolRun:
    """`#check`: the static checks of the course directory; no image, no time limit."""
    return ToolRun(
        argv=(directory, *_output_arguments(shown_output_dir)),
        description=f"Check {directory}",
        inputs=course_file_globs(directory),
    )


def smoke_test_run(
    directory: str, shown_output_dir: str, image: str, timeout_seconds: int | None
) -> ToolRun:
    """`#smoke-test`: every notebook of the course run in `image`, the built image's published
    reference (so the process is cached, like any test, keyed on its content tag)."""
    return ToolRun(
        argv=(directory, "--image", image, *_output_arguments(shown_output_dir)),
        description=f"Smoke-test {image}",
        inputs=course_file_globs(directory),
        timeout_seconds=timeout_seconds,
        log_extra_output=True,
    )


def smoke_test_timeout(course: Course) -> int:
    """The `#smoke-test` target's timeout: every smoke-tested notebook's own timeout, plus
    overhead per notebook and per run."""
    per_notebook = course.smoke_test.timeout_seconds + PER_NOTEBOOK_OVERHEAD_SECONDS
    return len(course.smoke_tested_notebooks) * per_notebook + SMOKE_OVERHEAD_SECONDS
