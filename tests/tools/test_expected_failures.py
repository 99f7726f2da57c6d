"""Expected failures (tools/course_check/expected.py): the recorded failing cells of assignments
with blanks, checked against the course and judged against what ran. Plain data in and out."""

from __future__ import annotations

import pytest

from tools.course_check.expected import (
    ExpectedFailuresError,
    accepted_by_name,
    judge,
    parse_expected,
    render_expected,
)
from tools.course_check.model import NotebookResult, Status

CELLS = {"a.ipynb": {2, 4, 5}, "lab/b.ipynb": {1}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            '["a.ipynb"]\n4 = "NameError"\n5 = "NotImplementedError"\n',
            {"a.ipynb": {4: "NameError", 5: "NotImplementedError"}},
            id="valid",
        ),
        pytest.param("", {}, id="empty"),
        pytest.param(
            '["a.ipynb"]\n4 = { exception = "ValueError", reason = "shown on purpose" }\n',
            {"a.ipynb": {4: "ValueError"}},
            id="accepted-by-name",
        ),
        pytest.param(
            '["a.ipynb"]\n4 = "ModuleNotFoundError"\n',
            '["a.ipynb"]: cell 4: ModuleNotFoundError is never a student\'s blank',
            id="an-import-failure-needs-a-name-and-a-reason",
        ),
        pytest.param(
            '["a.ipynb"]\n4 = { exception = "ValueError" }\n',
            '["a.ipynb"]: cell 4: a cell accepted by name is',
            id="accepted-without-a-reason",
        ),
        pytest.param(
            '["c.ipynb"]\n1 = "NameError"\n',
            '["c.ipynb"]: the course has no such notebook',
            id="no-such-notebook",
        ),
        pytest.param(
            '["a.ipynb"]\n3 = "NameError"\n',
            '["a.ipynb"]: 3 is not a code cell of the notebook (its code cells: 2, 4, 5)',
            id="not-a-code-cell",
        ),
        pytest.param(
            '["a.ipynb"]\n4 = 1\n',
            '["a.ipynb"]: cell 4 must name the exception it raises, like "NameError"',
            id="not-an-exception-name",
        ),
        pytest.param(
            '"a.ipynb" = "NameError"\n',
            '["a.ipynb"]: must be a table of `CELL = "Exception"`',
            id="not-a-table",
        ),
        pytest.param('["a.ipynb"\n', "is not valid TOML", id="not-toml"),
    ],
)
def test_parse_expected(text: str, expected: dict | str) -> None:
    if isinstance(expected, dict):
        assert parse_expected(text, CELLS) == expected
        assert parse_expected(render_expected("x", expected), CELLS) == expected
    else:
        with pytest.raises(ExpectedFailuresError) as error:
            parse_expected(text, CELLS)
        assert str(error.value).startswith(expected)


def ran(status: Status, *failures: tuple[int, str]) -> NotebookResult:
    first = failures[0] if failures else (None, None)
    return NotebookResult(
        "a.ipynb", status, 1.0, cell=first[0], exception=first[1], failures=tuple(failures)
    )


RECORDED = {4: "NameError", 5: "NotImplementedError"}
FIX = "(fix the notebook, or record its failures again with --accept-failures and review the diff)"


@pytest.mark.parametrize(
    ("result", "expected", "status", "message"),
    [
        pytest.param(
            ran(Status.FAILED, (4, "NameError"), (5, "NotImplementedError")),
            RECORDED,
            Status.PASSED,
            "",
            id="exactly-the-recorded-failures-pass",
        ),
        pytest.param(
            ran(
                Status.FAILED,
                (2, "ModuleNotFoundError"),
                (4, "NameError"),
                (5, "NotImplementedError"),
            ),
            RECORDED,
            Status.FAILED,
            f"cell 2 raised ModuleNotFoundError, which expected-failures.toml does not expect {FIX}",
            id="a-new-failure-fails",
        ),
        pytest.param(
            ran(Status.FAILED, (4, "KeyError"), (5, "NotImplementedError")),
            RECORDED,
            Status.FAILED,
            f"cell 4 raised KeyError, expected-failures.toml expects NameError {FIX}",
            id="another-exception-fails",
        ),
        pytest.param(
            ran(Status.FAILED, (5, "NotImplementedError")),
            RECORDED,
            Status.FAILED,
            f"cell 4 was expected to raise NameError but did not {FIX}",
            id="a-recorded-cell-that-passes-fails",
        ),
        pytest.param(
            ran(Status.PASSED),
            RECORDED,
            Status.FAILED,
            "cell 4 was expected to raise NameError but did not; cell 5 was expected to raise "
            f"NotImplementedError but did not {FIX}",
            id="a-notebook-that-passes-fails",
        ),
        pytest.param(ran(Status.FAILED, (4, "NameError")), {}, Status.FAILED, "", id="no-record"),
        pytest.param(ran(Status.TIMED_OUT), RECORDED, Status.TIMED_OUT, "", id="timed-out-stays"),
    ],
)
def test_judge(result: NotebookResult, expected: dict, status: Status, message: str) -> None:
    judged = judge(result, expected)
    assert (judged.status, judged.message) == (status, message)
    assert judged.failures == result.failures
    if status is Status.PASSED:
        assert judged.expected == tuple(sorted(expected.items()))
        assert judged.summary() == (
            "passed (expected failures: cell 4 NameError, cell 5 NotImplementedError)"
        )


def test_a_reason_is_kept_while_its_cell_fails_so() -> None:
    text = (
        '["a.ipynb"]\n2 = "NameError"\n4 = { exception = "ValueError", reason = "why \\"so\\"" }\n'
    )
    accepted = accepted_by_name(text)
    assert accepted == {"a.ipynb": {4: ("ValueError", 'why "so"')}}
    again = render_expected("x", {"a.ipynb": {2: "NameError", 4: "ValueError"}}, accepted)
    assert accepted_by_name(again) == accepted
    assert parse_expected(again, CELLS) == {"a.ipynb": {2: "NameError", 4: "ValueError"}}
    # Another exception now: the name was given for the old one, so it is not carried over.
    moved = render_expected("x", {"a.ipynb": {4: "KeyError"}}, accepted)
    assert accepted_by_name(moved) == {"a.ipynb": {}}
