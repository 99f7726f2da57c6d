"""`./pants package` runs `docker build` only for an image that is not built already
(pants-plugins/image_reuse), and `./pants publish` pushes only what the registry lacks.

Real parts: Pants itself on a copy of the repo, the Docker engine, and Debian's docker-registry
on loopback. Whether a build ran is read from the engine's own event stream: every `docker build`
(BuildKit, even when every step is cached) tags each of its names (`image tag` events), and every
push is an `image push` event. The images are two small ones of this module's own, one FROM the
other as course images are FROM their base (the course images' own no-op is the build
benchmark's: `tools/bench_images.py` fails when its no-op runs a build), named in registries no
other test uses, so other tests building at the same time do not show up in those events.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import docker
import pytest

from tools.repo_copy import run_pants

#: Where this module's images are named: no other test uses these registries.
REGISTRY = "reuse.localhost"
LOCAL = "reuse-local.localhost"
#: The moving tag's registry as pants.toml has it for course images: a local-only registry whose
#: extra tag follows the image (here a fixed one).
MOVING = "moving"

#: `base` and `top` FROM it, as a base image and a course image; `registries` is filled in.
IMAGES = """\
docker_image(
    name="base",
    instructions=["FROM debian:bookworm-slim", "RUN echo {edit} > /base"],
    image_tags=["base-{{pants.hash}}"],
    repository="reuse-base",
    registries={registries},
)
docker_image(
    name="top",
    instructions=["ARG BASE_IMAGE=reuse:base", "FROM $BASE_IMAGE", "RUN echo top > /top"],
    image_tags=["top-{{pants.hash}}"],
    repository="reuse-top",
    registries={registries},
)
"""


def write_images(repo: Path, registries: list[str], edit: str = "base") -> None:
    (repo / "reuse").mkdir(exist_ok=True)
    text = IMAGES.format(edit=edit, registries=registries)
    (repo / "reuse" / "BUILD").write_text(text)


def pants_env(registries: dict[str, dict[str, object]]) -> dict[str, str]:
    return {"PANTS_DOCKER_REGISTRIES": repr(registries)}


def image_info(repo: Path, name: str) -> tuple[str, list[str]]:
    """(image id, every name) of the image Pants built last."""
    info = json.loads((repo / f"dist/reuse/{name}.docker-info.json").read_text())
    return info["image_id"], [t["name"] for r in info["registries"] for t in r["tags"]]


def image_events(
    client: docker.DockerClient, since: float, prefixes: tuple[str, ...]
) -> list[tuple[str, str]]:
    """(action, image name) of the engine's image events since `since`, for names under
    `prefixes`, in order."""
    time.sleep(1.1)  # the engine's event timestamps are in seconds
    events = client.events(
        since=int(since), until=int(time.time()), filters={"type": "image"}, decode=True
    )
    found = []
    for event in events:
        # The reference: a `tag` event's `name` (its ID is the image id), a `push` event's ID.
        actor = event["Actor"]
        name = actor["ID"] if event["Action"] == "push" else actor["Attributes"].get("name", "")
        if name.startswith(prefixes):
            found.append((event["Action"], name))
    return found


def now() -> float:
    """A start for `image_events`: the next whole second, so nothing earlier is counted."""
    start = int(time.time()) + 1
    time.sleep(start - time.time())
    return start


def remove(client: docker.DockerClient, names: list[str]) -> None:
    for name in names:
        client.images.remove(name, force=True)


def test_a_no_op_package_builds_nothing(
    repo: Path, restore: Path, client: docker.DockerClient
) -> None:
    """pants.toml's layout: a default registry and a local-only one with a moving tag."""
    write_images(repo, ["<all default registries>", "@local"])
    env = pants_env(
        {
            "default": {"address": REGISTRY, "default": True},
            "local": {"address": LOCAL, "skip_push": True, "extra_image_tags": [MOVING]},
        }
    )
    ours = (f"{REGISTRY}/", f"{LOCAL}/")
    run_pants(repo, "package", "reuse:", env=env)
    base, top = image_info(repo, "base"), image_info(repo, "top")
    moving = f"{LOCAL}/reuse-top:{MOVING}"
    assert moving in top[1] and client.images.get(moving).id == top[0]
    try:
        since = now()
        run_pants(repo, "package", "reuse:", env=env)
        assert image_events(client, since, ours) == [], "a docker build ran (or a tag moved)"
        assert (image_info(repo, "base"), image_info(repo, "top")) == (base, top)

        # The moving tag elsewhere (another build, by hand): pointed back, nothing built.
        client.images.get("debian:bookworm-slim").tag(moving)
        since = now()
        run_pants(repo, "package", "reuse:", env=env)
        assert image_events(client, since, ours) == [("tag", moving)]
        assert client.images.get(moving).id == top[0]

        # An image removed outside Pants is built again: the reason the engine is asked every
        # run. With BuildKit's cache it gets the same id, and the image above it (whose content
        # tag hashes the base's id) keeps its tag; when the cache was collected meanwhile (a busy
        # machine's builds), the base's id is new and so is the image above it: built too.
        remove(client, base[1])
        since = now()
        run_pants(repo, "package", "reuse:", env=env)
        events = sorted(image_events(client, since, ours))
        rebuilt = image_info(repo, "base")
        assert rebuilt[1] == base[1]
        if rebuilt == base:
            assert events == sorted(("tag", n) for n in base[1])
            assert image_info(repo, "top") == top
        else:
            new_top = image_info(repo, "top")
            assert new_top[0] != top[0]
            assert events == sorted(("tag", n) for n in base[1] + new_top[1])
            top = (new_top[0], sorted(set(top[1] + new_top[1])))
    finally:
        remove(client, base[1] + top[1])


def test_what_the_registry_has_is_neither_built_nor_pushed_again(
    repo: Path, restore: Path, client: docker.DockerClient, registry: str
) -> None:
    """CI's layout (one registry, no moving tag): images pushed earlier and gone from the engine
    (a new CI machine) are not built again; their ids are the registry's, so the image above
    keeps its content tag."""
    write_images(repo, ["<all default registries>"])
    env = pants_env({"ci": {"address": registry, "default": True}})
    ours = (f"{registry}/",)
    run_pants(repo, "package", "reuse:", env=env)  # `publish` writes no docker-info.json
    run_pants(repo, "publish", "reuse:", env=env)
    base, top = image_info(repo, "base"), image_info(repo, "top")
    remove(client, base[1] + top[1])

    since = now()
    run_pants(repo, "package", "reuse:", env=env)
    assert (image_info(repo, "base"), image_info(repo, "top")) == (base, top)
    for name in base[1] + top[1]:
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(name)  # not built, not pulled: the registry's manifest has its id
    run_pants(repo, "publish", "reuse:", env=env)
    assert image_events(client, since, ours) == [], "built or pushed again"

    # A changed base is built and pushed; so is the image above it, built FROM the new base
    # (its own tag follows its base's id). Nothing else is.
    write_images(repo, ["<all default registries>"], edit="changed")
    since = now()
    run_pants(repo, "package", "reuse:", env=env)
    run_pants(repo, "publish", "reuse:", env=env)
    new_base, (new_base_name,) = image_info(repo, "base")
    _, (new_top_name,) = image_info(repo, "top")
    assert new_base != base[0] and new_top_name not in top[1]
    assert sorted(image_events(client, since, ours)) == [
        ("push", new_base_name),
        ("push", new_top_name),
        ("tag", new_base_name),
        ("tag", new_top_name),
    ]
    remove(client, [new_base_name, new_top_name])
