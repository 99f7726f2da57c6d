"""Regenerates the base images' Python locks (images/base/*.lock) and the hub image's
(hub/hub.lock) from their requirements.

    ./pants run tools:lock-base-images [LAYER ...]

Each layer names its top-level packages in `<folder>/<layer>-requirements.txt`; this resolves
them against the package index as it is today, in a Debian bookworm container (the Python of the
stand-in and of the hub image), and writes `<folder>/<layer>.lock`: every package of the layer's whole
dependency tree, exact version and hashes. A layer on top of another is resolved with the lower
layer's pins as constraints and locks only what it adds. Then rebuild and let the tests say what
changed: `./pants package images/base:: && ./pants run tools:flavor-modules`, and
`./pants test tests/tools:docker`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import docker

from catalog import flavors
from tools.lock import constraints_text, parse_lock, pex_lock_versions, render_lock
from tools.resolver import Job, ResolveError, resolve
from tools.wheelhouse import local_pins

BASE_DIR = Path("images/base")
#: The project's own Python resolve (Pants), whose versions the hub's tests run with.
PROJECT_LOCK = Path("3rdparty/python/default.lock")
#: The image the stand-in is built FROM: its Python decides the markers of every base lock.
RESOLVER_IMAGE = "debian:bookworm-slim"


@dataclass(frozen=True)
class BaseLayer:
    name: str
    below: tuple[str, ...]  # layers whose packages are already installed under this one
    purpose: str
    folder: Path = BASE_DIR
    #: Resolved within the project's resolve (PROJECT_LOCK): the versions the tests run with.
    tested_versions: bool = False

    @property
    def requirements(self) -> Path:
        return self.folder / f"{self.name}-requirements.txt"

    @property
    def lock(self) -> Path:
        return self.folder / f"{self.name}.lock"


LAYERS = (
    BaseLayer("standin", (), "the stand-in upstream (images/base/Dockerfile.standin)"),
    BaseLayer(
        "torch",
        ("standin",),
        "PyTorch and torchvision in the stand-in upstream, as docker-stacks pytorch-notebook has "
        "them (the package index's CUDA build; the build installs the wheels the host's pip "
        "fetched: tools/wheelhouse.py)",
    ),
    BaseLayer(
        "tensorflow",
        ("standin", "torch"),
        "the tensorflow flavor on the stand-in (local builds and CI)",
    ),
    BaseLayer(
        "tensorflow-cuda",
        ("standin", "torch"),
        "the tensorflow flavor in production (pants.production.toml); resolved against the "
        "stand-in's pins, the build's `pip check` verifies it on the production upstream",
    ),
    BaseLayer(
        "hub",
        (),
        "the production hub image (hub/Dockerfile), at the project resolve's versions",
        folder=Path("hub"),
        tested_versions=True,
    ),
)

BY_NAME = {layer.name: layer for layer in LAYERS}
#: The layers whose packages make each flavor in local builds and CI (catalog/flavors.py).
FLAVOR_LAYERS = {
    name: tuple(BY_NAME[layer] for layer in flavor.layers)
    for name, flavor in flavors.BY_NAME.items()
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [layer.name for layer in LAYERS]
    parser.add_argument("layers", nargs="*", metavar="LAYER", help=f"default: all of {names}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.layers) - set(names))
    if unknown:
        parser.error(f"unknown layer(s) {unknown}: the base layers are {names}")
    wanted = [layer for layer in LAYERS if not args.layers or layer.name in args.layers]
    pins: dict[str, dict[str, str]] = {}
    for layer in LAYERS:
        if layer.lock.is_file():
            pins[layer.name] = parse_lock(layer.lock.read_text(), str(layer.lock)).versions()
    client = docker.from_env()
    for layer in wanted:
        below: dict[str, str] = {}
        for name in layer.below:
            below.update(pins[name])
        constraints = dict(below)
        if layer.tested_versions:
            constraints = {**pex_lock_versions(PROJECT_LOCK.read_text()), **below}
        print(f"lock-base-images: resolving {layer.requirements} in {RESOLVER_IMAGE}", flush=True)
        requirements = layer.requirements.read_text()
        # Wheels the index does not serve (`+cpu`-style local builds): this layer's and below.
        wanted_wheels = local_pins(
            [*requirements.splitlines(), *(f"{n}=={v}" for n, v in below.items())]
        )
        try:
            compiled = resolve(
                client,
                RESOLVER_IMAGE,
                [Job(layer.name, requirements, constraints_text(constraints))],
                wanted_wheels,
            ).compiled[layer.name]
        except ResolveError as e:  # this layer's lock stays as it was
            print(f"lock-base-images: {e}", file=sys.stderr)
            return 1
        text = render_lock(
            [
                f"The Python packages of {layer.purpose}.",
                "Generated by `./pants run tools:lock-base-images`; do not edit.",
            ],
            layer.requirements.name,
            requirements,
            compiled,
            below,
        )
        layer.lock.write_text(text)
        pins[layer.name] = parse_lock(text, str(layer.lock)).versions()
        print(f"lock-base-images: wrote {layer.lock} ({len(pins[layer.name])} packages)")
    print(
        "lock-base-images: now rebuild and take the inventory: ./pants package images/base:: && "
        "./pants run tools:flavor-modules (./pants test tests/tools:docker says what changed)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
