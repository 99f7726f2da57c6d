"""The `course()` target generator on bad input, and `tailor` for new course directories.

Runs the real Pants with the in-repo plugin on a temporary git copy of the repo.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from catalog import load_catalog
from tools.repo_copy import PantsFailed, run_pants


@pytest.fixture(autouse=True)
def clean_tree(restore: Path) -> None:
    pass


def pants_error(repo: Path, *args: str) -> str:
    with pytest.raises(PantsFailed) as failure:
        run_pants(repo, *args)
    return str(failure.value)


def test_bad_metadata_is_an_error_naming_course_file_and_field(repo: Path) -> None:
    course = next(iter(load_catalog(repo)))
    metadata = repo / course.directory / "course.toml"
    metadata.write_text(metadata.read_text().replace(f'"{course.flavor}"', '"jax"', 1))
    error = pants_error(repo, "list", "courses::")
    assert f"courses/{course.slug}/course.toml: flavor: 'jax' is not a base image flavor" in error


def test_a_missing_notebook_is_an_error_naming_it(repo: Path) -> None:
    course = next(iter(load_catalog(repo)))
    (repo / course.directory / course.notebooks[0]).unlink()
    error = pants_error(repo, "list", "courses::")
    assert f"{course.notebooks[0]} does not exist in the course directory" in error


def test_an_own_dockerfile_must_build_from_the_course_flavor(repo: Path) -> None:
    course = next(c for c in load_catalog(repo) if c.flavor == "pytorch")
    (repo / course.directory / "Dockerfile").write_text(
        "ARG BASE_IMAGE=images/base:tensorflow\nFROM ${BASE_IMAGE}\n"
    )
    error = pants_error(repo, "list", "courses::")
    assert f"Course `{course.slug}`" in error
    assert "ARG BASE_IMAGE=images/base:pytorch" in error


def test_tailor_writes_the_build_file_of_a_new_course(repo: Path) -> None:
    source = next(iter(load_catalog(repo)))
    new = repo / "courses" / "brand-new"
    shutil.copytree(repo / source.directory, new)
    (new / "BUILD").unlink()
    assert "courses/brand-new/BUILD" in pants_error(repo, "tailor", "--check", "courses::")
    run_pants(repo, "tailor", "courses::")
    assert (new / "BUILD").read_text().strip() == "course()"
    assert "courses/brand-new#image" in run_pants(repo, "list", "courses/brand-new::").split()
