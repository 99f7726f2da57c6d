"""Pants backend: `./pants package` runs no `docker build` for an image that is built already.

Pants 2.17 runs `docker build` for every image in every run (its process is cached per session
only, in case an image was removed outside Pants): about 0.8 s per image even when BuildKit has
every step cached, 20 s for a no-op `./pants package courses::`. This backend wraps the docker
commands the docker backend makes (`DockerBinary.build_image`, `push_image`) in reuse.py, which
asks the engine, then the tags' registry, for the image's content tags first: still every run,
as Pants wants, but at the cost of a `docker image inspect`.

Only content tags (`<name>-<hash>`, catalog/image_facts.py) make an image reusable; one without
is built as before.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from pants.backend.docker.util_rules.docker_binary import DockerBinary

from catalog.image_facts import is_content_tag
from image_reuse import reuse

#: reuse.py runs as a `-c` script of Pants' own Python, isolated (`-I -S`: the standard library
#: only, which also starts fastest).
_SCRIPT = Path(reuse.__file__).read_text(encoding="utf-8")


def _through_reuse(process, *arguments: str):
    return dataclasses.replace(
        process,
        argv=(sys.executable, "-I", "-S", "-c", _SCRIPT, *arguments, *process.argv),
        # "Building docker image X", "Pushing docker image X": what it may do.
        description=f"{process.description} (unless done already)",
    )


def _patch() -> None:
    build_image, push_image = DockerBinary.build_image, DockerBinary.push_image

    def build_unless_built(self, tags, *args, **kwargs):
        content_tags = [tag for tag in tags if is_content_tag(tag)]
        process = build_image(self, tags, *args, **kwargs)
        return _through_reuse(process, "build", json.dumps(content_tags))

    def push_unless_pushed(self, tag, *args, **kwargs):
        return _through_reuse(push_image(self, tag, *args, **kwargs), "push")

    build_unless_built.wrapped = True  # type: ignore[attr-defined]
    DockerBinary.build_image = build_unless_built  # type: ignore[method-assign]
    DockerBinary.push_image = push_unless_pushed  # type: ignore[method-assign]


if not getattr(DockerBinary.build_image, "wrapped", False):
    _patch()


def rules():
    return []
