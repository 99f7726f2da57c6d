"""Expected failures: the cells of a course that fail until a student fills them in.

Assignments have blanks (`answer = ...`, `raise NotImplementedError`) whose cells fail in the
smoke test. A maintainer records them once, reviews the file and commits it:

    ./pants run tools:smoke-test -- <slug> --accept-failures

writes `courses/<slug>/expected-failures.toml`:

    ["assignments/a1.ipynb"]
    3 = "NameError"            # cell number (every cell counts, as in JupyterLab) = exception
    7 = "NotImplementedError"
    9 = { exception = "ValueError", reason = "shows Python's limit on purpose" }

`--accept-failures` records only a student's blanks and what fails because of them
(tools/course_check/blanks.py); any other failing cell is refused with its reason, unless the
maintainer accepts it by name, as cell 9 above: with the exception and the reason, written by hand.

From then on the smoke test passes such a notebook only while exactly those cells fail with those
exceptions: a new failure (an import, a data file, another cell), another exception, or a recorded
cell that now passes (a blank filled in by mistake) fails the gate. Cells that fail on purpose for
every reader (an error shown in a lecture) take the `raises-exception` tag instead.

Pure functions of text and plain data; the static check validates the file, the smoke test uses it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import tomllib

from tools.course_check.blanks import BLANK_RAISES, FOLLOW_ON
from tools.course_check.model import NotebookResult, Status

EXPECTED_FILE = "expected-failures.toml"
HEADER = (
    "# Cells that fail until a student fills them in (cell number = exception): the smoke test\n"
    "# passes these notebooks only while exactly these cells fail so. Written by\n"
    "# `./pants run tools:smoke-test -- {slug} --accept-failures`; review it before committing.\n"
)

#: notebook path -> cell number -> exception name
Expected = Mapping[str, Mapping[int, str]]


class ExpectedFailuresError(ValueError):
    """An expected-failures file that does not describe the course's notebooks."""


def parse_expected(text: str, code_cells: Mapping[str, set[int]]) -> dict[str, dict[int, str]]:
    """The file's expectations, checked against the course: `code_cells` is every notebook's
    code cell numbers. Raises ExpectedFailuresError naming the notebook and the cell."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ExpectedFailuresError(f"is not valid TOML: {e}") from None
    expected: dict[str, dict[int, str]] = {}
    for notebook, cells in data.items():
        where = f"[{json.dumps(notebook)}]"
        if notebook not in code_cells:
            raise ExpectedFailuresError(f"{where}: the course has no such notebook")
        if not isinstance(cells, dict) or not cells:
            raise ExpectedFailuresError(f'{where}: must be a table of `CELL = "Exception"`')
        expected[notebook] = {}
        for cell, value in cells.items():
            exception = value.get("exception") if isinstance(value, dict) else value
            if isinstance(value, dict) and (
                set(value) != {"exception", "reason"} or not str(value.get("reason", "")).strip()
            ):
                raise ExpectedFailuresError(
                    f'{where}: cell {cell}: a cell accepted by name is `{{ exception = "X", '
                    'reason = "why" }`, the reason written out'
                )
            if not cell.isdigit() or int(cell) not in code_cells[notebook]:
                raise ExpectedFailuresError(
                    f"{where}: {cell} is not a code cell of the notebook (its code cells: "
                    f"{', '.join(map(str, sorted(code_cells[notebook]))) or 'none'})"
                )
            if not isinstance(exception, str) or not exception.isidentifier():
                raise ExpectedFailuresError(
                    f'{where}: cell {cell} must name the exception it raises, like "NameError"'
                )
            if not isinstance(value, dict) and exception not in BLANK_RAISES | FOLLOW_ON:
                raise ExpectedFailuresError(
                    f"{where}: cell {cell}: {exception} is never a student's blank; fix the cell, "
                    f'or accept it by name: {cell} = {{ exception = "{exception}", '
                    'reason = "why" }'
                )
            expected[notebook][int(cell)] = exception
    return expected


def accepted_by_name(text: str) -> dict[str, dict[int, tuple[str, str]]]:
    """The cells the maintainer accepted by name: notebook -> cell -> (exception, reason). The
    text is one `parse_expected` accepted."""
    return {
        notebook: {
            int(cell): (value["exception"], value["reason"])
            for cell, value in cells.items()
            if isinstance(value, dict)
        }
        for notebook, cells in tomllib.loads(text).items()
    }


def code_cell_numbers(notebook_text: str) -> set[int]:
    """The 1-based positions (among all cells) of a notebook's code cells; none if unreadable."""
    try:
        cells = json.loads(notebook_text).get("cells", [])
    except (ValueError, AttributeError):
        return set()
    return {i for i, cell in enumerate(cells, start=1) if cell.get("cell_type") == "code"}


def load_expected(directory: Path, notebooks: Iterable[str]) -> dict[str, dict[int, str]]:
    """The course's expected failures ({} without the file); ExpectedFailuresError if wrong."""
    path = directory / EXPECTED_FILE
    if not path.is_file():
        return {}
    cells = {
        n: code_cell_numbers((directory / n).read_text(encoding="utf-8", errors="replace"))
        for n in notebooks
        if (directory / n).is_file()
    }
    try:
        return parse_expected(path.read_text(encoding="utf-8"), cells)
    except ExpectedFailuresError as e:
        raise ExpectedFailuresError(f"{path}: {e}") from None


def render_expected(
    slug: str,
    expected: Expected,
    accepted: Mapping[str, Mapping[int, tuple[str, str]]] | None = None,
) -> str:
    """The file's text; a cell `accepted` by name (with that exception) keeps its reason."""
    lines = [HEADER.format(slug=slug)]
    for notebook in sorted(expected):
        lines.append(f"\n[{json.dumps(notebook)}]\n")
        named = (accepted or {}).get(notebook, {})
        for cell, name in sorted(expected[notebook].items()):
            if named.get(cell, ("", ""))[0] == name:
                reason = json.dumps(named[cell][1], ensure_ascii=False)
                lines.append(f'{cell} = {{ exception = "{name}", reason = {reason} }}\n')
            else:
                lines.append(f'{cell} = "{name}"\n')
    return "".join(lines)


def judge(result: NotebookResult, expected: Mapping[int, str]) -> NotebookResult:
    """The notebook's result against its recorded failures: passed only if exactly those cells
    failed with those exceptions. Other outcomes (timed out, missing...) stay as they are."""
    if not expected or result.status not in (Status.PASSED, Status.FAILED):
        return result
    seen = dict(result.failures)
    if seen == dict(expected):
        return dataclasses.replace(
            result,
            status=Status.PASSED,
            cell=None,
            exception=None,
            message="",
            log_tail="",
            expected=tuple(sorted(expected.items())),
        )
    differences = [
        (
            f"cell {cell} raised {seen[cell]}, {EXPECTED_FILE} expects {name}"
            if cell in seen
            else f"cell {cell} was expected to raise {name} but did not"
        )
        for cell, name in sorted(expected.items())
        if seen.get(cell) != name
    ] + [
        f"cell {cell} raised {name}, which {EXPECTED_FILE} does not expect"
        for cell, name in sorted(seen.items())
        if cell not in expected
    ]
    first = next((cell for cell, _ in sorted(seen.items()) if cell not in expected), None)
    return dataclasses.replace(
        result,
        status=Status.FAILED,
        cell=first if first is not None else result.cell,
        exception=seen.get(first) if first is not None else result.exception,
        message="; ".join(differences) + " (fix the notebook, or record its failures again "
        "with --accept-failures and review the diff)",
    )
