"""Fixtures for tests that run Pants itself on a committed copy of the checkout."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.repo_copy import copy_repo, git, stop_pantsd


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A committed copy of the checkout running the tests (`./pants test` sets MONOREPO_ROOT),
    deleted after the module's tests, its Pants daemon stopped."""
    root = os.environ.get("MONOREPO_ROOT")
    if not root or not (Path(root) / "pants.toml").is_file():
        pytest.skip("MONOREPO_ROOT is not set: run this test through `./pants test`")
    copy = copy_repo(Path(root), tmp_path_factory.mktemp("monorepo"))
    yield copy
    stop_pantsd(copy)
    shutil.rmtree(copy, ignore_errors=True)


@pytest.fixture
def restore(repo: Path):
    """Puts the copy back to its commit after a test that edits it."""
    yield repo
    git(repo, "checkout", "-q", "--", ".")
    git(repo, "clean", "-qfd")
