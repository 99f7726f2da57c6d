"""The catalog over a whole courses/ directory, and over the real sample courses."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog import CatalogError, load_catalog

NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def write_course(
    root: Path, slug: str, toml: str, notebooks: tuple[str, ...] = ("a.ipynb",)
) -> None:
    directory = root / "courses" / slug
    directory.mkdir(parents=True)
    (directory / "course.toml").write_text(toml)
    (directory / "requirements.txt").write_text("")
    for notebook in notebooks:
        (directory / notebook).parent.mkdir(parents=True, exist_ok=True)
        (directory / notebook).write_text(NOTEBOOK)


def test_catalog_lists_every_course_directory_sorted(tmp_path: Path) -> None:
    for slug in ("zeta", "alpha"):
        write_course(
            tmp_path, slug, f'title = "{slug}"\nflavor = "pytorch"\nnotebooks = ["a.ipynb"]\n'
        )
    (tmp_path / "courses" / "BUILD").write_text("course_image_map()\n")
    catalog = load_catalog(tmp_path)
    assert catalog.slugs == ("alpha", "zeta")
    assert "alpha" in catalog and "beta" not in catalog
    assert catalog["zeta"].title == "zeta"
    assert catalog.get("beta") is None


def test_checkpoints_are_not_course_files(tmp_path: Path) -> None:
    write_course(
        tmp_path,
        "c",
        'title = "c"\nflavor = "pytorch"\nnotebooks = [".ipynb_checkpoints/a.ipynb"]\n',
        (".ipynb_checkpoints/a.ipynb",),
    )
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path)


def test_a_directory_without_metadata_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "courses" / "half-done").mkdir(parents=True)
    with pytest.raises(CatalogError, match="courses/half-done: course.toml: is missing"):
        load_catalog(tmp_path)


def test_the_sample_courses_are_valid() -> None:
    """The repository's own courses: at least four, with the GPU, TensorFlow and nested cases."""
    catalog = load_catalog()
    assert len(catalog) >= 4
    assert any(course.gpu for course in catalog)
    assert any(course.flavor == "tensorflow" for course in catalog)
    assert any(any("/" in nb for nb in course.notebooks) for course in catalog)
    assert all(len(course.notebooks) >= 2 for course in catalog)
