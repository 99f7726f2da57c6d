"""The course catalog: every course directory under `courses/`, read and validated.

This is the one place that walks `courses/`; everything else (Pants, the hub, infra,
dashboards, tools) asks the catalog.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from catalog.course import (
    METADATA_FILE,
    CatalogError,
    Course,
    course_from_dict,
    course_to_dict,
    parse_course,
)

COURSES_DIR = "courses"
# Files in a course directory that are not course content.
_IGNORED_PARTS = {".ipynb_checkpoints", "__pycache__", ".git"}


@dataclass(frozen=True)
class Catalog:
    courses: tuple[Course, ...]

    def __iter__(self) -> Iterator[Course]:
        return iter(self.courses)

    def __len__(self) -> int:
        return len(self.courses)

    def __contains__(self, slug: object) -> bool:
        return any(course.slug == slug for course in self.courses)

    def get(self, slug: str) -> Course | None:
        return next((course for course in self.courses if course.slug == slug), None)

    def __getitem__(self, slug: str) -> Course:
        course = self.get(slug)
        if course is None:
            raise KeyError(slug)
        return course

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(course.slug for course in self.courses)


def course_files(directory: Path) -> list[str]:
    """Paths of the files in a course directory, relative to it, POSIX-style."""
    files = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if d not in _IGNORED_PARTS)
        for name in filenames:
            files.append((Path(dirpath) / name).relative_to(directory).as_posix())
    return sorted(files)


def read_course(directory: Path) -> Course:
    metadata = directory / METADATA_FILE
    if not metadata.is_file():
        raise CatalogError(
            f"{COURSES_DIR}/{directory.name}",
            METADATA_FILE,
            "is missing; every directory under courses/ is a course (see README: add a course)",
        )
    return parse_course(
        directory.name, metadata.read_text(encoding="utf-8"), course_files(directory)
    )


def find_repo_root(start: Path | None = None) -> Path:
    """The monorepo root: the nearest folder at or above `start` that holds `courses/`.

    Also true of a Pants sandbox that carries the course files.
    """
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / COURSES_DIR).is_dir():
            return candidate
    raise FileNotFoundError(f"no {COURSES_DIR}/ folder at or above {here}")


def load_catalog(root: Path | None = None) -> Catalog:
    """Reads every course under `<root>/courses/`; `root` defaults to the monorepo root."""
    courses_dir = (root or find_repo_root()) / COURSES_DIR
    directories = sorted(
        p for p in courses_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    return Catalog(tuple(read_course(directory) for directory in directories))


def catalog_to_list(catalog: Catalog) -> list[dict]:
    return [course_to_dict(course) for course in catalog]


def catalog_from_list(data: list[dict]) -> Catalog:
    return Catalog(tuple(course_from_dict(item) for item in data))
