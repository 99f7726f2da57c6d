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

A cell that fails on one device only (a CUDA tensor's `.numpy()`) gets an entry for that device:

    12 = { exception = "TypeError", reason = "shows .cpu() first", device = "gpu" }

and, where the devices fail differently, one per device: `12 = [{ ... device = "cpu" }, { ...
device = "gpu" }]`. An entry without `device` holds for both. `--accept-failures` records what
the run's device saw (`--gpus`: the GPU) and keeps the other device's entries (`record_run`).

From then on the smoke test passes such a notebook only while exactly those cells fail with those
exceptions on the device it runs on: a new failure (an import, a data file, another cell),
another exception, or a recorded cell that now passes (a blank filled in by mistake) fails the
gate. Cells that fail on purpose for
every reader (an error shown in a lecture) take the `raises-exception` tag instead.

Pure functions of text and plain data; the static check validates the file, the smoke test uses it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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

#: notebook path -> cell number -> exception name (on one device)
Expected = Mapping[str, Mapping[int, str]]
#: The devices an entry can be for; an entry without one is for both.
DEVICES = ("cpu", "gpu")
_NAMED = 'a cell accepted by name is `{ exception = "X", reason = "why" }`, the reason written out'


@dataclass(frozen=True)
class Entry:
    """One recorded failure of a cell: its exception, the maintainer's reason where accepted by
    name, and the device it is for (None: both)."""

    exception: str
    reason: str = ""
    device: str | None = None

    def holds_on(self, device: str | None) -> bool:
        return device is None or self.device in (None, device)


#: notebook path -> cell number -> its entries (one for both devices, or one per device)
Record = dict[str, dict[int, tuple[Entry, ...]]]


class ExpectedFailuresError(ValueError):
    """An expected-failures file that does not describe the course's notebooks."""


def _entry(where: str, cell: str, value: object) -> Entry:
    if not isinstance(value, dict):
        exception, reason, device = value, "", None
    else:
        exception, reason, device = (
            value.get("exception"),
            value.get("reason", ""),
            value.get("device"),
        )
        if set(value) - {"exception", "reason", "device"}:
            raise ExpectedFailuresError(f"{where}: cell {cell}: {_NAMED}")
        if device not in (None, *DEVICES):
            raise ExpectedFailuresError(
                f'{where}: cell {cell}: device is "cpu" or "gpu" (an entry without it holds for '
                "both)"
            )
    if not isinstance(exception, str) or not exception.isidentifier():
        raise ExpectedFailuresError(
            f'{where}: cell {cell} must name the exception it raises, like "NameError"'
        )
    if not isinstance(reason, str):
        raise ExpectedFailuresError(f"{where}: cell {cell}: {_NAMED}")
    if (
        isinstance(value, dict)
        and not reason.strip()
        and (device is None or exception not in BLANK_RAISES | FOLLOW_ON)
    ):
        raise ExpectedFailuresError(f"{where}: cell {cell}: {_NAMED}")
    if not reason.strip() and exception not in BLANK_RAISES | FOLLOW_ON:
        raise ExpectedFailuresError(
            f"{where}: cell {cell}: {exception} is never a student's blank; fix the cell, "
            f'or accept it by name: {cell} = {{ exception = "{exception}", '
            'reason = "why" }'
        )
    return Entry(exception, reason.strip(), device)


def parse_record(text: str, code_cells: Mapping[str, set[int]]) -> Record:
    """The file's entries, checked against the course: `code_cells` is every notebook's code
    cell numbers. Raises ExpectedFailuresError naming the notebook and the cell."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ExpectedFailuresError(f"is not valid TOML: {e}") from None
    record: Record = {}
    for notebook, cells in data.items():
        where = f"[{json.dumps(notebook)}]"
        if notebook not in code_cells:
            raise ExpectedFailuresError(f"{where}: the course has no such notebook")
        if not isinstance(cells, dict) or not cells:
            raise ExpectedFailuresError(f'{where}: must be a table of `CELL = "Exception"`')
        record[notebook] = {}
        for cell, value in cells.items():
            if not cell.isdigit() or int(cell) not in code_cells[notebook]:
                raise ExpectedFailuresError(
                    f"{where}: {cell} is not a code cell of the notebook (its code cells: "
                    f"{', '.join(map(str, sorted(code_cells[notebook]))) or 'none'})"
                )
            entries = tuple(
                _entry(where, cell, v) for v in (value if isinstance(value, list) else [value])
            )
            devices = [e.device for e in entries]
            if len(entries) > 1 and sorted(map(str, devices)) != list(DEVICES):
                raise ExpectedFailuresError(
                    f'{where}: cell {cell}: a list holds one entry with device = "cpu" and one '
                    'with device = "gpu"'
                )
            record[notebook][int(cell)] = entries
    return record


def view(record: Record, device: str | None) -> dict[str, dict[int, str]]:
    """The failures expected on `device` (None: on either, for the static checks), as
    notebook -> cell -> exception."""
    found: dict[str, dict[int, str]] = {}
    for notebook, cells in record.items():
        for cell, entries in cells.items():
            held = [e for e in entries if e.holds_on(device)]
            if held:
                found.setdefault(notebook, {})[cell] = held[0].exception
    return found


def parse_expected(
    text: str, code_cells: Mapping[str, set[int]], device: str | None = None
) -> dict[str, dict[int, str]]:
    """The failures the file expects on `device` (None: on either); see `parse_record`."""
    return view(parse_record(text, code_cells), device)


def accepted_by_name(text: str, device: str | None = None) -> dict[str, dict[int, tuple[str, str]]]:
    """The cells the maintainer accepted by name on `device`: notebook -> cell -> (exception,
    reason). The text is one `parse_expected` accepted."""
    cells = {notebook: set(map(int, table)) for notebook, table in tomllib.loads(text).items()}
    return {
        notebook: {
            cell: (e.exception, e.reason)
            for cell, entries in table.items()
            for e in entries
            if e.reason and e.holds_on(device)
        }
        for notebook, table in parse_record(text, cells).items()
    }


def record_run(record: Record, seen: Expected, device: str) -> Record:
    """The record once a run on `device` saw `seen` (notebook -> cell -> exception, every notebook
    that ran): that device's failures become exactly what it saw and the other device's stay.
    A GPU run keeps the CPU's entries. A CPU run, the usual one, also stands for the GPU where the
    record says nothing device-specific about a cell, and keeps the GPU's entries where it does.
    A reason stays with its cell while the cell fails with the same exception."""
    new: Record = {n: dict(cells) for n, cells in record.items() if n not in seen}
    for notebook, failures in seen.items():
        old = record.get(notebook, {})
        before = {d: view({notebook: old}, d).get(notebook, {}) for d in DEVICES}
        split = {cell for cell, entries in old.items() if any(e.device for e in entries)}
        after = {device: dict(failures)}
        if device == "gpu":
            after["cpu"] = before["cpu"]
        else:
            after["gpu"] = {
                cell: exception
                for cell in {*failures, *split}
                if (exception := (before["gpu"] if cell in split else failures).get(cell))
            }
        cells: dict[int, tuple[Entry, ...]] = {}
        for cell in sorted({*after["cpu"], *after["gpu"]}):
            reasons = {
                (e.exception, d): e.reason
                for e in old.get(cell, ())
                for d in DEVICES
                if e.holds_on(d)
            }
            on = {d: after[d].get(cell) for d in DEVICES}
            if on["cpu"] == on["gpu"]:
                exception = str(on["cpu"])
                reason = reasons.get((exception, "cpu")) or reasons.get((exception, "gpu"), "")
                cells[cell] = (Entry(exception, reason),)
            else:
                cells[cell] = tuple(
                    Entry(str(on[d]), reasons.get((str(on[d]), d), ""), d) for d in DEVICES if on[d]
                )
        if cells:
            new[notebook] = cells
    return new


def _render_entry(entry: Entry) -> str:
    if not entry.reason and not entry.device:
        return f'"{entry.exception}"'
    fields = [f'exception = "{entry.exception}"']
    if entry.reason:
        fields.append(f"reason = {json.dumps(entry.reason, ensure_ascii=False)}")
    if entry.device:
        fields.append(f'device = "{entry.device}"')
    return "{ " + ", ".join(fields) + " }"


def render_record(slug: str, record: Record) -> str:
    """The file's text."""
    lines = [HEADER.format(slug=slug)]
    for notebook in sorted(record):
        lines.append(f"\n[{json.dumps(notebook)}]\n")
        for cell, entries in sorted(record[notebook].items()):
            rendered = [_render_entry(e) for e in entries]
            value = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
            lines.append(f"{cell} = {value}\n")
    return "".join(lines)


def code_cell_numbers(notebook_text: str) -> set[int]:
    """The 1-based positions (among all cells) of a notebook's code cells; none if unreadable."""
    try:
        cells = json.loads(notebook_text).get("cells", [])
    except (ValueError, AttributeError):
        return set()
    return {i for i, cell in enumerate(cells, start=1) if cell.get("cell_type") == "code"}


def load_record(directory: Path, notebooks: Iterable[str]) -> Record:
    """The course's expected-failures file ({} without it); ExpectedFailuresError if wrong."""
    path = directory / EXPECTED_FILE
    if not path.is_file():
        return {}
    cells = {
        n: code_cell_numbers((directory / n).read_text(encoding="utf-8", errors="replace"))
        for n in notebooks
        if (directory / n).is_file()
    }
    try:
        return parse_record(path.read_text(encoding="utf-8"), cells)
    except ExpectedFailuresError as e:
        raise ExpectedFailuresError(f"{path}: {e}") from None


def load_expected(
    directory: Path, notebooks: Iterable[str], device: str = "cpu"
) -> dict[str, dict[int, str]]:
    """The course's failures expected on `device`; ExpectedFailuresError if the file is wrong."""
    return view(load_record(directory, notebooks), device)


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
