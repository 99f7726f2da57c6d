"""The committed inventory of what each flavor provides matches the base images as built now.

The static `missing-dependency` check reads tools/course_check/flavor_modules.json instead of
building images; this test keeps it honest. On a fresh machine the base images are built from
scratch, so this is also the proof that the locks (images/base/*.lock) give today the image they
gave when the inventory was taken. It compares what notebooks can import and which Python
distributions (at which versions) provide it, never Debian's package versions, which follow
bookworm's security updates. When it fails after a base change, see README: bump a base image.
"""

from __future__ import annotations

import docker
import pytest

from catalog import FLAVORS
from tools.course_check.dependencies import load_flavors
from tools.course_check.inventory import image_inventory

REGENERATE = "regenerate it: ./pants package images/base:: && ./pants run tools:flavor-modules"


@pytest.mark.parametrize("flavor", FLAVORS)
def test_inventory_matches_the_image(
    flavor: str, client: docker.DockerClient, base_images: dict[str, str]
) -> None:
    actual = image_inventory(client, base_images[flavor])
    committed = load_flavors()[flavor]
    missing = sorted(set(actual["modules"]) - committed.modules)
    extra = sorted(committed.modules - set(actual["modules"]))
    assert not missing and not extra, (
        f"flavor_modules.json is out of date for {flavor}: the image also has {missing[:20]}, "
        f"no longer has {extra[:20]}; {REGENERATE}"
    )
    assert dict(committed.installed) == actual["installed"], REGENERATE
    assert {k: list(v) for k, v in committed.distributions.items()} == actual["distributions"]


def test_the_tensorflow_flavor_extends_pytorch() -> None:
    flavors = load_flavors()
    assert flavors["pytorch"].modules < flavors["tensorflow"].modules
    assert "tensorflow" in flavors["tensorflow"].modules
    assert {"numpy", "pandas", "scipy", "sklearn", "matplotlib"} <= flavors["pytorch"].modules
