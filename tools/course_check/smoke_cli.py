"""Smoke test: runs every notebook of a course in its built image, as learners would.

    ./pants test courses/<slug>#smoke-test                 (builds the image first; CI does this)
    ./pants run tools:smoke-test -- [COURSE ...] [--notebook PATH] [--image REF] [--gpus]
                                    [--accept-failures]
    ./pants test --test-extra-env-vars=SMOKE_TEST_GPUS=all courses/<slug>::   (on a GPU machine)

Run directly, it tests the images named by the image map (`./pants package courses::` writes
it) unless --image is given. Per notebook: passed, failed (cell and
exception), timed out or killed for memory, with duration and peak memory. Prints a summary
table, writes `<slug>.smoke-test.json` and `.xml` (JUnit) to --output-dir, exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import docker

from catalog import CatalogError
from catalog.image_facts import (
    IMAGE_MAP,
    ImageMapError,
    built_names,
    course_image_info,
    image_of,
    read_image_map,
    stale_image,
)
from tools.course_check.blanks import unaccepted
from tools.course_check.cli_common import (
    add_output_arguments,
    course_directories,
    results_line,
    write_outputs,
)
from tools.course_check.expected import (
    EXPECTED_FILE,
    ExpectedFailuresError,
    accepted_by_name,
    judge,
    load_expected,
    render_expected,
)
from tools.course_check.model import SmokeResult, Status
from tools.course_check.notebook_code import code_cells
from tools.course_check.report import smoke_junit, smoke_summary, to_json
from tools.course_check.smoke import read_course_for_smoke_test, smoke_test_course

GPUS_ENV = "SMOKE_TEST_GPUS"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("courses", nargs="*", help="course slugs or directories (default: all)")
    parser.add_argument("--image", help="the image to test (one course only)")
    parser.add_argument("--image-map", type=Path, default=Path(IMAGE_MAP))
    parser.add_argument("--notebook", action="append", help="only this notebook (repeatable)")
    add_output_arguments(parser, Path("dist/smoke-test"))
    parser.add_argument(
        "--gpus",
        action="store_true",
        # Through Pants: ./pants test --test-extra-env-vars=SMOKE_TEST_GPUS=all courses/<slug>::
        default=os.environ.get(GPUS_ENV) == "all",
        help="give every container every GPU (docker run --gpus all; needs the NVIDIA container "
        f"runtime) and report what PyTorch sees; an error if that is not a GPU (default: set "
        f"when {GPUS_ENV}=all)",
    )
    parser.add_argument(
        "--accept-failures",
        action="store_true",
        help=f"record the failing cells of every notebook as expected, in <course>/{EXPECTED_FILE} "
        "(review the file before committing it): later runs pass only while exactly those fail. "
        "Only a student's blanks and what fails because of them are recorded; any other failing "
        'cell is refused, unless the file accepts it by name: N = { exception = "X", '
        'reason = "why" }',
    )
    args = parser.parse_args(argv)
    # Pants stops a test that runs past its timeout with SIGTERM: exit through the `finally`
    # blocks, which remove the running container.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    directories = course_directories(args.courses)
    if args.image and len(directories) != 1:
        parser.error("--image needs exactly one course")
    image_map: dict[str, str] = {}
    if not args.image:
        try:
            image_map = read_image_map(args.image_map)
        except ImageMapError as e:
            parser.error(str(e))
    client = docker.from_env()
    results = []
    for directory in directories:
        try:
            course = read_course_for_smoke_test(directory)
        except CatalogError as e:
            parser.error(f"{e} (./pants run tools:course-check lists every problem)")
        try:
            image = args.image or image_of(image_map, course.slug, str(args.image_map))
        except ImageMapError as e:
            parser.error(str(e))
        # The checkout's own map must be as new as the course's last build here.
        info = Path(course_image_info(course.slug))
        if (
            not args.image
            and args.image_map == Path(IMAGE_MAP)
            and info.is_file()
            # `package courses:image-map` alone rebuilds without writing docker-info: the map is
            # then the newer record.
            and info.stat().st_mtime > args.image_map.stat().st_mtime
        ):
            stale = stale_image(course.slug, image, built_names(info.read_text()))
            if stale:
                parser.error(stale)
        try:
            expected = load_expected(directory, course.all_notebooks)
        except ExpectedFailuresError as e:
            parser.error(str(e))
        # Accepting records what fails now, so the run does not apply the old record.
        result = smoke_test_course(
            client,
            course,
            image,
            notebooks=args.notebook,
            gpus=args.gpus,
            expected=None if args.accept_failures else expected,
        )
        if args.accept_failures:
            if not accept_failures(directory, course.slug, result, expected):
                return 1
            recorded = load_expected(directory, course.all_notebooks)
            judged = (judge(n, recorded.get(n.path, {})) for n in result.notebooks)
            result = dataclasses.replace(result, notebooks=tuple(judged))
        results.append(result)
        write_outputs(
            args.output_dir,
            {
                f"{course.slug}.smoke-test.json": to_json(result.to_dict()),
                f"{course.slug}.smoke-test.xml": smoke_junit(result),
            },
        )
    print()
    print(smoke_summary(results))
    print(results_line("smoke-test", args))
    return 0 if all(r.passed for r in results) else 1


def accept_failures(
    directory: Path, slug: str, result: SmokeResult, expected: dict[str, dict[int, str]]
) -> bool:
    """Writes what failed as the course's expected failures; False (and writes nothing) when a
    notebook ended otherwise than by failing cells (timed out, out of memory, missing...), or a
    failing cell is no student's blank, nor follows from one, nor is accepted by name in the
    file (tools/course_check/blanks.py)."""
    path = directory / EXPECTED_FILE
    accepted = accepted_by_name(path.read_text(encoding="utf-8")) if path.is_file() else {}
    refused = [
        f"{n.path}: {n.summary()}"
        for n in result.notebooks
        if n.status not in (Status.PASSED, Status.FAILED)
        or (n.status is Status.FAILED and not n.failures)
    ]
    for n in result.notebooks:
        if not n.failures:
            continue
        notebook = json.loads((directory / n.path).read_text(encoding="utf-8"))
        sources = {cell.number: cell.source for cell in code_cells(notebook)}
        named = {cell: exception for cell, (exception, _) in accepted.get(n.path, {}).items()}
        for reason in unaccepted(sources, dict(n.failures), named).values():
            refused.append(f"{n.path}: {reason}")
    if result.error or refused:
        for line in [result.error, *refused]:
            if line:
                print(
                    f"smoke-test: {slug}: cannot be accepted as expected: {line}", file=sys.stderr
                )
        print(
            f"smoke-test: {slug}: fix those cells, tag one `raises-exception` if it fails on "
            f"purpose for every reader, or accept it by name in {path}: "
            '`CELL = { exception = "X", reason = "why" }`',
            file=sys.stderr,
        )
        return False
    recorded = {**expected}
    for n in result.notebooks:
        recorded.pop(n.path, None)
        if n.failures:
            recorded[n.path] = dict(n.failures)
    if recorded:
        path.write_text(render_expected(slug, recorded, accepted))
        print(f"smoke-test: {slug}: wrote {path}: review it, then commit it")
    elif path.exists():
        path.unlink()
        print(f"smoke-test: {slug}: no cell fails any more: removed {path}")
    return True


if __name__ == "__main__":
    raise SystemExit(main())
