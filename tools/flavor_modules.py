"""Regenerates tools/course_check/flavor_modules.json from the built base images.

    ./pants package images/base::
    ./pants run tools:flavor-modules

The static check `missing-dependency` uses that inventory to know what each flavor provides
without building anything; tests/tools/test_flavor_inventory.py fails when it no longer matches
the images.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import docker

from catalog import FLAVORS
from tools.course_check.dependencies import INVENTORY_FILE
from tools.course_check.inventory import built_base_image, image_inventory, inventory_document

DEFAULT_OUTPUT = Path("tools/course_check") / INVENTORY_FILE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="FLAVOR=REF",
        help="image per flavor (default: from dist/images.base/<flavor>.docker-info.json)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    images = dict(item.split("=", 1) for item in args.image)
    for flavor in FLAVORS:
        if flavor not in images:
            images[flavor] = built_base_image(flavor)
    client = docker.from_env()
    flavors = {}
    for flavor, image in sorted(images.items()):
        print(f"flavor-modules: {flavor}: taking the inventory of {image}")
        flavors[flavor] = image_inventory(client, image)
    args.output.write_text(json.dumps(inventory_document(flavors), indent=1) + "\n")
    print(f"flavor-modules: wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
