"""The committed locks: installable as they are, made from the requirements beside them, layered.

Pure file checks (no Docker, no index): a lock that no longer matches its requirements file, a pin
without hashes, or a layer that re-pins what the layer below has fails here, before any build.
The images themselves are compared with these locks in tests/images/test_course_images.py and
tests/tools/test_flavor_inventory.py.
"""

from __future__ import annotations

import re

import pytest
import tomllib

from catalog import FLAVORS, Course, find_repo_root, load_catalog
from tools.course_check.dependencies import load_flavors, parse_requirements
from tools.lock import LOCK_FILE, REQUIREMENTS_FILE, LockError, normalize, parse_lock
from tools.lock_base_images import BASE_DIR, BY_NAME, FLAVOR_LAYERS, LAYERS, BaseLayer


def _pins(layer: BaseLayer) -> dict[str, str]:
    return parse_lock(layer.lock.read_text(), str(layer.lock)).versions()


@pytest.mark.parametrize("layer", LAYERS, ids=[layer.name for layer in LAYERS])
def test_base_lock_is_made_from_its_requirements(layer: BaseLayer) -> None:
    requirements = layer.requirements.read_text()
    lock = parse_lock(layer.lock.read_text(), str(layer.lock))
    assert lock.matches(requirements), (
        f"{layer.requirements} changed since {layer.lock} was made: "
        f"./pants run tools:lock-base-images {layer.name}"
    )
    below: dict[str, str] = {}
    for name in layer.below:
        below.update(_pins(BY_NAME[name]))
    assert not set(lock.pins) & set(below), "a layer locks only what it adds"
    for requirement in parse_requirements(requirements)[0]:
        name = normalize(requirement.name)
        assert name in lock.pins or name in below, f"{requirement.text} is not locked"
        version = lock.versions().get(name) or below[name]
        assert requirement.text.endswith(f"=={version}"), f"{requirement.text}, locked {version}"


def test_the_standin_has_what_the_upstream_ships_or_says_why_not() -> None:
    """images/base/upstream-packages.toml: the production upstream's packages. The stand-in's
    locks have each one, or a reason for lacking it that is still true (a package it has since
    gained must leave the list)."""
    upstream = tomllib.loads((BASE_DIR / "upstream-packages.toml").read_text())
    standin: dict[str, str] = {}
    for layer in FLAVOR_LAYERS["pytorch"]:
        standin.update(_pins(layer))
    packages = {normalize(name) for name in upstream["packages"]}
    lacks = {normalize(name): why for name, why in upstream["lacks"].items()}
    assert not set(lacks) - packages, "a reason for a package the upstream does not ship"
    assert sorted(name for name in packages - set(standin) if name not in lacks) == [], (
        "the stand-in lacks what the upstream ships: add it to images/base/standin-requirements.txt"
        " (or say why not in upstream-packages.toml)"
    )
    assert sorted(set(lacks) & set(standin)) == [], "the stand-in has these now: drop the reason"
    assert all(len(why) > 20 for why in lacks.values()), "a reason says why"
    # torchvision is the release built for the locked torch (0.N+15 for 2.N): another one's
    # compiled operators do not load (`operator torchvision::nms does not exist`).
    torch_minor = int(standin["torch"].split(".")[1])
    assert standin["torchvision"].startswith(f"0.{torch_minor + 15}."), standin["torchvision"]


def test_the_flavor_inventory_is_the_locked_tree() -> None:
    """flavor_modules.json lists exactly the locked packages: nothing from Debian or by chance."""
    assert set(FLAVOR_LAYERS) == set(FLAVORS)
    flavors = load_flavors()
    for flavor, layers in FLAVOR_LAYERS.items():
        locked: dict[str, str] = {}
        for layer in layers:
            locked.update(_pins(layer))
        assert dict(flavors[flavor].installed) == locked, (
            f"the {flavor} inventory does not match its locks: ./pants package images/base:: && "
            "./pants run tools:flavor-modules"
        )


@pytest.mark.parametrize("course", load_catalog().courses, ids=lambda course: course.slug)
def test_course_lock_is_made_from_its_requirements(course: Course) -> None:
    directory = find_repo_root() / course.directory
    lock = parse_lock((directory / LOCK_FILE).read_text(), f"{course.directory}/{LOCK_FILE}")
    assert lock.matches((directory / REQUIREMENTS_FILE).read_text())
    flavor_packages = load_flavors()[course.flavor].installed
    assert not {
        name for name, version in lock.versions().items() if flavor_packages.get(name) == version
    }, "a course lock holds only what the course adds to its flavor"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("numpy==2.4.6\n", "line 1: 'numpy==2.4.6' has no --hash"),
        ("numpy>=2\n    --hash=sha256:" + "0" * 64 + "\n", "is not an exact `name==version` pin"),
        (
            "a==1 \\\n    --hash=sha256:" + "1" * 64 + "\nA==2 \\\n    --hash=sha256:" + "2" * 64,
            "line 3: a is pinned twice",
        ),
    ],
)
def test_a_lock_pip_could_not_install_is_refused_with_its_line(text: str, error: str) -> None:
    with pytest.raises(LockError, match=re.escape(error)):
        parse_lock(text, "requirements.lock")
