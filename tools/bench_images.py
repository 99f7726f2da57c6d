"""Benchmark: building the images with Pants, cold, no-op and after a one-course change.

    ./pants run tools:bench-images -- [--generated 20]

Works on a temporary copy of the repo with N generated courses added to the sample courses. The
copy tags its images under a registry name of its own (`bench.localhost`), so nothing else in the
Docker engine is touched, and its stand-in Dockerfile carries a fresh `ENV` line, so that no layer
above the Debian base comes from the cache (a cold build). Pants runs as people run it, with its
daemon (started by the first, cold, scenario). Prints a table: wall time, `docker build` runs
(counted from the engine's `image tag` events: every build, cached or not, tags its image),
course images built anew (new content tags) and new image ids per scenario (the base images
alone first, then the course images on them, a no-op, then one course changed: built alone by
naming its image, then by the changed-only build CI runs, the fastest of 5 edits each), the
size of each base image, then per course image the bytes unique to it versus shared with its
base image (every base layer must be shared by digest). Fails when a scenario builds more or
fewer images than it should: in particular a no-op rebuild must run no build and give no new
image id, and no content tag may ever move to another image id. Removes the images it built at
the end.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker

from catalog import load_catalog
from catalog.course_toml import CourseDraft, render_course_toml
from catalog.image_facts import (
    BASE_REPOSITORY,
    COURSE_REPOSITORY,
    content_tag_name,
    image_map_path,
    is_content_tag,
    read_image_map,
    split_reference,
)
from tools.lock import LOCK_FILE, course_lock
from tools.repo_copy import commit_all, copy_repo, run_pants, stop_pantsd

REGISTRY = "bench.localhost"
#: Runs of each one-course scenario; the table shows the fastest.
ONE_COURSE_RUNS = 5
PANTS_ENV = {"PANTS_DOCKER_REGISTRIES": repr({"bench": {"address": REGISTRY, "default": True}})}
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
class Build:
    """What one `./pants` run did to the benchmark's images."""

    seconds: float
    docker_builds: int  # `docker build` runs (the engine's tag events: one per image built)
    new_content_tags: tuple[str, ...]  # course images built anew
    new_image_ids: tuple[str, ...]  # image ids that no image of the benchmark had before
    moved_content_tags: tuple[str, ...]  # content tags that now name another image id
    content_tagged_ids: int  # distinct image ids under a content tag, after the run


@dataclass(frozen=True)
class Scenario:
    name: str
    build: Build
    expected_tags: int
    expected_ids: int

    def failures(self) -> list[str]:
        found = []
        if len(self.build.new_content_tags) != self.expected_tags:
            found.append(
                f"{len(self.build.new_content_tags)} new content tags, expected "
                f"{self.expected_tags}"
            )
        if len(self.build.new_image_ids) != self.expected_ids:
            found.append(
                f"{len(self.build.new_image_ids)} new image ids, expected {self.expected_ids}"
            )
        if self.build.moved_content_tags:
            found.append(
                "content tags moved to another image id: "
                + ", ".join(self.build.moved_content_tags)
            )
        if self.expected_ids == 0 and self.build.docker_builds:
            found.append(f"{self.build.docker_builds} docker builds ran, expected none")
        return found


