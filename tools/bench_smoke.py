"""Benchmark: smoke-test time per course in its image versus nbclient directly on the host.

    ./pants package courses::   (the images and the image map)
    ./pants run tools:bench-smoke -- [COURSE ...] [--repeat 3] [--max-ratio 1.5]

The host side runs the same runner (tools/course_check/in_container.py) with nbclient, in a
virtualenv per flavor holding exactly the image's Python packages (the flavor's locks,
images/base/*.lock, and the course's requirements.lock, installed as the images install them),
on a copy of the course directory. The container side is the smoke
test itself, timed from creating the container to removing it. Host and container runs
alternate and the best of --repeat runs per notebook counts, so that other work on the machine
skews both alike. Prints a table (seconds summed over the course's notebooks) and exits 1 when a
course's ratio exceeds --max-ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import docker

from catalog import Course, find_repo_root, load_catalog
from catalog.image_facts import ImageMapError, image_map_path, image_of, read_image_map
from tools.course_check.on_host import run_on_host
from tools.course_check.smoke import run_notebook
from tools.lock import LOCK_FILE, parse_lock
from tools.lock_base_images import FLAVOR_LAYERS


@dataclass(frozen=True)
class Row:
    course: str
    notebooks: int
    host_seconds: float
    container_seconds: float

    @property
    def ratio(self) -> float:
        return self.container_seconds / self.host_seconds if self.host_seconds else float("inf")


def pip_install_locks(venv: Path, locks: Sequence[Path]) -> None:
    """Installs locks into `venv` the way the images do: exactly the pins, hashes checked."""
    arguments = [a for lock in locks for a in ("-r", str(lock))]
    subprocess.run(
        [
            str(venv / "bin/pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            "--require-hashes",
            *arguments,
        ],
        check=True,
    )


def host_venv(cache: Path, python: str, root: Path, flavor: str, course_lock: Path) -> Path:
    """A virtualenv with the flavor's locked packages (cached by their hash) plus a course's lock."""
    locks = [root / layer.lock for layer in FLAVOR_LAYERS[flavor]]
    key = hashlib.sha256("\n".join([python, *(p.read_text() for p in locks)]).encode())
    venv = cache / f"venv-{key.hexdigest()[:16]}"
    if not (venv / ".complete").exists():
        print(f"bench-smoke: creating {venv} (the {flavor} flavor's locks)")
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        pip_install_locks(venv, locks)
        (venv / ".complete").write_text("")
    if parse_lock(course_lock.read_text(), str(course_lock)).pins:
        pip_install_locks(venv, [course_lock])
    return venv


def run_on_host_timed(venv: Path, course_copy: Path, notebook: str, timeout: int) -> float:
    outcome = run_on_host(str(venv / "bin/python"), course_copy, notebook, timeout, gpus=False)
    if outcome.exit_code != 0:
        raise RuntimeError(f"{notebook} failed on the host:\n{outcome.output[-3000:]}")
    return outcome.duration_seconds


def run_in_container(
    client: docker.DockerClient, image: str, course: Course, notebook: str
) -> float:
    start = time.monotonic()
    result = run_notebook(client, image, course, notebook)
    seconds = time.monotonic() - start
    if not result.passed:
        raise RuntimeError(f"{course.slug} {notebook} failed in {image}: {result.summary()}")
    return seconds


def table(rows: Sequence[Row], max_ratio: float) -> str:
    lines = [
        "| course | notebooks | host nbclient (s) | in its image (s) | container adds | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        added = r.container_seconds - r.host_seconds
        verdict = "" if r.ratio <= max_ratio else " (over the limit)"
        lines.append(
            f"| {r.course} | {r.notebooks} | {r.host_seconds:.1f} | {r.container_seconds:.1f} "
            f"| {added:+.1f} s ({added / r.host_seconds:+.0%}) | {r.ratio:.2f}{verdict} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("courses", nargs="*", help="course slugs (default: every course)")
    parser.add_argument("--image-map", type=Path, help="default: the checkout's, as built")
    parser.add_argument("--repeat", type=int, default=3, help="runs per notebook; the best counts")
    parser.add_argument("--max-ratio", type=float, default=1.5)
    parser.add_argument(
        "--cache", type=Path, default=Path.home() / ".cache/ol-course-notebooks/bench-smoke"
    )
    parser.add_argument(
        "--python",
        default=getattr(sys, "_base_executable", sys.executable),
        help="the host interpreter for the virtualenvs (the images use Python 3.11)",
    )
    args = parser.parse_args(argv)
    root = find_repo_root()
    catalog = load_catalog(root)
    map_file = args.image_map or image_map_path(root)
    try:
        image_map = read_image_map(map_file)
        images = {
            course.slug: image_of(image_map, course.slug, str(map_file))
            for course in catalog
            if not args.courses or course.slug in args.courses
        }
    except ImageMapError as e:
        parser.error(str(e))
    client = docker.from_env()
    print(
        f"bench-smoke: load average at the start {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)"
    )
    rows = []
    for course in catalog:
        if args.courses and course.slug not in args.courses:
            continue
        venv = host_venv(
            args.cache,
            args.python,
            root,
            course.flavor,
            root / course.directory / LOCK_FILE,
        )
        host_total = container_total = 0.0
        with tempfile.TemporaryDirectory(prefix=f"bench-{course.slug}-") as tmp:
            copy = Path(tmp) / course.slug
            shutil.copytree(root / course.directory, copy)
            for notebook in course.notebooks:
                host, container = [], []
                for _ in range(max(args.repeat, 1)):
                    timeout = course.smoke_test.timeout_seconds
                    host.append(run_on_host_timed(venv, copy, notebook, timeout))
                    container.append(
                        run_in_container(client, images[course.slug], course, notebook)
                    )
                print(
                    f"bench-smoke: {course.slug} {notebook}: host {min(host):.1f} s, "
                    f"container {min(container):.1f} s"
                )
                host_total += min(host)
                container_total += min(container)
        rows.append(Row(course.slug, len(course.notebooks), host_total, container_total))
    print(f"bench-smoke: load average at the end {os.getloadavg()[0]:.1f}")
    print()
    print(table(rows, args.max_ratio))
    over = [r.course for r in rows if r.ratio > args.max_ratio]
    if over:
        print(f"bench-smoke: over {args.max_ratio}x: {', '.join(over)}")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
