"""Expected failures (tools/course_check/expected.py): the recorded failing cells of assignments
with blanks, checked against the course and judged against what ran. Plain data in and out."""

from __future__ import annotations

import pytest

from tools.course_check.expected import (
    Entry,
    ExpectedFailuresError,
    accepted_by_name,
    judge,
    parse_expected,
    parse_record,
    record_run,
    render_record,
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
        assert parse_expected(render_record("x", parse_record(text, CELLS)), CELLS) == expected
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
    record = parse_record(text, CELLS)
    again = render_record(
        "x", record_run(record, {"a.ipynb": {2: "NameError", 4: "ValueError"}}, "cpu")
    )
    assert accepted_by_name(again) == accepted
    assert parse_expected(again, CELLS) == {"a.ipynb": {2: "NameError", 4: "ValueError"}}
    # Another exception now: the name was given for the old one, so it is not carried over.
    moved = record_run(record, {"a.ipynb": {4: "KeyError"}}, "cpu")
    assert moved == {"a.ipynb": {4: (Entry("KeyError"),)}}


# --- per device -------------------------------------------------------------------------------

ON_GPU = '4 = { exception = "TypeError", reason = "a CUDA tensor\'s .numpy()", device = "gpu" }\n'


@pytest.mark.parametrize(
    ("text", "cpu", "gpu"),
    [
        pytest.param(
            '["a.ipynb"]\n2 = "NameError"\n', {2: "NameError"}, {2: "NameError"}, id="both"
        ),
        pytest.param('["a.ipynb"]\n' + ON_GPU, {}, {4: "TypeError"}, id="gpu-only"),
        pytest.param(
            '["a.ipynb"]\n2 = { exception = "NameError", device = "cpu" }\n',
            {2: "NameError"},
            {},
            id="a-blank-on-one-device-needs-no-reason",
        ),
        pytest.param(
            '["a.ipynb"]\n5 = [{ exception = "NameError", device = "cpu" }, '
            '{ exception = "TypeError", reason = "r", device = "gpu" }]\n',
            {5: "NameError"},
            {5: "TypeError"},
            id="one-entry-per-device",
        ),
    ],
)
def test_an_entry_holds_on_its_device(text: str, cpu: dict, gpu: dict) -> None:
    assert parse_expected(text, CELLS, "cpu").get("a.ipynb", {}) == cpu
    assert parse_expected(text, CELLS, "gpu").get("a.ipynb", {}) == gpu
    record = parse_record(text, CELLS)
    assert parse_record(render_record("x", record), CELLS) == record


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            '["a.ipynb"]\n4 = { exception = "ZeroDivisionError", device = "gpu" }\n',
            '["a.ipynb"]: cell 4: a cell accepted by name is',
            id="a-non-blank-on-one-device-still-needs-a-reason",
        ),
        pytest.param(
            '["a.ipynb"]\n4 = { exception = "NameError", device = "tpu" }\n',
            '["a.ipynb"]: cell 4: device is "cpu" or "gpu"',
            id="an-unknown-device",
        ),
        pytest.param(
            '["a.ipynb"]\n4 = [{ exception = "NameError", device = "gpu" }, "NameError"]\n',
            '["a.ipynb"]: cell 4: a list holds one entry with device = "cpu" and one',
            id="a-list-without-one-entry-per-device",
        ),
    ],
)
def test_a_wrong_device_entry_is_refused(text: str, message: str) -> None:
    with pytest.raises(ExpectedFailuresError) as error:
        parse_record(text, CELLS)
    assert str(error.value).startswith(message)


#: (file before, device of the run, what it saw in a.ipynb, the entries after)
RUNS = [
    pytest.param("", "cpu", {2: "NameError"}, {2: (Entry("NameError"),)}, id="cpu-stands-for-both"),
    pytest.param(
        "",
        "gpu",
        {4: "TypeError"},
        {4: (Entry("TypeError", device="gpu"),)},
        id="a-gpu-only-failure-is-the-gpus",
    ),
    pytest.param(
        '["a.ipynb"]\n2 = "NameError"\n',
        "gpu",
        {2: "NameError", 4: "TypeError"},
        {2: (Entry("NameError"),), 4: (Entry("TypeError", device="gpu"),)},
        id="gpu-confirms-and-adds",
    ),
    pytest.param(
        '["a.ipynb"]\n2 = "NameError"\n',
        "gpu",
        {},
        {2: (Entry("NameError", device="cpu"),)},
        id="passes-on-the-gpu-keeps-the-cpus",
    ),
    pytest.param(
        '["a.ipynb"]\n2 = "NameError"\n' + ON_GPU,
        "cpu",
        {2: "NameError"},
        {2: (Entry("NameError"),), 4: (Entry("TypeError", "a CUDA tensor's .numpy()", "gpu"),)},
        id="a-cpu-run-keeps-the-gpus-entry-and-reason",
    ),
    pytest.param(
        '["a.ipynb"]\n2 = { exception = "NameError", device = "cpu" }\n',
        "cpu",
        {2: "NameError", 5: "NotImplementedError"},
        {2: (Entry("NameError", device="cpu"),), 5: (Entry("NotImplementedError"),)},
        id="a-cell-known-to-pass-on-the-gpu-stays-cpu-only",
    ),
    pytest.param(
        '["a.ipynb"]\n5 = "NameError"\n',
        "gpu",
        {5: "TypeError"},
        {5: (Entry("NameError", device="cpu"), Entry("TypeError", device="gpu"))},
        id="another-exception-on-the-gpu",
    ),
]


@pytest.mark.parametrize(("text", "device", "seen", "after"), RUNS)
def test_a_run_records_its_device_and_keeps_the_other(
    text: str, device: str, seen: dict, after: dict
) -> None:
    record = record_run(parse_record(text, CELLS), {"a.ipynb": seen}, device)
    assert record.get("a.ipynb", {}) == after
    assert parse_record(render_record("x", record), CELLS) == record
    # What was recorded is what the run's device is judged by.
    assert parse_expected(render_record("x", record), CELLS, device).get("a.ipynb", {}) == seen


def test_a_run_leaves_the_notebooks_it_did_not_run() -> None:
    record = parse_record('["lab/b.ipynb"]\n1 = "NameError"\n', CELLS)
    assert record_run(record, {"a.ipynb": {}}, "gpu") == record
