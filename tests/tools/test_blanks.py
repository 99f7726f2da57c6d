"""Which failing cells `--accept-failures` may record (tools/course_check/blanks.py): a
student's blanks and what fails because of them; nothing else without the maintainer's name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.course_check.blanks import is_blank, unaccepted
from tools.course_check.expected import EXPECTED_FILE, accepted_by_name, parse_expected
from tools.course_check.model import NotebookResult, SmokeResult, Status
from tools.course_check.smoke_cli import accept_failures


@pytest.mark.parametrize(
    ("source", "blank"),
    [
        ("answer = ...", True),
        ("def square(x):\n    ...", True),
        ("def ...", True),  # does not parse: otter's style of a function to write
        ("def square(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()", True),
        ("raise NotImplementedError", True),
        ("def f():\n    pass  # TODO: write this", True),
        ("import torchvision\nmodel = torchvision.models.resnet18()", False),
        ("print(10 ** 5000)", False),
        ("x = [1, 2][5]", False),
        ("def broken(:\n    return 1", False),  # a syntax error, no placeholder
        ('print "Loading..."', False),  # Python 2: `...` in a string is no placeholder
        ("import torch\nx = t[..., 0]", False),  # `...` in a subscript is numpy's
        ("from typing import Tuple\nT = Tuple[int, ...]", False),
        ("import torchvision  # TODO pin it", False),  # a TODO, but no `pass` to replace
        ("def f():\n    pass  # YOUR CODE HERE", True),
        ("# YOUR CODE HERE\npass", True),
        ("# BEGIN SOLUTION\nx = 1 / 0\n# END SOLUTION", False),  # the instructor's solution
    ],
)
def test_what_a_blank_looks_like(source: str, blank: bool) -> None:
    assert is_blank(source) is blank


SOURCES = {
    2: "import numpy as np\nimport torchvision",
    3: "def square(x):\n    ...",
    4: "answer = ...",
    5: "assert square(3) == 9",
    6: "print(answer + 1)",
    7: "print(int('9' * 5000))",
    8: "print(undefined_elsewhere)",
    9: "print(np.zeros(3), torchvision.__version__)",
    10: "import cv2\nclass Model:\n    def fit(self):\n        raise NotImplementedError",
    11: "def build_model():\n    raise NotImplementedError",
    12: "model = build_model()",
    13: "model.fit()",
    14: "result = square(3)",
    15: "result.shape",
    16: "torch.tensor(answer)",
    17: "torch.tensor([1.0]).cuda()",
}


@pytest.mark.parametrize(
    ("failures", "accepted", "refused"),
    [
        pytest.param(
            {3: "NotImplementedError", 4: "NameError", 5: "TypeError", 6: "TypeError"},
            {},
            [],
            id="blanks-and-their-follow-ons",
        ),
        pytest.param(
            {2: "RuntimeError", 9: "NameError"},
            {},
            [2, 9],
            id="a-failed-import-and-what-follows-is-never-a-blank",
        ),
        pytest.param({7: "ValueError"}, {}, [7], id="a-lecture-that-breaks-on-this-python"),
        pytest.param(
            {7: "ValueError"}, {7: "ValueError"}, [], id="accepted-by-name-with-its-exception"
        ),
        pytest.param({7: "ValueError"}, {7: "KeyError"}, [7], id="accepted-for-another-exception"),
        pytest.param(
            {4: "NameError", 8: "NameError"},
            {},
            [8],
            id="a-name-no-blank-defines",
        ),
        pytest.param(
            {5: "AssertionError", 6: "TypeError"}, {}, [], id="blanks-that-run-fail-later"
        ),
        pytest.param({2: "NameError"}, {}, [2], id="a-follow-on-comes-after-its-blank"),
        pytest.param(
            {10: "ModuleNotFoundError"}, {}, [10], id="a-blank-that-fails-to-import-is-refused"
        ),
        pytest.param(
            {12: "NotImplementedError", 13: "NameError", 15: "AttributeError", 16: "RuntimeError"},
            {},
            [],
            id="follow-ons-of-follow-ons",
        ),
        pytest.param({17: "RuntimeError"}, {}, [17], id="a-runtime-error-of-its-own"),
    ],
)
def test_what_accept_failures_refuses(
    failures: dict[int, str], accepted: dict[int, str], refused: list[int]
) -> None:
    assert sorted(unaccepted(SOURCES, failures, accepted)) == refused


def notebook(*sources: str) -> str:
    cells = [
        {"cell_type": "code", "id": f"c{i}", "source": s, "metadata": {}, "outputs": [],
         "execution_count": None}
        for i, s in enumerate(sources)
    ]  # fmt: skip
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def ran(*failures: tuple[int, str]) -> SmokeResult:
    cell, exception = failures[0]
    n = NotebookResult("a.ipynb", Status.FAILED, 1.0, None, cell, exception, "x", failures=failures)
    return SmokeResult("c", "img", 2**30, 60, False, (n,))


def test_accept_failures_records_blanks_and_refuses_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.ipynb").write_text(
        notebook("import torchvision", "answer = ...", "print(answer + 1)", "print(10 ** 5000)")
    )
    record = tmp_path / EXPECTED_FILE
    # A failed import is refused, with the cell and why; nothing is written.
    assert not accept_failures(tmp_path, "c", ran((1, "RuntimeError"), (3, "TypeError")))
    assert "cell 1 raised RuntimeError, and it is no student's blank" in capsys.readouterr().err
    assert not record.exists()
    # Blanks and what follows from them are recorded.
    assert accept_failures(tmp_path, "c", ran((3, "TypeError")))
    assert parse_expected(record.read_text(), {"a.ipynb": {1, 2, 3, 4}}) == {
        "a.ipynb": {3: "TypeError"}
    }
    # A cell that fails for another reason only once the maintainer accepts it by name.
    assert not accept_failures(tmp_path, "c", ran((3, "TypeError"), (4, "ValueError")))
    record.write_text(
        '["a.ipynb"]\n3 = "TypeError"\n4 = { exception = "ValueError", reason = "the limit" }\n'
    )
    assert accept_failures(tmp_path, "c", ran((3, "TypeError"), (4, "ValueError")))
    assert accepted_by_name(record.read_text()) == {"a.ipynb": {4: ("ValueError", "the limit")}}
