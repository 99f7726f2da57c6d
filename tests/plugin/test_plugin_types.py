"""mypy on the Pants plugins (pants-plugins/) with Pants' own types, on Python 3.9.

`./pants check pants-plugins::` runs mypy on the plugins in the project's resolve (Python 3.11),
which cannot hold Pants (its wheel is cp39 only): there every `pants.*` name is untyped. Here mypy
checks them against the Pants that runs them, the one the `./pants` script installed into its
bootstrap venv, as Python 3.9: a misuse of Pants' API or of Python 3.9 fails this test.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from mypy import api

PLUGINS = ("course_targets", "buildkit_image_id", "image_reuse")


def pants_python() -> Path | None:
    """The Python 3.9 of the newest complete `./pants` bootstrap venv (`$PANTS_BOOTSTRAP_CACHE`,
    by default `${XDG_CACHE_HOME:-~/.cache}/pants/bootstrap`, as the script has it), when it can
    import Pants."""
    caches = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    cache = Path(os.environ.get("PANTS_BOOTSTRAP_CACHE") or caches / "pants/bootstrap")
    venvs = sorted(
        (marker.parent for marker in cache.glob("pants-*/.complete")),
        key=lambda venv: (venv / ".complete").stat().st_mtime,
        reverse=True,
    )
    for venv in venvs:
        python = venv / "bin" / "python"
        found = subprocess.run(
            [str(python), "-c", "import sys, pants.version; assert sys.version_info[:2] == (3, 9)"],
            capture_output=True,
        )
        if found.returncode == 0:
            return python
    return None


def test_the_plugins_type_check_against_pants_on_python_3_9(tmp_path: Path) -> None:
    python = pants_python()
    if python is None:
        pytest.skip("no ./pants bootstrap venv with Pants: run ./pants once")
    root = Path.cwd()
    config = tmp_path / "mypy.ini"
    # The project's mypy.ini, less `ignore_missing_imports`: a Pants mypy cannot find fails.
    # Pants' own modules and the catalog (checked on 3.11 by `./pants check`) are read, not
    # reported on.
    config.write_text(
        f"""\
[mypy]
python_version = 3.9
python_executable = {python}
mypy_path = {root / "pants-plugins"}:{root}
check_untyped_defs = True
explicit_package_bases = True
namespace_packages = True
cache_dir = {tmp_path / "cache"}

[mypy-pants.*,catalog.*]
follow_imports = silent
"""
    )
    args = ["--config-file", str(config)]
    for plugin in PLUGINS:
        args += ["-p", plugin]
    report, errors, status = api.run(args)
    assert status == 0, report + errors
