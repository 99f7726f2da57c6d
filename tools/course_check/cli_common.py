"""Shared command-line plumbing: which courses the arguments name, and writing results."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from catalog import find_course_directories, find_repo_root
from catalog.catalog import COURSES_DIR


def course_directories(arguments: Sequence[str], root: Path | None = None) -> list[Path]:
    """Course directories from slugs (`intro-ml`) or paths (`courses/intro-ml`); default: every
    course directory, by the catalog's rule (one without course.toml too: its checks say so)."""
    if not arguments:
        return find_course_directories(root)
    directories = []
    for argument in arguments:
        path = Path(argument)
        if not path.is_dir():
            path = (root or find_repo_root()) / COURSES_DIR / argument
        if not path.is_dir():
            raise SystemExit(f"{argument}: no such course (neither a directory nor a slug)")
        directories.append(path)
    return directories


def write_outputs(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")


def add_output_arguments(parser: argparse.ArgumentParser, default: Path) -> None:
    parser.add_argument("--output-dir", type=Path, default=default)
    parser.add_argument(
        "--shown-output-dir",
        type=Path,
        help="where the results will be for the reader, when not --output-dir (Pants copies its "
        "test's output to dist/test/<target>/)",
    )


def results_line(tool: str, args: argparse.Namespace) -> str:
    return f"{tool}: results in {args.shown_output_dir or args.output_dir}/"
