"""tools/junit_summary.py: the one-line total of a `./pants test` run that ends `.ci/run`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.junit_summary import Totals, main, totals_of

PYTEST_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="{errors}" failures="{failures}" skipped="{skipped}"
 tests="{tests}" time="1.0"><testcase classname="t" name="a" time="0.1"/></testsuite></testsuites>
"""


def _write(folder: Path, name: str, tests: int, failures=0, errors=0, skipped=0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = PYTEST_JUNIT.format(tests=tests, failures=failures, errors=errors, skipped=skipped)
    (folder / name).write_text(text)


def test_totals_add_up_suites_and_count_errors_as_failures() -> None:
    text = PYTEST_JUNIT.format(tests=10, failures=1, errors=2, skipped=3)
    assert totals_of(text) == Totals(passed=4, failed=3, skipped=3)


@pytest.mark.parametrize(
    ("files", "ci", "code", "line"),
    [
        ([(5, 0, 0, 0), (3, 0, 0, 0)], "true", 0, "tests: 8 passed, 0 failed, 0 skipped"),
        ([(5, 1, 0, 0)], "", 1, "tests: 4 passed, 1 failed, 0 skipped"),
        ([(5, 0, 0, 2)], "", 0, "tests: 3 passed, 0 failed, 2 skipped"),
        ([(5, 0, 0, 2)], "true", 1, "tests: 3 passed, 0 failed, 2 skipped"),
        ([], "true", 1, "tests: 0 passed, 0 failed, 0 skipped"),
    ],
)
def test_exit_code_and_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    files: list[tuple[int, int, int, int]],
    ci: str,
    code: int,
    line: str,
) -> None:
    for number, (tests, failures, errors, skipped) in enumerate(files):
        _write(tmp_path / f"target{number}", "report.xml", tests, failures, errors, skipped)
    monkeypatch.setenv("CI", ci)
    assert main([str(tmp_path)]) == code
    assert capsys.readouterr().out.splitlines()[0] == line