def add_generated_courses(repo: Path, count: int) -> None:
    for index in range(count):
        directory = repo / "courses" / f"generated-{index:02d}"
        (directory / "notebooks").mkdir(parents=True)
        flavor = "tensorflow" if index % 4 == 3 else "pytorch"
        (directory / "BUILD").write_text("course()\n")
        (directory / "requirements.txt").write_text("")
        (directory / LOCK_FILE).write_text(course_lock(directory.name, flavor, ""))
        draft = CourseDraft(
            f"Generated course {index}", flavor, ("notebooks/a.ipynb", "notebooks/b.ipynb")
        )
        (directory / "course.toml").write_text(render_course_toml(draft))
        for name, n in (("a", index + 10), ("b", index + 20)):
            text = (
                json.dumps(NOTEBOOK)
                .replace("{n}", str(n))
                .replace("{total}", str(n * (n - 1) // 2))
            )
            (directory / "notebooks" / f"{name}.ipynb").write_text(text)


def bust_the_build_cache(repo: Path) -> None:
    dockerfile = repo / "images/base/Dockerfile.standin"
    lines = dockerfile.read_text().splitlines()
    first_from = next(i for i, line in enumerate(lines) if line.startswith("FROM "))
    lines.insert(first_from + 1, f"ENV BENCH_COLD_BUILD={uuid.uuid4().hex}")
    dockerfile.write_text("\n".join(lines) + "\n")


def bench_images(client: docker.DockerClient) -> dict[str, str]:
    """Tag -> image id, for every image this benchmark tagged."""
    return {
        tag: image.id
        for image in client.images.list()
        for tag in image.tags
        if tag.startswith(REGISTRY + "/")
    }


def remove_bench_images(client: docker.DockerClient) -> None:
    for tag in bench_images(client):
        client.images.remove(tag, force=True)
    client.images.prune(filters={"dangling": True})


def docker_builds(client: docker.DockerClient, since: int) -> int:
    """The images of the benchmark's registry that `docker build` tagged since `since` (seconds):
    every build, from the cache or not, tags each of its names; a build here has one name."""
    time.sleep(1.1)  # the engine's event times are whole seconds
    events = client.events(
        since=since, until=int(time.time()), filters={"type": "image", "event": "tag"}, decode=True
    )
    return sum(e["Actor"]["Attributes"].get("name", "").startswith(REGISTRY + "/") for e in events)


def timed_build(repo: Path, client: docker.DockerClient, *pants_args: str) -> Build:
    """Runs Pants; what it built: `docker build` runs, new content tags (course images), new
    image ids (any image).

    A content tag names its inputs, and with BuildKit (pants.toml) identical inputs give one image
    id, so an image id that is new without a new content tag means a rebuild changed the bytes.
    """
    before = bench_images(client)
    since = int(time.time()) + 1
    time.sleep(since - time.time())
    start = time.monotonic()
    run_pants(repo, *pants_args, env=PANTS_ENV)
    seconds = time.monotonic() - start
    after = bench_images(client)
    build = Build(
        seconds=seconds,
        docker_builds=docker_builds(client, since),
        new_content_tags=tuple(
            sorted(
                tag
                for tag in after
                if f"/{COURSE_REPOSITORY}:" in tag and is_content_tag(tag) and tag not in before
            )
        ),
        new_image_ids=tuple(sorted(set(after.values()) - set(before.values()))),
        moved_content_tags=tuple(
            sorted(
                tag
                for tag in after
                if is_content_tag(tag) and tag in before and before[tag] != after[tag]
            )
        ),
        content_tagged_ids=len(
            {image_id for tag, image_id in after.items() if is_content_tag(tag)}
        ),
    )
    print(
        f"bench-images: {seconds:.1f} s, {build.docker_builds} docker builds, "
        f"new content tags: {', '.join(build.new_content_tags) or 'none'}"
    )
    short_ids = [image_id.removeprefix("sha256:")[:12] for image_id in build.new_image_ids]
    print(f"bench-images: new image ids: {', '.join(short_ids) or 'none'}")
    print(
        "bench-images: content tags now on another image id: "
        f"{', '.join(build.moved_content_tags) or 'none'}"
    )
    return build


def base_image_sizes(client: docker.DockerClient) -> list[tuple[str, int]]:
    """(target name, bytes) of every base image the benchmark built."""
    return sorted(
        (str(content_tag_name(split_reference(tag)[1])), image.attrs["Size"])
        for image in client.images.list(name=f"{REGISTRY}/{BASE_REPOSITORY}")
        for tag in image.tags
        if is_content_tag(tag)
    )


def layer_sharing(client: docker.DockerClient, image_map: dict[str, str], bases: dict[str, str]):
    """(image map key, base image, bytes of its own, bytes shared with its base) of every course
    image: a GPU course's `<slug>--cpu` image too."""
    built = client.images.list(name=f"{REGISTRY}/{BASE_REPOSITORY}")
    rows = []
    for slug, reference in sorted(image_map.items()):
        image = client.images.get(reference)
        layers = image.attrs["RootFS"]["Layers"]
        base = next(
            b
            for b in built
            if any(is_content_tag(t, bases[slug]) for t in b.tags)
            and layers[: len(b.attrs["RootFS"]["Layers"])] == b.attrs["RootFS"]["Layers"]
        )
        shared = base.attrs["Size"]
        rows.append((slug, bases[slug], image.attrs["Size"] - shared, shared))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=20, help="generated courses to add")
    parser.add_argument(
        "--source", type=Path, default=Path.cwd(), help="the checkout whose HEAD to benchmark"
    )
    args = parser.parse_args()
    client = docker.from_env()

    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        repo = copy_repo(args.source, Path(tmp), committed_only=True)
        add_generated_courses(repo, args.generated)
        bust_the_build_cache(repo)
        commit_all(repo, "generated courses, cold build cache")
        catalog = load_catalog(repo)
        print(f"bench-images: {len(catalog)} courses ({args.generated} generated) in {repo}")
        try:
            scenarios = []
            print("bench-images: cold base images")
            build = timed_build(repo, client, "package", "images/base::")
            # The stand-in (with PyTorch) and the two flavors with their CUDA variants, each a new
            # image (the variants hold the same packages here, but are images of their own).
            scenarios.append(
                Scenario("cold base images (stand-in, 2 flavors, their CUDA variants)", build, 0, 5)
            )
            flavor_sizes = base_image_sizes(client)
            print("bench-images: cold course images")
            build = timed_build(repo, client, "package", "courses::")
            # Every course image is new, on the base images just built (a GPU course's two).
            images = len(catalog.image_keys)
            scenarios.append(Scenario("cold course images (on those bases)", build, images, images))
            print("bench-images: no-op rebuild")
            no_op = timed_build(repo, client, "package", "courses::")
            scenarios.append(Scenario("no-op rebuild", no_op, 0, 0))
            course = catalog.courses[0]
            notebook = repo / course.directory / course.notebooks[0]
            # One course changed: that image built alone by naming it, then by the changed-only
            # build (CI's), alternately, each run after another edit of one notebook (so each
            # builds a new image of that course). Runs of a second or two are noisy: the table
            # shows the fastest of each, or a run that did not build exactly that one image.
            alone_args = ("package", f"courses/{course.slug}#image")
            changed_args = ("--changed-since=HEAD", "--changed-dependents=transitive", "package")
            runs: dict[tuple[str, ...], list[Build]] = {alone_args: [], changed_args: []}
            for edit in range(2 * ONE_COURSE_RUNS):
                pants_args = (alone_args, changed_args)[edit % 2]
                print(f"bench-images: one-course change ({course.slug}): {' '.join(pants_args)}")
                text = notebook.read_text()
                notebook.write_text(text.replace('"cells":', '"cells": ', 1))
                runs[pants_args].append(timed_build(repo, client, *pants_args))

            def shown(builds: list[Build]) -> Build:
                wrong = [b for b in builds if Scenario("", b, 1, 1).failures()]
                return wrong[0] if wrong else min(builds, key=lambda b: b.seconds)

            alone, build = shown(runs[alone_args]), shown(runs[changed_args])
            name = f"one-course change ({course.slug})"
            scenarios.append(Scenario(f"{name}: that image alone", alone, 1, 1))
            scenarios.append(Scenario(f"{name}: changed-only build", build, 1, 1))

            image_map = read_image_map(image_map_path(repo))
            bases = {
                key: c.base_image_of(key).rsplit(":", 1)[1] for c in catalog for key in c.image_keys
            }
            sharing = layer_sharing(client, image_map, bases)
        finally:
            stop_pantsd(repo)
            print("bench-images: removing the images it built")
            remove_bench_images(client)

    print(
        "\n| scenario | wall time (s) | docker builds run | images built anew (new content tags) "
        "| expected | new image ids | expected |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in scenarios:
        print(
            f"| {s.name} | {s.build.seconds:.1f} | {s.build.docker_builds} "
            f"| {len(s.build.new_content_tags)} | {s.expected_tags} "
            f"| {len(s.build.new_image_ids)} | {s.expected_ids} |"
        )
    seconds = {args: sorted(b.seconds for b in builds) for args, builds in runs.items()}
    medians = {args: times[len(times) // 2] for args, times in seconds.items()}
    print(
        f"\nno-op: {no_op.seconds:.1f} s for {len(catalog.image_keys) + 5} images; "
        f"changed-only / that image alone: {build.seconds / alone.seconds:.2f} fastest, "
        f"{medians[changed_args] / medians[alone_args]:.2f} median "
        f"(that image alone: {', '.join(f'{t:.1f}' for t in seconds[alone_args])} s; "
        f"changed-only: {', '.join(f'{t:.1f}' for t in seconds[changed_args])} s)"
    )
    print("\n| base image | size (MB) |")
    print("| --- | ---: |")
    for name, size in flavor_sizes:
        print(f"| images/base:{name} | {size / 1e6:.0f} |")
    print("\n| course image | base image | unique to course (MB) | shared with base (MB) |")
    print("| --- | --- | ---: | ---: |")
    for slug, base, unique, shared in sharing:
        print(f"| {slug} | {base} | {unique / 1e6:.2f} | {shared / 1e6:.0f} |")
    failures = [(s.name, failure) for s in scenarios for failure in s.failures()]
    for name, failure in failures:
        print(f"bench-images: UNEXPECTED: {name}: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
