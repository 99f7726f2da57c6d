"""The built course images keep the contract the hub and learners rely on.

Pants builds every course image (and writes the image map) before this test runs, through the
test's `runtime_package_dependencies` on `courses:image-map`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import docker
import pytest

from catalog import Course, find_repo_root, load_catalog
from catalog.image_facts import is_content_tag
from tools.lock import LOCK_FILE, freeze_versions, parse_lock
from tools.lock_base_images import FLAVOR_LAYERS

IMAGE_MAP = Path("courses/image-map.json")
CATALOG = load_catalog()
#: Every course image: (course, image map key), a GPU course's CPU image (`<slug>--cpu`) too.
IMAGES = [pytest.param(c, key, id=key) for c in CATALOG for key in c.image_keys]


@pytest.fixture(scope="module")
def image_map() -> dict[str, str]:
    return json.loads(IMAGE_MAP.read_text())


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker.from_env()


def test_the_image_map_has_every_course_with_an_immutable_tag(image_map: dict[str, str]) -> None:
    assert set(image_map) == set(CATALOG.image_keys)
    for key, reference in image_map.items():
        repository, tag = reference.rsplit(":", 1)
        assert repository.endswith("/ol-course-notebooks")
        assert tag.startswith(f"{key}-") and len(tag) == len(key) + 65, reference


@pytest.mark.parametrize(("course", "key"), IMAGES)
def test_course_image_contents(
    course: Course, key: str, image_map: dict[str, str], client: docker.DockerClient
) -> None:
    script = (
        "import os, shutil, sys, json; "
        "print(json.dumps({'uid': os.getuid(), 'home': os.path.expanduser('~'), "
        "'singleuser': shutil.which('jupyterhub-singleuser'), "
        f"'notebooks': [os.path.isfile(p) for p in {list(course.notebooks)!r}], "
        "'stray': sorted(f for f in os.listdir('.') if f.startswith('Dockerfile'))}))"
    )
    output = client.containers.run(image_map[key], ["python3", "-c", script], remove=True)
    facts = json.loads(output)
    assert facts["uid"] == 1000 and facts["home"] == "/home/jovyan"
    assert facts["singleuser"], "jupyterhub-singleuser is missing"
    assert all(facts["notebooks"]), f"notebooks missing from the image: {course.notebooks}"
    assert facts["stray"] == []


@pytest.mark.parametrize(("course", "key"), IMAGES)
def test_course_image_shares_every_layer_of_its_base(
    course: Course, key: str, image_map: dict[str, str], client: docker.DockerClient
) -> None:
    """Each image starts with its base's layers: a GPU course's own image the CUDA variant's,
    its `<slug>--cpu` image the CPU flavor's."""
    layers = client.images.get(image_map[key]).attrs["RootFS"]["Layers"]
    base_name = course.base_image_of(key).rsplit(":", 1)[
        1
    ]  # images/base:pytorch-gpu -> pytorch-gpu
    bases = [
        image
        for image in client.images.list(name="*/ol-course-base")
        if any(is_content_tag(tag, base_name) for tag in image.tags)
    ]
    shared = [
        b
        for b in bases
        if layers[: len(b.attrs["RootFS"]["Layers"])] == b.attrs["RootFS"]["Layers"]
    ]
    assert shared, f"{key} does not start with the layers of any {base_name} base image"


GPU_COURSES = [course for course in CATALOG if course.gpu]


@pytest.mark.parametrize("course", GPU_COURSES, ids=[course.slug for course in GPU_COURSES])
def test_a_gpu_course_image_has_a_cuda_pytorch(
    course: Course, image_map: dict[str, str], client: docker.DockerClient
) -> None:
    """A course with `gpu = true` gets a PyTorch built for CUDA (here the stand-in's, which every
    flavor has: README, "Images"); no GPU is needed to read `torch.version.cuda`."""
    script = "import torch; print(torch.version.cuda or '')"
    output = client.containers.run(
        image_map[course.slug], ["python3", "-c", script], network_mode="none", remove=True
    )
    assert re.fullmatch(r"\d+\.\d+", output.decode().strip()), output


@pytest.mark.parametrize(("course", "key"), IMAGES)
def test_course_image_has_exactly_its_locked_python_packages(
    course: Course, key: str, image_map: dict[str, str], client: docker.DockerClient
) -> None:
    """Every Python package in the image is its flavor's lock plus the course's, at that version."""
    root = find_repo_root()
    expected: dict[str, str] = {}
    for layer in FLAVOR_LAYERS[course.flavor]:
        expected.update(parse_lock(layer.lock.read_text()).versions())
    expected.update(parse_lock((root / course.directory / LOCK_FILE).read_text()).versions())
    output = client.containers.run(
        image_map[key],
        ["python3", "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        network_mode="none",
        remove=True,
    )
    assert freeze_versions(output.decode()) == expected
