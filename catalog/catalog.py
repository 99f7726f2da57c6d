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
    Course,
    CourseReading,
    course_from_dict,
    course_to_dict,
    parse_course,
    parse_course_leniently,
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

    @property
    def image_keys(self) -> tuple[str, ...]:
        """Every course image, by image map key (`Course.image_keys`), in catalog order."""
        return tuple(key for course in self.courses for key in course.image_keys)

    def course_of_image(self, key: str) -> Course | None:
        """The course whose image map key `key` is (`<slug>`, or a GPU course's `<slug>--cpu`)."""
        return next((course for course in self.courses if key in course.image_keys), None)


def course_files(directory: Path) -> list[str]:
    """Paths of the files in a course directory, relative to it, POSIX-style."""
    files = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if d not in _IGNORED_PARTS)
        for name in filenames:
            files.append((Path(dirpath) / name).relative_to(directory).as_posix())
    return sorted(files)


def _metadata_text(directory: Path) -> str | None:
    metadata = directory / METADATA_FILE
    return metadata.read_text(encoding="utf-8") if metadata.is_file() else None


def read_course(directory: Path, *, allow_missing_notebooks: bool = False) -> Course:
    """Reads and validates one course directory; raises CatalogError at the first problem."""
    return parse_course(
        directory.name,
        _metadata_text(directory),
        course_files(directory),
        allow_missing_notebooks=allow_missing_notebooks,
    )


def read_course_leniently(directory: Path) -> CourseReading:
    """Reads one course directory and lists every problem of it (never raises CatalogError)."""
    return parse_course_leniently(
        directory.name, _metadata_text(directory), course_files(directory)
    )


def find_course_directories(root: Path | None = None) -> list[Path]:
    """Every course directory under `<root>/courses/`, sorted: each directory is a course
    (one without course.toml is a course with that problem), less hidden ones."""
    courses_dir = (root or find_repo_root()) / COURSES_DIR
    return sorted(p for p in courses_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


REPO_ROOT_ENV = "MONOREPO_ROOT"
REPO_ROOT_MARKER = "pants.toml"


def find_repo_root(start: Path | None = None) -> Path:
    """The monorepo root: the nearest folder at or above `start` with `pants.toml`.

    Without `start`: `$MONOREPO_ROOT` when set (`./pants test` sets it to the build root, as its
    sandboxes have no pants.toml), else the search starts at the working directory.
    """
    if start is None and os.environ.get(REPO_ROOT_ENV):
        return Path(os.environ[REPO_ROOT_ENV]).resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / REPO_ROOT_MARKER).is_file():
            return candidate
    raise FileNotFoundError(
        f"no {REPO_ROOT_MARKER} at or above {here}: run this from the repository "
        f"or set {REPO_ROOT_ENV}"
    )


def load_catalog(root: Path | None = None) -> Catalog:
    """Reads every course under `<root>/courses/`; `root` defaults to the monorepo root."""
    return Catalog(tuple(read_course(directory) for directory in find_course_directories(root)))


def catalog_to_list(catalog: Catalog) -> list[dict]:
    return [course_to_dict(course) for course in catalog]


def catalog_from_list(data: list[dict]) -> Catalog:
    return Catalog(tuple(course_from_dict(item) for item in data))
