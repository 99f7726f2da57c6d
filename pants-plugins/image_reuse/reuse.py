"""Build an image only when no image with its content tag exists: the `docker build` Pants runs,
wrapped (register.py).

    python3 reuse.py build CONTENT_TAGS_JSON DOCKER build [ARG ...]
    python3 reuse.py push DOCKER push TAG

A content tag (`<name>-<hash>`, Pants' hash of every input of the image) names one image, so:

- an image whose content tags are all in the Docker engine, on one image id, is not built again:
  the build's other tags (the moving `:<slug>` tag) are pointed at it, and its id is printed as
  BuildKit prints it (`writing image sha256:<id> done`), which is where Pants reads it;
- an image whose every tag is in its registry (all in registries named in the tag), as one
  image, is not built either: its id is the manifest's config digest, which is the engine's
  image id, and a build FROM it pulls it (CI's publish job, logged in to ECR, builds only what
  ECR lacks);
- `push` of a tag that the registry has, on the same image, pushes nothing (ECR's tags are
  immutable: pushing one again fails).

Anything else runs the docker command unchanged. A registry that cannot be reached or asked
(not logged in) counts as not having the image.

Standard library only, Python 3.9 (Pants' interpreter runs it, as a `-c` script): no Pants, no
project imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

#: Seconds to wait for a registry's answer before building anyway.
REGISTRY_TIMEOUT = 20
#: Registries the engine (and `docker manifest --insecure`) may reach over plain HTTP.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
#: Manifests whose config digest is the image id (one platform; a list names several images).
IMAGE_MANIFESTS = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)


def tags_of(build_argv: Sequence[str]) -> list[str]:
    """The `--tag` values of a `docker build` command line."""
    return [value for flag, value in zip(build_argv, build_argv[1:]) if flag == "--tag"]


def reusable_id(content_tags: Sequence[str], ids: Mapping[str, str | None]) -> str | None:
    """The image every content tag names, when there are content tags, each names an image, and
    all name the same one; otherwise None (build it)."""
    found = {ids.get(tag) for tag in content_tags}
    if len(found) != 1 or None in found:
        return None
    return found.pop()


def registry_host(tag: str) -> str | None:
    """The registry of `host[:port]/repository:tag`; None when the tag names none (Docker Hub)."""
    first, slash, _ = tag.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def is_loopback(registry: str) -> bool:
    """Whether `host[:port]` is this machine (`[::1]:port` for IPv6)."""
    if registry.startswith("["):
        return registry[: registry.find("]") + 1] in LOOPBACK_HOSTS
    return registry.split(":")[0] in LOOPBACK_HOSTS


def config_digest(manifest: Mapping[str, object]) -> str | None:
    """The image id a registry manifest names: its config digest (single-image manifests only)."""
    config = manifest.get("config")
    if manifest.get("mediaType") not in IMAGE_MANIFESTS or not isinstance(config, dict):
        return None
    digest = config.get("digest")
    return digest if isinstance(digest, str) and digest.startswith("sha256:") else None


# --- what the engine and the registries have ------------------------------------------------


def engine_ids(docker: str, tags: Sequence[str]) -> dict[str, str | None]:
    """The image id each tag names in the engine (None: no such image): one `docker image
    inspect` when the engine has them all, the usual case."""
    found = subprocess.run(
        [docker, "image", "inspect", "--format", "{{.Id}}", *tags], capture_output=True, text=True
    )
    ids = found.stdout.split()
    if found.returncode == 0 and len(ids) == len(tags):
        return dict(zip(tags, ids))
    if len(tags) == 1:
        return {tags[0]: None}
    return {tag: engine_ids(docker, [tag])[tag] for tag in tags}


def registry_id(docker: str, tag: str) -> str | None:
    registry = registry_host(tag)
    if registry is None:
        return None
    # The engine reaches loopback registries over plain HTTP; the CLI needs to be told.
    insecure = ["--insecure"] if is_loopback(registry) else []
    try:
        found = subprocess.run(
            [docker, "manifest", "inspect", *insecure, tag],
            capture_output=True,
            text=True,
            timeout=REGISTRY_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return None
    if found.returncode != 0:
        return None
    try:
        manifest = json.loads(found.stdout)
    except ValueError:
        return None
    return config_digest(manifest) if isinstance(manifest, dict) else None


def build(content_tags: Sequence[str], build_argv: Sequence[str]) -> int:
    docker, tags = build_argv[0], tags_of(build_argv)
    ids = engine_ids(docker, tags)
    image_id = reusable_id(content_tags, ids)
    if image_id is not None:
        for tag in tags:
            if ids[tag] != image_id:
                subprocess.run([docker, "tag", image_id, tag], check=True)
        print(f"writing image {image_id} done")
        print(f"reused: {', '.join(content_tags)} is in the Docker engine; not built again")
        return 0
    if content_tags:
        remote: dict[str, str | None] = {}
        for tag in tags:  # until the first the registry lacks
            remote[tag] = registry_id(docker, tag)
            if remote[tag] is None:
                break
        image_id = reusable_id(tags, remote)
        if image_id is not None:
            print(f"writing image {image_id} done")
            print(f"reused: {', '.join(tags)} is in its registry; not built again")
            return 0
    return run(build_argv)


def push(push_argv: Sequence[str]) -> int:
    docker, tag = push_argv[0], push_argv[-1]
    remote = registry_id(docker, tag)
    if remote is not None and engine_ids(docker, [tag])[tag] in (None, remote):
        print(f"{tag} is in its registry already: not pushed again")
        return 0
    return run(push_argv)


def run(argv: Sequence[str]) -> int:
    """The docker command as Pants made it, in this process's place."""
    sys.stdout.flush()
    os.execv(argv[0], list(argv))
    return 1  # not reached


def main(argv: Sequence[str]) -> int:
    command, *rest = argv
    if command == "build":
        return build(json.loads(rest[0]), rest[1:])
    if command == "push":
        return push(rest)
    raise SystemExit(f"reuse.py: unknown command {command!r}")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
