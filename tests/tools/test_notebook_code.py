"""What a notebook's code imports and reads, found statically (tools/course_check/notebook_code)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tools.course_check.notebook_code import (
    code_cells,
    file_accesses,
    imports,
    parse_cells,
    to_python,
)


def notebook(*sources: str, markdown_first: bool = True) -> dict:
    cells = (
        [{"cell_type": "markdown", "source": "# Title", "metadata": {}}] if markdown_first else []
    )
    cells += [{"cell_type": "code", "source": s, "metadata": {}, "outputs": []} for s in sources]
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def parsed(*sources: str):
    cells, errors = parse_cells(code_cells(notebook(*sources)))
    assert not errors, errors
    return cells


def test_magics_are_neutralized_and_non_python_cells_skipped() -> None:
    python, _ = to_python("%matplotlib inline\nimport numpy as np\n!pip list\nfiles = !ls\nnp?")
    assert python is not None
    assert "import numpy as np" in python and "files = None" in python
    compile(python, "cell", "exec")
    assert to_python("%%bash\necho hi") == (None, None)
    assert to_python("%%writefile helper.py\nx = 1") == (None, "helper.py")
    timed, _ = to_python("%%time\nimport pandas")
    assert timed is not None and "import pandas" in timed


def test_cells_are_numbered_in_notebook_order_markdown_included() -> None:
    cells = code_cells(notebook("a = 1", "b = 2"))
    assert [c.number for c in cells] == [2, 3]


def test_syntax_errors_name_the_cell() -> None:
    _, errors = parse_cells(code_cells(notebook("x = 1", 'print("x"')))
    assert [(e.cell, e.line) for e in errors] == [(3, 1)]


def test_imports_top_level_dotted_relative_and_optional() -> None:
    found = imports(
        parsed(
            "import numpy as np, os.path\nfrom sklearn.datasets import load_wine",
            "from . import local\ntry:\n    import cupy\nexcept ImportError:\n    cupy = None",
            "def f():\n    import seaborn\n",
        )
    )
    assert [(i.cell, i.top_level, i.optional) for i in found] == [
        (2, "numpy", False),
        (2, "os", False),
        (2, "sklearn", False),
        (3, "cupy", True),
        (4, "seaborn", False),
    ]


def test_reads_with_names_fstrings_and_paths() -> None:
    reads, writes = file_accesses(
        parsed(
            'import pandas as pd\nDATA = "../data"',
            'sales = pd.read_csv(f"{DATA}/sales.csv")\nopen("notes.txt").read()',
            'from pathlib import Path\nroot = Path("data")\n(root / "a.json").read_text()',
            'import os\nnp.load(os.path.join(DATA, "x.npy"))\npd.read_parquet(path="p.parquet")',
            'df.to_csv("out.csv")\npd.read_csv("out.csv")\nopen("log.txt", "w")',
            "pd.read_csv(some_function())\npd.read_csv(f'{unknown}/x.csv')",
        )
    )
    assert [(r.cell, r.path, r.function) for r in reads] == [
        (3, "../data/sales.csv", "read_csv"),
        (3, "notes.txt", "open"),
        (4, "data/a.json", "read_text"),
        (5, "../data/x.npy", "load"),
        (5, "p.parquet", "read_parquet"),
        (6, "out.csv", "read_csv"),
    ]
    assert writes == {"out.csv", "log.txt"}


def test_a_file_saved_after_its_object_is_written() -> None:
    """torch.save and joblib.dump name the file after the object: a model saved, then loaded,
    is no missing data."""
    reads, writes = file_accesses(
        parsed(
            "import torch, joblib",
            'torch.save(model.state_dict(), "model.pth")\nmodel.load_state_dict(torch.load("model.pth"))',
            'joblib.dump(clf, filename="clf.joblib")\ntorch.save(obj=m, f="m2.pth")',
        )
    )
    assert writes == {"model.pth", "clf.joblib", "m2.pth"}
    assert [(r.cell, r.path) for r in reads] == [(3, "model.pth")]


def test_a_reassigned_name_is_forgotten() -> None:
    reads, _ = file_accesses(parsed('D = "a"\nD = compute()\nopen(D + "/x")'))
    assert reads == []


@given(st.text(max_size=200))
def test_any_cell_text_is_handled(source: str) -> None:
    python, _ = to_python(source)
    cells, errors = parse_cells(code_cells(notebook(source)))
    imports(cells)
    file_accesses(cells)
    assert python is None or isinstance(python, str)
    assert len(cells) + len(errors) <= 1
