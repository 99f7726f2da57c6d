"""What a notebook's code needs: the modules it imports and the files it reads. Pure, no I/O.

Notebook cells are IPython, not Python: magics (`%matplotlib inline`, `!ls`, `%%bash`) are
removed before parsing. File paths are found where a reader (`pd.read_csv`, `open`, `np.load`,
`Path(...).read_text()`...) gets a string the code spells out: literals, f-strings and `+`, `/`,
`os.path.join` of names assigned a string at top level earlier (`DATA = "../data"`), which covers
how course notebooks name their data. Anything computed at run time is left to the smoke test.
"""

from __future__ import annotations

import ast
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

#: Cell magics whose body is still Python.
_PYTHON_CELL_MAGICS = {"capture", "time", "timeit", "prun", "debug"}
_MAGIC_ASSIGNMENT = re.compile(r"^(\s*[\w.\[\]'\", ]+\s*=\s*)[!%].*$")
_MAGIC_LINE = re.compile(r"^(\s*)[!%].*$")
_HELP_LINE = re.compile(r"^(\s*)[\w.]+\?\??\s*$")
_WRITEFILE = re.compile(r"^%%writefile(?:\s+-a)?\s+(\S+)")


@dataclass(frozen=True)
class CodeCell:
    """A code cell: its 1-based position among all cells, and its source as Python."""

    number: int
    source: str
    python: str | None  # None: not Python (`%%bash` ...)
    writes_file: str | None = None  # `%%writefile PATH`
    #: Tagged `raises-exception` (the standard tag, which nbclient honours): an error here is
    #: taught on purpose, so no check reports one.
    raises_exception: bool = False


def to_python(source: str) -> tuple[str | None, str | None]:
    """(Python text with IPython syntax neutralized, or None if not Python; %%writefile path)."""
    lines = source.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        words = lines[first].strip()[2:].split()
        name = words[0] if words else ""
        written = _WRITEFILE.match(lines[first].strip())
        if name not in _PYTHON_CELL_MAGICS:
            return None, written.group(1) if written else None
        lines = ["", *lines[first + 1 :]]
    python = []
    for line in lines:
        assignment = _MAGIC_ASSIGNMENT.match(line)
        if assignment and not line.lstrip().startswith(("!", "%")):
            python.append(assignment.group(1) + "None")
            continue
        magic = _MAGIC_LINE.match(line) or _HELP_LINE.match(line)
        python.append(f"{magic.group(1)}pass" if magic else line)
    return "\n".join(python), None


RAISES_EXCEPTION = "raises-exception"


def code_cells(notebook: Mapping[str, Any]) -> list[CodeCell]:
    """The code cells of a notebook (nbformat 4 dict or NotebookNode), in order."""
    cells = []
    for index, cell in enumerate(notebook.get("cells", ()), start=1):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        python, written = to_python(source)
        tags = (cell.get("metadata") or {}).get("tags") or ()
        cells.append(CodeCell(index, source, python, written, RAISES_EXCEPTION in tags))
    return cells


@dataclass(frozen=True)
class CellSyntaxError:
    cell: int
    line: int | None
    message: str
    text: str


@dataclass(frozen=True)
class ParsedCell:
    cell: CodeCell
    tree: ast.Module


def parse_cells(cells: Iterable[CodeCell]) -> tuple[list[ParsedCell], list[CellSyntaxError]]:
    parsed, errors = [], []
    for cell in cells:
        if cell.python is None or cell.raises_exception:
            continue  # not Python, or failing on purpose (its syntax, imports and files too)
        try:
            parsed.append(ParsedCell(cell, ast.parse(cell.python)))
        except SyntaxError as e:
            text = (e.text or "").strip()
            errors.append(CellSyntaxError(cell.number, e.lineno, e.msg, text))
        except ValueError as e:  # e.g. a NUL character (a SyntaxError from Python 3.12 on)
            errors.append(CellSyntaxError(cell.number, None, str(e), ""))
    return parsed, errors


# --- imports --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    cell: int
    line: int
    module: str  # the full dotted name, `sklearn.datasets`
    optional: bool  # inside `try: ... except ImportError`

    @property
    def top_level(self) -> str:
        return self.module.split(".", 1)[0]


_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def _catches_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        if handler.type is None:
            return True
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        for t in types:
            name = t.id if isinstance(t, ast.Name) else getattr(t, "attr", None)
            if name in _IMPORT_ERRORS:
                return True
    return False


