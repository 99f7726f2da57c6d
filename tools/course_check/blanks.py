"""Which failing cells are a student's blank, and which fail only because of one.

`--accept-failures` records the cells that fail until a student fills them in. It records only
those (`unaccepted`), so that a notebook that cannot import its libraries or breaks on this
Python is never recorded as "waiting for a student":

- a blank is a cell that holds a placeholder where code must go: `...` as a statement, an
  assigned value or a function's body (`answer = ...`, `def f(x): ...`; `def ...` does not even
  parse), `raise NotImplementedError`, or `pass` marked TODO / "your code here" (nbgrader's,
  otter's and hand-written assignments' styles). A blank cell itself may fail only as a blank
  does (`BLANK_RAISES`): never with an import or a file error;
- a follow-on failure is a later cell that fails with one of `FOLLOW_ON` and uses a name that
  comes from a blank: one a blank cell binds, or one bound later from such a name
  (`model = build_model()` after a blank `build_model`). The blank itself often runs:
  `answer = ...` fails nowhere but in the cell that uses `answer`;
- anything else needs the maintainer's name on it: `N = { exception = "X", reason = "why" }` in
  expected-failures.toml (tools/course_check/expected.py).

Pure: cell sources in, verdicts out.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping

from tools.course_check.notebook_code import to_python

#: What a blank cell raises when it runs: its placeholder, or code that cannot work yet.
BLANK_RAISES = frozenset(
    {
        "NotImplementedError",
        "SyntaxError",
        "NameError",
        "TypeError",
        "ValueError",
        "AttributeError",
        "AssertionError",
    }
)
#: What a cell raises that uses a blank's names (missing, `...`, or None from an empty body).
FOLLOW_ON = BLANK_RAISES - {"SyntaxError"} | {
    "IndexError",
    "KeyError",
    "UnboundLocalError",
    "RuntimeError",  # a library refusing a placeholder (`torch.tensor(...)`)
}
#: `pass` marked as the student's to replace, or a line that only says so.
_MARKER = re.compile(
    r"^\s*(pass\s*)?#\s*(TODO|YOUR CODE|YOUR ANSWER|FILL IN)\b", re.IGNORECASE | re.MULTILINE
)
_STRINGS_AND_COMMENTS = re.compile(
    r"'''.*?'''|\"\"\".*?\"\"\"|'[^'\n]*'|\"[^\"\n]*\"|#[^\n]*", re.S
)


def _tree(source: str) -> ast.Module | None:
    python, _ = to_python(source)
    if python is None:
        return None
    try:
        return ast.parse(python)
    except (SyntaxError, ValueError):
        return None


def _ellipsis(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is Ellipsis


def is_blank(source: str) -> bool:
    """Whether the cell holds a placeholder for the student's code."""
    tree = _tree(source)
    if tree is None:  # does not parse: a blank only where `...` stands for code (`def ...`)
        return "..." in _STRINGS_AND_COMMENTS.sub("", source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Expr, ast.Assign, ast.AnnAssign, ast.Return)) and _ellipsis(
            node.value
        ):
            return True
        if isinstance(node, ast.Raise) and node.exc is not None:
            raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(raised, ast.Name) and raised.id == "NotImplementedError":
                return True
    return bool(_MARKER.search(source))


def _bound(target: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def defined_names(source: str) -> set[str]:
    """The names a cell binds at its top level: assignments, functions, classes, imports, and
    the targets of `for` and `with`."""
    tree = _tree(source)
    if tree is None:  # a blank that does not parse: the names it tried to define
        found = re.finditer(r"^\s*(?:def|class)\s+(\w+)|^\s*(\w+)\s*=", source, re.MULTILINE)
        return {match.group(1) or match.group(2) for match in found}
    names: set[str] = set()
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(statement.name)
        elif isinstance(statement, ast.Assign):
            names |= set().union(*(_bound(t) for t in statement.targets))
        elif isinstance(statement, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
            names |= _bound(statement.target)
        elif isinstance(statement, (ast.With, ast.AsyncWith)):
            names |= set().union(
                *(_bound(i.optional_vars) for i in statement.items if i.optional_vars)
            )
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in statement.names}
    return names


def used_names(source: str) -> set[str]:
    tree = _tree(source)
    if tree is None:
        return set(re.findall(r"\b[A-Za-z_]\w*\b", _STRINGS_AND_COMMENTS.sub("", source)))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def unaccepted(
    sources: Mapping[int, str], failures: Mapping[int, str], accepted: Mapping[int, str]
) -> dict[int, str]:
    """The failing cells `--accept-failures` must refuse, each with the reason: neither a blank
    failing as a blank does, nor a follow-on of one, nor accepted by the maintainer (`accepted`:
    cell -> exception)."""
    placeholders: set[str] = set()  # names that come from a blank, cell by cell
    refused = {}
    for cell in sorted(set(sources) | set(failures)):
        source = sources.get(cell, "")
        blank = is_blank(source)
        follows = bool(used_names(source) & placeholders)
        exception = failures.get(cell)
        if exception is not None and accepted.get(cell) != exception:
            if blank and exception in BLANK_RAISES:
                pass
            elif follows and exception in FOLLOW_ON:
                pass
            elif blank:
                refused[cell] = (
                    f"cell {cell} raised {exception}, which a student's blank never raises "
                    "(an import, a file, the machine): it fails for another reason"
                )
            else:
                refused[cell] = (
                    f"cell {cell} raised {exception}, and it is no student's blank (no `...`, "
                    "`raise NotImplementedError` or TODO in it) nor follows from one"
                )
        if blank or follows:
            placeholders |= defined_names(source)
    return refused
