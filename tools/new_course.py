"""Scaffolds a new course that builds, passes every check and appears in the hub's course list.

    ./pants run tools:new-course -- <slug> --description "What learners do in it." [--gpu]
        [--flavor tensorflow] [--title "Title"]

Writes courses/<slug>/ with BUILD (`course()`), course.toml, an empty pinned requirements.txt and
a first notebook that runs in the flavor's image (on a GPU when there is one, for --gpu). Then:
`./pants test courses/<slug>::` (checks and smoke test) and `./pants package courses::` (the
image and the image map the hub reads).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from catalog import FLAVORS, CatalogError, find_repo_root, parse_course
from catalog.catalog import COURSES_DIR
from catalog.course_toml import TODO_DESCRIPTION, CourseDraft, render_course_toml
from catalog.flavors import DEFAULT_FLAVOR
from tools.lock import LOCK_FILE, course_lock

NOTEBOOK = "notebooks/01-welcome.ipynb"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def welcome_notebook(title: str, flavor: str, gpu: bool) -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(
            f"# {title}\n\nWelcome! This notebook checks that your environment works; "
            "replace it with the course's first lesson."
        ),
        new_code_cell(
            "import sys\n\nimport numpy as np\nimport pandas as pd\n\n"
            'print("Python", sys.version.split()[0], "| numpy", np.__version__, '
            '"| pandas", pd.__version__)'
        ),
    ]
    if flavor == "tensorflow":
        device = (
            'gpus = tf.config.list_physical_devices("GPU")\n'
            'print("GPUs:", gpus or "none (the CPU works too, more slowly)")\n'
            if gpu
            else ""
        )
        cells.append(
            new_code_cell(
                "import tensorflow as tf\n\n"
                f"{device}"
                "x = tf.constant([[1.0, 2.0], [3.0, 4.0]])\n"
                "print(tf.linalg.matmul(x, x).numpy())"
            )
        )
    elif gpu:
        cells.append(
            new_code_cell(
                "try:  # PyTorch comes with the production pytorch flavor\n"
                "    import torch\n\n"
                '    print("CUDA available:", torch.cuda.is_available())\n'
                "except ImportError:\n"
                '    print("PyTorch is not installed in this image")'
            )
        )
    if flavor != "tensorflow":
        cells.append(
            new_code_cell(
                "rng = np.random.default_rng(0)\n"
                'frame = pd.DataFrame({"x": rng.normal(size=100)})\n'
                "frame.describe()"
            )
        )
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = KERNELSPEC
    notebook.metadata["language_info"] = {"name": "python"}
    for number, cell in enumerate(notebook.cells, start=1):
        cell["id"] = f"welcome-{number}"
    return notebook


def scaffold(
    root: Path,
    slug: str,
    flavor: str,
    gpu: bool,
    title: str | None = None,
    description: str | None = None,
) -> Path:
    """Creates `<root>/courses/<slug>/`; raises CatalogError/FileExistsError, writes nothing then.
    Without a description, course.toml says TODO, which the course's check reports."""
    title = title or slug.replace("-", " ").capitalize()
    draft = CourseDraft(
        title, flavor, (NOTEBOOK,), gpu=gpu, description=description or TODO_DESCRIPTION
    )
    directory = root / COURSES_DIR / slug
    if directory.exists():
        raise FileExistsError(f"{directory} already exists")
    files = {
        "BUILD": "course()\n",
        "course.toml": render_course_toml(draft),
        "requirements.txt": (
            "# Extra packages for this course, pinned: one `name==version` per line.\n"
            "# The base image already has numpy, pandas, scipy, scikit-learn and matplotlib"
            + (" and TensorFlow" if flavor == "tensorflow" else "")
            + ".\n"
        ),
        NOTEBOOK: nbformat.writes(welcome_notebook(title, flavor, gpu)) + "\n",
    }
    # Nothing to resolve yet: the lock of no requirements (pin-requirements after adding some).
    files[LOCK_FILE] = course_lock(slug, flavor, files["requirements.txt"])
    parse_course(slug, files["course.toml"], files)  # validate before writing anything
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return directory


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slug", help="the course's directory name and image tag (a-z, 0-9, -)")
    parser.add_argument("--flavor", choices=FLAVORS, default=DEFAULT_FLAVOR)
    parser.add_argument("--gpu", action="store_true", help="learners get a GPU where there is one")
    parser.add_argument("--title", help="the course's name as learners see it")
    parser.add_argument(
        "--description", help="one or two sentences learners read in the course list"
    )
    parser.add_argument("--root", type=Path, help="the monorepo (default: the current one)")
    args = parser.parse_args(argv)
    try:
        directory = scaffold(
            args.root or find_repo_root(),
            args.slug,
            args.flavor,
            args.gpu,
            args.title,
            args.description,
        )
    except (CatalogError, FileExistsError) as e:
        print(f"new-course: {e}")
        return 1
    print(f"new-course: created {directory}")
    if not args.description:
        print(
            "new-course: course.toml's description says TODO: write it (the check fails until then)"
        )
    print("Next:")
    for command, what in (
        (f"./pants test courses/{args.slug}::", "static checks, and the smoke test in its image"),
        ("./pants package courses::", "its image, and the image map the hub lists courses from"),
        (f"./pants run tools:links -- {args.slug}", "its launch links"),
    ):
        print(f"  {command:<48} {what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
