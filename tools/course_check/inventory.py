"""Taking the inventory of a base image flavor: what a notebook can import in it.

Runs a short script with the image's own Python (isolated, outside any course directory) and
returns plain data in the shape of `flavor_modules.json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

INVENTORY_SCRIPT = r"""
import importlib.metadata as metadata, json, pkgutil, re, sys
names = set(sys.stdlib_module_names) | set(sys.builtin_module_names)
names |= {m.name for m in pkgutil.iter_modules()}
distributions = {}
for module, dists in metadata.packages_distributions().items():
    if module.isidentifier():
        distributions[module] = sorted(set(dists))
        names.add(module)
installed = {}
for dist in metadata.distributions():
    name = dist.metadata["Name"]
    if name:
        installed[re.sub(r"[-_.]+", "-", name).lower()] = dist.version
print(json.dumps({
    "python": "%d.%d.%d" % sys.version_info[:3],
    "modules": sorted(n for n in names if n.isidentifier() and n != "__pycache__"),
    "distributions": dict(sorted(distributions.items())),
    "installed": dict(sorted(installed.items())),
}))
"""


def image_inventory(client: Any, image: str) -> dict[str, Any]:
    """The inventory of one image (docker SDK client), as plain data."""
    output = client.containers.run(
        image,
        ["python3", "-I", "-c", INVENTORY_SCRIPT],
        working_dir="/",
        network_mode="none",
        remove=True,
    )
    return json.loads(output)


def image_id_from_docker_info(path: Path) -> str:
    """The image id in a `<target>.docker-info.json` written by `./pants package`."""
    return str(json.loads(path.read_text())["image_id"])


def built_base_image(flavor: str) -> str:
    """The id of `images/base:<flavor>` as `./pants package` last built it (SystemExit if not)."""
    info = Path("dist/images.base") / f"{flavor}.docker-info.json"
    if not info.is_file():
        raise SystemExit(f"{info} is missing: run ./pants package images/base:{flavor} first")
    return image_id_from_docker_info(info)


def inventory_document(flavors: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "comment": (
            "What each base image flavor provides to notebooks: the modules of its Python and "
            "of its locked packages (images/base/*.lock). Generated: "
            "./pants package images/base:: && ./pants run tools:flavor-modules"
        ),
        "flavors": {name: flavors[name] for name in sorted(flavors)},
    }