def imports(parsed: Iterable[ParsedCell]) -> list[Import]:
    """Absolute imports, in order; relative imports (`from . import x`) are skipped."""
    found: list[Import] = []

    def visit(node: ast.AST, cell: int, optional: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(cell, node.lineno, alias.name, optional) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                found.append(Import(cell, node.lineno, node.module, optional))
        if isinstance(node, ast.Try) and _catches_import_error(node):
            for statement in node.body:
                visit(statement, cell, True)
            others: list[ast.AST] = [*node.handlers, *node.orelse, *node.finalbody]
            for other in others:
                visit(other, cell, optional)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, cell, optional)

    for p in parsed:
        visit(p.tree, p.cell.number, False)
    return found


# --- file reads -----------------------------------------------------------------------------

#: Functions and methods whose first argument (or `path`-like keyword) is a file they read.
READERS = frozenset(
    {
        "read_csv",
        "read_table",
        "read_excel",
        "read_json",
        "read_parquet",
        "read_feather",
        "read_pickle",
        "read_hdf",
        "read_fwf",
        "read_orc",
        "read_sas",
        "read_spss",
        "read_stata",
        "read_xml",
        "read_file",
        "loadtxt",
        "genfromtxt",
        "fromfile",
        "load",
        "loadmat",
        "imread",
        "open",
        "load_workbook",
        "ExcelFile",
        "TextLineDataset",
        "TFRecordDataset",
    }
)
#: Methods of a path object that read it (`Path("x").read_text()`).
PATH_READ_METHODS = frozenset({"read_text", "read_bytes", "open"})
#: Functions and methods that write the file named by their first argument, or by their second
#: after the object they save (`torch.save(model, "m.pth")`, `joblib.dump(model, "m.joblib")`).
WRITERS = frozenset(
    {
        "to_csv",
        "to_parquet",
        "to_excel",
        "to_json",
        "to_pickle",
        "to_feather",
        "to_hdf",
        "to_orc",
        "to_xml",
        "savefig",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "imwrite",
        "imsave",
        "dump",
        "urlretrieve",
        "mkdir",
        "makedirs",
    }
)
PATH_WRITE_METHODS = frozenset({"write_text", "write_bytes", "mkdir", "touch"})
_PATH_KEYWORDS = ("filepath_or_buffer", "path", "path_or_buf", "io", "fname", "file", "filename")
#: Where writers name their file besides the first argument (torch.save's `f`).
_WRITE_KEYWORDS = (*_PATH_KEYWORDS, "f")
_PATH_CONSTRUCTORS = frozenset({"Path", "PurePath", "PosixPath", "PurePosixPath"})
_JOINS = frozenset({"join", "joinpath"})
_PASSTHROUGH_METHODS = frozenset({"resolve", "absolute", "expanduser", "as_posix"})


def _callable_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def evaluate(node: ast.expr | None, env: Mapping[str, str]) -> str | None:
    """The string (or path, as a string) an expression spells out, or None if computed."""
    if node is None:
        return None
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.Name):
        return env.get(node.id)
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                if value.format_spec is not None or value.conversion not in (-1, 115):
                    return None
                part = evaluate(value.value, env)
            else:
                part = evaluate(value, env)
            if part is None:
                return None
            parts.append(part)
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Div)):
        left, right = evaluate(node.left, env), evaluate(node.right, env)
        if left is None or right is None:
            return None
        return left + right if isinstance(node.op, ast.Add) else posixpath.join(left, right)
    if isinstance(node, ast.Call):
        name = _callable_name(node.func)
        args = [evaluate(a, env) for a in node.args]
        if name in _PATH_CONSTRUCTORS or name in {"str", "fspath"}:
            if not args:
                return "." if name in _PATH_CONSTRUCTORS else None
            return None if None in args else posixpath.join(*args)  # type: ignore[arg-type]
        if name in ("cwd", "getcwd") and not args:
            return "."
        if name == "home" and not args:
            return "~"
        if name == "expanduser" and len(args) == 1:
            return args[0]
        if isinstance(node.func, ast.Attribute):
            receiver = evaluate(node.func.value, env)
            if name in _JOINS and args and None not in args:
                # os.path.join(a, b) (receiver is a module) or Path(a).joinpath(b)
                base = [receiver] if name == "joinpath" and receiver is not None else []
                if name == "joinpath" and receiver is None:
                    return None
                return posixpath.join(*base, *args)  # type: ignore[arg-type]
            if name in _PASSTHROUGH_METHODS and receiver is not None:
                return receiver
    return None


