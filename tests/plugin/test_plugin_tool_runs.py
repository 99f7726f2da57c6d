"""What `#check` and `#smoke-test` run (pants-plugins/course_targets/tool_runs.py), without Pants:
the one runner's input for each, and the smoke test's timeout."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from catalog import Course, Resources, SmokeTest
from course_targets.tool_runs import ToolRun, check_run, smoke_test_run, smoke_test_timeout

IMAGE = "127.0.0.1:5000/ol-course-notebooks:intro-" + "0" * 64
INPUTS = ("courses/intro/**", "!courses/intro/**/.ipynb_checkpoints/**")


@pytest.mark.parametrize(
    ("make", "args", "expected"),
    [
        pytest.param(
            check_run,
            ("courses/intro", "dist/test/courses.intro@check"),
            ToolRun(
                argv=(
                    "courses/intro",
                    "--output-dir",
                    "course-quality-results",
                    "--shown-output-dir",
                    "dist/test/courses.intro@check",
                ),
                description="Check courses/intro",
                inputs=INPUTS,
            ),
            id="check: the course directory, no time limit, results not logged",
        ),
        pytest.param(
            smoke_test_run,
            ("courses/intro", "dist/test/courses.intro@smoke-test", IMAGE, 1320),
            ToolRun(
                argv=(
                    "courses/intro",
                    "--image",
                    IMAGE,
                    "--output-dir",
                    "course-quality-results",
                    "--shown-output-dir",
                    "dist/test/courses.intro@smoke-test",
                ),
                description=f"Smoke-test {IMAGE}",
                inputs=INPUTS,
                timeout_seconds=1320,
                log_extra_output=True,
            ),
            id="smoke test: the image's reference, the target's timeout, results logged",
        ),
        pytest.param(
            smoke_test_run,
            ("courses/intro", "dist/test/courses.intro@smoke-test", IMAGE, None),
            ToolRun(
                argv=(
                    "courses/intro",
                    "--image",
                    IMAGE,
                    "--output-dir",
                    "course-quality-results",
                    "--shown-output-dir",
                    "dist/test/courses.intro@smoke-test",
                ),
                description=f"Smoke-test {IMAGE}",
                inputs=INPUTS,
                timeout_seconds=None,
                log_extra_output=True,
            ),
            id="smoke test with timeouts off (`--test-timeouts=false`)",
        ),
    ],
)
def test_tool_runs(make: Callable[..., ToolRun], args: tuple, expected: ToolRun) -> None:
    assert make(*args) == expected


def course(notebooks: int, others: int, smoke_test: SmokeTest) -> Course:
    return Course(
        slug="intro",
        title="Intro",
        flavor="pytorch",
        gpu=False,
        resources=Resources(2**30, 2**29, 1.0, 0.25),
        notebooks=tuple(f"n{i}.ipynb" for i in range(notebooks)),
        other_notebooks=tuple(f"extra/o{i}.ipynb" for i in range(others)),
        smoke_test=smoke_test,
    )


@pytest.mark.parametrize(
    ("course_", "expected"),
    [
        # (timeout + 30 per notebook) x notebooks + 120 per run
        pytest.param(course(2, 0, SmokeTest()), 2 * (600 + 30) + 120, id="default timeout"),
        pytest.param(
            course(3, 0, SmokeTest(timeout_seconds=300)), 3 * 330 + 120, id="course's timeout"
        ),
        pytest.param(
            course(1, 2, SmokeTest(timeout_seconds=100)),
            3 * 130 + 120,
            id="unlisted notebooks are smoke-tested too",
        ),
        pytest.param(
            course(2, 1, SmokeTest(timeout_seconds=100, skip=(("n1.ipynb", "needs a GPU"),))),
            2 * 130 + 120,
            id="skipped notebooks take no time",
        ),
        pytest.param(
            course(1, 0, SmokeTest(skip=(("n0.ipynb", "needs a GPU"),))),
            120,
            id="every notebook skipped: the overhead alone",
        ),
    ],
)
def test_smoke_test_timeout(course_: Course, expected: int) -> None:
    assert smoke_test_timeout(course_) == expected
