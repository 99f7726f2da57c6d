"""Shared fixtures for the quality gate's Docker tests: the real base images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog import FLAVORS
from tests.docker_engine import client  # noqa: F401  (fixture)
from tests.repo_fixtures import repo  # noqa: F401  (a fixture of test_pants_targets.py)


def base_image(flavor: str) -> str:
    """The `images/base:<flavor>` image Pants built for this test run.

    `./pants test` builds it first (the tests' `runtime_package_dependencies`) and puts its
    `docker-info.json` in the sandbox; `./pants package images/base:<flavor>` leaves one in dist/.
    """
    for folder in (Path("images.base"), Path("dist/images.base")):
        info = folder / f"{flavor}.docker-info.json"
        if info.is_file():
            data = json.loads(info.read_text())
            tags = [t["name"] for r in data["registries"] for t in r["tags"]]
            return tags[0] if tags else data["image_id"]
    pytest.skip(f"images/base:{flavor} is not built: run this test through `./pants test`")


@pytest.fixture(scope="session")
def base_images() -> dict[str, str]:
    return {flavor: base_image(flavor) for flavor in FLAVORS}