@dataclass(frozen=True)
class FileRead:
    cell: int
    line: int
    path: str
    function: str


def _path_argument(call: ast.Call, env: Mapping[str, str]) -> str | None:
    if call.args:
        return evaluate(call.args[0], env)
    for keyword in call.keywords:
        if keyword.arg in _PATH_KEYWORDS:
            return evaluate(keyword.value, env)
    return None


def _written_paths(call: ast.Call, env: Mapping[str, str]) -> list[str]:
    """The paths a writer call may name: its first two positional arguments and its path
    keywords, those that are known strings (the saved object is none)."""
    candidates = list(call.args[:2]) + [k.value for k in call.keywords if k.arg in _WRITE_KEYWORDS]
    return [path for node in candidates if (path := evaluate(node, env)) is not None]


def _open_mode(call: ast.Call, env: Mapping[str, str], position: int) -> str:
    mode = None
    if len(call.args) > position:
        mode = evaluate(call.args[position], env)
    for keyword in call.keywords:
        if keyword.arg == "mode":
            mode = evaluate(keyword.value, env)
    return mode or "r"


def _walk_calls(node: ast.AST) -> Iterator[ast.Call]:
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            yield child


def _assign(statement: ast.stmt, env: dict[str, str]) -> None:
    targets: list[ast.expr] = []
    value: ast.expr | None = None
    if isinstance(statement, ast.Assign):
        targets, value = statement.targets, statement.value
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        targets, value = [statement.target], statement.value
    for target in targets:
        if isinstance(target, ast.Name):
            result = evaluate(value, env)
            if result is None:
                env.pop(target.id, None)
            else:
                env[target.id] = result


def file_accesses(parsed: Iterable[ParsedCell]) -> tuple[list[FileRead], set[str]]:
    """(files the notebook reads, paths it writes), as spelled in the code.

    Names assigned a string at the top level of a cell (`DATA = "../data"`) are known to every
    later statement, as they are when the notebook runs top to bottom.
    """
    env: dict[str, str] = {}
    reads: list[FileRead] = []
    writes: set[str] = set()
    for p in parsed:
        if p.cell.writes_file:
            writes.add(p.cell.writes_file)
        for statement in p.tree.body:
            for call in _walk_calls(statement):
                name = _callable_name(call.func)
                if name is None:
                    continue
                receiver = (
                    evaluate(call.func.value, env) if isinstance(call.func, ast.Attribute) else None
                )
                if name in PATH_READ_METHODS and receiver is not None:
                    mode = _open_mode(call, env, 0) if name == "open" else "r"
                    if set(mode) & set("wax"):
                        writes.add(receiver)
                    else:
                        reads.append(FileRead(p.cell.number, call.lineno, receiver, name))
                    continue
                if name in PATH_WRITE_METHODS and receiver is not None:
                    writes.add(receiver)
                    continue
                if name in WRITERS:
                    writes.update(_written_paths(call, env))
                    continue
                path = _path_argument(call, env)
                if path is None:
                    continue
                if name == "open" and set(_open_mode(call, env, 1)) & set("wax"):
                    writes.add(path)
                elif name in READERS:
                    reads.append(FileRead(p.cell.number, call.lineno, path, name))
            _assign(statement, env)
    return reads, writes


# --- images in markdown -----------------------------------------------------------------------

_MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^)]*[\"'])?\s*\)")
_HTML_IMAGE = re.compile(r"<img\b[^>]*?\bsrc\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)


@dataclass(frozen=True)
class ImageReference:
    cell: int  # 1-based position among all cells
    path: str  # as written: relative to the notebook's folder


def image_references(notebook: Mapping[str, Any]) -> list[ImageReference]:
    """Images that markdown cells show from files (`![alt](x.png)`, `<img src="x.png">`); not
    URLs, data URIs or cell attachments."""
    found = []
    for index, cell in enumerate(notebook.get("cells", ()), start=1):
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else source
        for pattern in (_MARKDOWN_IMAGE, _HTML_IMAGE):
            for match in pattern.finditer(text):
                target = unquote(match.group(1).split("#", 1)[0].split("?", 1)[0])
                if target and ":" not in target and not target.startswith("//"):
                    found.append(ImageReference(index, target))
    return found
