"""Smoke test: runs every notebook of a course in its built image, as learners would.

    ./pants test courses/<slug>#smoke-test                 (builds the image first; CI does this)
    ./pants run tools:smoke-test -- [COURSE ...] [--notebook PATH] [--image REF] [--gpus]
                                    [--accept-failures]
    ./pants test --test-extra-env-vars=SMOKE_TEST_GPUS=all courses/<slug>::   (on a GPU machine)
    ./pants run tools:smoke-test -- COURSE --host [--gpus] [--python PYTHON]  (no container engine)

Run directly, it tests the images named by the image map (`./pants package courses::` writes
it) unless --image is given; with --host, no image: the same runner with this machine's Python
and packages (on_host.py says what differs). Per notebook: passed, failed (cell and
exception), timed out or killed for memory, with duration and peak memory. Prints a summary
table, writes `<slug>.smoke-test.json` and `.xml` (JUnit) to --output-dir (`<slug>--cpu.*` for a GPU
course's CPU image), exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import tomllib

from catalog import CatalogError, flavors
from catalog.image_facts import (
    IMAGE_MAP,
    ImageMapError,
    built_names,
    content_tag_name,
    course_image_info,
    image_of,
    read_image_map,
    split_reference,
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
    load_record,
    record_run,
    render_record,
)
from tools.course_check.model import SmokeResult, Status
from tools.course_check.notebook_code import code_cells
from tools.course_check.on_host import smoke_test_on_host
from tools.course_check.report import smoke_junit, smoke_summary, to_json
from tools.course_check.smoke import read_course_for_smoke_test, smoke_test_course
from tools.lock import LOCK_FILE, parse_lock

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
        "--host",
        action="store_true",
        help="run the notebooks with this machine's Python and packages instead of the image "
        "(a GPU machine without a container engine); reports their versions",
    )
    parser.add_argument(
        "--python",
        default=shutil.which("python3") or "python3",
        help="the Python of --host (default: python3 on PATH)",
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
    if args.host and args.image:
        parser.error("--host runs no image: leave out --image")
    image_map: dict[str, str] = {}
    client = None
    if not args.image and not args.host:
        try:
            image_map = read_image_map(args.image_map)
        except ImageMapError as e:
            parser.error(str(e))
    if not args.host:
        import docker  # not needed on the host (a GPU machine may have no Docker SDK either)

        client = docker.from_env()
    results = []
    for directory in directories:
        try:
            course = read_course_for_smoke_test(directory)
        except CatalogError as e:
            parser.error(f"{e} (./pants run tools:course-check lists every problem)")
        device = "gpu" if args.gpus else "cpu"
        try:
            expected = load_expected(directory, course.all_notebooks, device)
        except ExpectedFailuresError as e:
            parser.error(str(e))
        # Accepting records what fails now, so the run does not apply the old record.
        judged_by = None if args.accept_failures else expected
        if args.host:
            result = smoke_test_on_host(
                course,
                directory,
                args.python,
                image_versions(directory, course.flavor),
                notebooks=args.notebook,
                gpus=args.gpus,
                expected=judged_by,
            )
        else:
            try:
                image = image_to_test(args, image_map, course.slug)
            except ImageMapError as e:
                parser.error(str(e))
            result = smoke_test_course(
                client, course, image, notebooks=args.notebook, gpus=args.gpus, expected=judged_by
            )
        if args.accept_failures:
            if not accept_failures(directory, course.slug, result, device):
                return 1
            recorded = load_expected(directory, course.all_notebooks, device)
            judged = (judge(n, recorded.get(n.path, {})) for n in result.notebooks)
            result = dataclasses.replace(result, notebooks=tuple(judged))
        results.append(result)
        stem = result_name(course.slug, result.image)
        write_outputs(
            args.output_dir,
            {
                f"{stem}.smoke-test.json": to_json(result.to_dict()),
                f"{stem}.smoke-test.xml": smoke_junit(result),
            },
        )
    print()
    print(smoke_summary(results))
    print(results_line("smoke-test", args))
    return 0 if all(r.passed for r in results) else 1


def result_name(slug: str, image: str) -> str:
    """What a run's result files are named after: the image's content tag name (a GPU course's
    CPU image, `<slug>--cpu-<hash>`, has files of its own beside its CUDA image's, where Pants
    gathers every test's reports into one folder), else the course."""
    return content_tag_name(split_reference(image)[1]) or slug


def image_versions(directory: Path, flavor: str) -> dict[str, str]:
    """The Python packages of the course's image: its flavor's locks and its own."""
    root = directory.resolve().parents[1]  # courses/<slug> in the repository
    locks = [root / "images/base" / f"{layer}.lock" for layer in flavors.BY_NAME[flavor].layers]
    versions: dict[str, str] = {}
    for lock in [*locks, directory / LOCK_FILE]:
        if lock.is_file():
            versions.update(parse_lock(lock.read_text(), str(lock)).versions())
    return versions


def image_to_test(args: argparse.Namespace, image_map: dict[str, str], slug: str) -> str:
    """--image, or the course's image in the image map; ImageMapError where the map has none or
    names an older build than the checkout's last one."""
    if args.image:
        return str(args.image)
    image = image_of(image_map, slug, str(args.image_map))
    # The checkout's own map must be as new as the course's last build here.
    info = Path(course_image_info(slug))
    if (
        args.image_map == Path(IMAGE_MAP)
        and info.is_file()
        # `package courses:image-map` alone rebuilds without writing docker-info: the map is
        # then the newer record.
        and info.stat().st_mtime > args.image_map.stat().st_mtime
    ):
        stale = stale_image(slug, image, built_names(info.read_text()))
        if stale:
            raise ImageMapError(stale)
    return image


def accept_failures(directory: Path, slug: str, result: SmokeResult, device: str = "cpu") -> bool:
    """Writes what failed on `device` as the course's expected failures there (`record_run`: the
    other device's entries stay); False (and writes nothing) when a notebook ended otherwise than
    by failing cells (timed out, out of memory, missing...), or a failing cell is no student's
    blank, nor follows from one, nor is accepted by name in the file for that device
    (tools/course_check/blanks.py)."""
    path = directory / EXPECTED_FILE
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    # The notebooks of the file and of the run (main has checked the file against the course).
    record = load_record(directory, {*tomllib.loads(text), *(n.path for n in result.notebooks)})
    accepted = accepted_by_name(text, device) if record else {}
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
    seen = {n.path: dict(n.failures) for n in result.notebooks}
    recorded = record_run(record, seen, device)
    if recorded:
        path.write_text(render_record(slug, recorded))
        print(f"smoke-test: {slug}: wrote {path}: review it, then commit it")
    elif path.exists():
        path.unlink()
        print(f"smoke-test: {slug}: no cell fails any more: removed {path}")
    return True


if __name__ == "__main__":
    raise SystemExit(main())
