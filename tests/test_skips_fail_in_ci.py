"""tests/conftest.py: with `CI` set, a skipped test is reported as a failure with its reason.

Runs a real pytest process on a throwaway test file next to a copy of the conftest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")
SKIPPING_TESTS = """
import pytest

def test_needs_a_tool():
    pytest.skip("the frobnicator is not installed")

@pytest.fixture
def service():
    pytest.skip("no frobnicator service")

def test_needs_a_service(service):
    pass

@pytest.mark.xfail(reason="known bug")
def test_expected_failure():
    assert False

def test_passes():
    pass
"""


def _pytest(folder: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", str(folder)],
        capture_output=True,
        text=True,
        env=env,
        cwd=folder,
        timeout=120,
        check=False,
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_skipping.py").write_text(SKIPPING_TESTS)
    return tmp_path


def test_without_ci_a_skip_stays_a_skip(folder: Path) -> None:
    result = _pytest(folder, None)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 2 skipped, 1 xfailed" in result.stdout


def test_with_ci_a_skip_fails_and_keeps_its_reason(folder: Path) -> None:
    result = _pytest(folder, "true")
    assert result.returncode == 1, result.stdout
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in result.stdout
    assert "a skip is a failure" in result.stdout
    assert "the frobnicator is not installed" in result.stdout
    assert "no frobnicator service" in result.stdout
