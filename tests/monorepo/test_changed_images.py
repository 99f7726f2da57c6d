"""Changed-only builds: `--changed-since` selects exactly the images a change affects.

Runs the real Pants (and the in-repo `course()` plugin) on a temporary git copy of the repo.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog import Catalog, load_catalog
from tools.repo_copy import run_pants


def selected(repo: Path, *, only_images: bool = True) -> set[str]:
    args = ["--changed-since=HEAD", "--changed-dependents=transitive"]
    if only_images:
        args.append("--filter-target-type=docker_image")
    return set(run_pants(repo, *args, "list").split())


def image(slug: str) -> str:
    return f"courses/{slug}#image"


def images_on(catalog: Catalog, base: str) -> set[str]:
    """The course image targets built FROM `base`: `#image`, or a GPU course's `#image-cpu`."""
    return {
        image(course.slug) + ("" if key == course.slug else "-cpu")
        for course in catalog
        for key in course.image_keys
        if course.base_image_of(key) == base
    }


@pytest.fixture(autouse=True)
def clean_tree(restore: Path) -> None:
    pass


def test_no_change_selects_nothing(repo: Path) -> None:
    assert selected(repo, only_images=False) == set()


def test_a_notebook_change_selects_exactly_its_course(repo: Path) -> None:
    course = next(iter(load_catalog(repo)))
    notebook = repo / course.directory / course.notebooks[-1]
    notebook.write_text(notebook.read_text().replace('"cells": [', '"cells": [ ', 1))
    assert selected(repo) == {image(course.slug)}


def test_a_base_flavor_change_selects_exactly_the_courses_on_it(repo: Path) -> None:
    catalog = load_catalog(repo)
    # CPU courses of the flavor, and its GPU courses' CPU images (`#image-cpu`)
    on_tensorflow = images_on(catalog, "images/base:tensorflow")
    assert on_tensorflow and len(on_tensorflow) < len(catalog.image_keys)
    assert any(target.endswith("#image-cpu") for target in on_tensorflow)
    with (repo / "images/base/Dockerfile.tensorflow").open("a") as dockerfile:
        dockerfile.write("# a change\n")
    assert selected(repo) == {"images/base:tensorflow", *on_tensorflow}


def test_a_cuda_base_change_selects_the_gpu_courses_and_no_cpu_course(repo: Path) -> None:
    """The CPU courses' images do not depend on the CUDA variants (nor CPU nodes pull them)."""
    catalog = load_catalog(repo)
    gpu = images_on(catalog, "images/base:pytorch-gpu") | images_on(
        catalog, "images/base:tensorflow-gpu"
    )
    assert gpu == {image(c.slug) for c in catalog if c.gpu}
    assert gpu and len(gpu) < len(catalog)
    with (repo / "images/base/Dockerfile.pytorch-gpu").open("a") as dockerfile:
        dockerfile.write("# a change\n")
    assert selected(repo) == {"images/base:pytorch-gpu", "images/base:tensorflow-gpu", *gpu}


def test_the_shared_template_selects_the_courses_that_use_it(repo: Path) -> None:
    catalog = load_catalog(repo)
    with (repo / "images/course/Dockerfile").open("a") as dockerfile:
        dockerfile.write("# a change\n")
    assert selected(repo) == {
        image(c.slug) + suffix
        for c in catalog
        if not c.has_dockerfile
        for suffix in ("", "-cpu")[: len(c.image_keys)]
    }


def test_a_catalog_change_selects_its_dependents_and_no_image(repo: Path) -> None:
    with (repo / "catalog/course.py").open("a") as source:
        source.write("# a change\n")
    targets = selected(repo, only_images=False)
    assert "catalog/course.py" in targets
    assert "tests/catalog/test_course.py" in targets
    assert not any(t.endswith("#image") or t.startswith("images/") for t in targets)
