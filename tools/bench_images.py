"""Benchmark: building course images with Pants, cold, no-op and after a one-course change.

    ./pants run tools:bench-images -- [--generated 20]

Works on a temporary copy of the repo with N generated courses added to the sample courses,
removes every course and base image from the local Docker engine first (a cold build), and
prints a table: wall time and images (re)built per scenario, then per course image the bytes
unique to it versus shared with its base image (every base layer must be shared by digest).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker

from catalog import load_catalog
from tools.repo_copy import commit_all, copy_repo, run_pants

COURSE_REPOSITORIES = ("ol-course-notebooks", "ol-course-base")
NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "sum",
            "metadata": {},
            "outputs": [],
            "source": "import numpy as np\nassert np.arange({n}).sum() == {total}",
        }
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


@dataclass(frozen=True)
class Scenario:
    name: str
    seconds: float
    rebuilt: int
    expected: str


def add_generated_courses(repo: Path, count: int) -> None:
    for index in range(count):
        directory = repo / "courses" / f"generated-{index:02d}"
        (directory / "notebooks").mkdir(parents=True)
        flavor = "tensorflow" if index % 4 == 3 else "pytorch"
        (directory / "BUILD").write_text("course()\n")
        (directory / "requirements.txt").write_text("")
        (directory / "course.toml").write_text(
            f'title = "Generated course {index}"\nflavor = "{flavor}"\n'
            'notebooks = ["notebooks/a.ipynb", "notebooks/b.ipynb"]\n'
        )
        for name, n in (("a", index + 10), ("b", index + 20)):
            text = (
                json.dumps(NOTEBOOK)
                .replace("{n}", str(n))
                .replace("{total}", str(n * (n - 1) // 2))
            )
            (directory / "notebooks" / f"{name}.ipynb").write_text(text)


def course_image_ids(client: docker.DockerClient) -> dict[str, str]:
    """Moving course tag (`...:<slug>`) -> image id, for every course image in the engine."""
    ids = {}
    for image in client.images.list(name="*/ol-course-notebooks"):
        for tag in image.tags:
            ids[tag] = image.id
    return ids


def remove_course_images(client: docker.DockerClient) -> None:
    for image in client.images.list():
        if any(tag.split("/")[-1].split(":")[0] in COURSE_REPOSITORIES for tag in image.tags):
            client.images.remove(image.id, force=True)
    client.images.prune(filters={"dangling": True})


def timed_build(repo: Path, client: docker.DockerClient, *pants_args: str) -> tuple[float, int]:
    before = course_image_ids(client)
    start = time.monotonic()
    run_pants(repo, *pants_args)
    seconds = time.monotonic() - start
    after = course_image_ids(client)
    rebuilt = {tag.split(":")[-1] for tag, image_id in after.items() if before.get(tag) != image_id}
    # Each image has two tags (content and moving): count images, not tags.
    return seconds, len({after[tag] for tag in after if tag.split(":")[-1] in rebuilt})


def layer_sharing(client: docker.DockerClient, image_map: dict[str, str], flavors: dict[str, str]):
    bases = client.images.list(name="*/ol-course-base")
    rows = []
    for slug, reference in sorted(image_map.items()):
        image = client.images.get(reference)
        layers = image.attrs["RootFS"]["Layers"]
        base = next(
            b
            for b in bases
            if any(t.split(":")[-1].startswith(flavors[slug] + "-") for t in b.tags)
            and layers[: len(b.attrs["RootFS"]["Layers"])] == b.attrs["RootFS"]["Layers"]
        )
        shared = base.attrs["Size"]
        rows.append((slug, flavors[slug], image.attrs["Size"] - shared, shared))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=20, help="generated courses to add")
    parser.add_argument("--source", type=Path, default=Path.cwd(), help="the checkout to copy")
    args = parser.parse_args()
    client = docker.from_env()

    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        repo = copy_repo(args.source, Path(tmp))
        add_generated_courses(repo, args.generated)
        commit_all(repo, "generated courses")
        catalog = load_catalog(repo)
        print(f"bench-images: {len(catalog)} courses ({args.generated} generated) in {repo}")

        print("bench-images: removing course and base images for a cold build")
        remove_course_images(client)
        scenarios = []
        print("bench-images: cold full build")
        seconds, rebuilt = timed_build(repo, client, "package", "courses::")
        scenarios.append(Scenario("cold full build", seconds, rebuilt, f"{len(catalog)}"))
        print("bench-images: no-op rebuild")
        seconds, rebuilt = timed_build(repo, client, "package", "courses::")
        scenarios.append(Scenario("no-op rebuild", seconds, rebuilt, "0"))
        print("bench-images: one-course change, changed-only build")
        course = catalog.courses[0]
        notebook = repo / course.directory / course.notebooks[0]
        notebook.write_text(notebook.read_text().replace('"cells": [', '"cells": [ ', 1))
        seconds, rebuilt = timed_build(
            repo, client, "--changed-since=HEAD", "--changed-dependents=transitive", "package"
        )
        scenarios.append(Scenario(f"one-course change ({course.slug})", seconds, rebuilt, "1"))

        image_map = json.loads((repo / "dist/courses/image-map.json").read_text())
        sharing = layer_sharing(client, image_map, {c.slug: c.flavor for c in catalog})

    print("\n| scenario | wall time (s) | images rebuilt | expected |")
    print("| --- | ---: | ---: | ---: |")
    for s in scenarios:
        print(f"| {s.name} | {s.seconds:.1f} | {s.rebuilt} | {s.expected} |")
    print("\n| course image | flavor | unique to course (MB) | shared with base (MB) |")
    print("| --- | --- | ---: | ---: |")
    for slug, flavor, unique, shared in sharing:
        print(f"| {slug} | {flavor} | {unique / 1e6:.2f} | {shared / 1e6:.0f} |")
    failures = [s for s in scenarios if str(s.rebuilt) != s.expected]
    for s in failures:
        print(f"bench-images: UNEXPECTED: {s.name} rebuilt {s.rebuilt}, expected {s.expected}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
