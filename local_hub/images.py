"""The local hub's course images: the image map, checked against this Docker engine, and the
Pants build that makes both.

Every course's image is the one the image map names (`catalog.image_facts`); a course missing
from the map, or an image Docker does not have, is an error that says to build them. No tag is
guessed: in particular never the moving `localhost/ol-course-notebooks:<slug>` tag, which is
for people only.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from catalog import Catalog
from catalog.image_facts import (
    BUILD_COMMAND,
    IMAGE_MAP_TARGET,
    ImageMapError,
    find_image_map,
    read_image_map,
)

#: Names the image map to use instead of the built one.
IMAGE_MAP_ENV = "HUB_IMAGE_MAP"
#: `./pants ...`: every course image and the image map (cached: fast when up to date).
BUILD_ARGUMENTS = ("package", "courses::", IMAGE_MAP_TARGET)


def image_map_file(root: Path) -> Path:
    """`$HUB_IMAGE_MAP`, else the image map a Pants test carries, else the checkout's."""
    if os.environ.get(IMAGE_MAP_ENV):
        return Path(os.environ[IMAGE_MAP_ENV])
    return find_image_map(root)


def load_image_map(root: Path) -> dict[str, str]:
    """The image map (`ImageMapError` when there is none: it says what to run)."""
    return read_image_map(image_map_file(root))


def docker_client() -> Any:
    import docker

    return docker.from_env()


def local_images(
    catalog: Catalog, image_map: Mapping[str, str], client: Any, source: str = "the image map"
) -> dict[str, str]:
    """Image map key -> reference for every course image of the catalog (a GPU course's CPU
    image `<slug>--cpu` too), from the image map, each checked to be in this Docker engine; an
    `ImageMapError` names every image that is not."""
    present = {reference for image in client.images.list() for reference in image.tags}
    keys = catalog.image_keys
    missing = [key for key in keys if not image_map.get(key)]
    absent = [
        f"{image_map[key]} ({key})"
        for key in keys
        if image_map.get(key) and image_map[key] not in present
    ]
    problems = [f"{source} has no image for {', '.join(missing)}"] if missing else []
    problems += [f"Docker has no image {', '.join(absent)}"] if absent else []
    if problems:
        raise ImageMapError(f"{'; '.join(problems)}: build them with `{BUILD_COMMAND}`")
    return {key: image_map[key] for key in keys}


def build_images(root: Path) -> None:
    """Builds every course image and the image map with Pants (cached: fast when up to date)."""
    pants = [str(root / "pants")]
    # Under `./pants run hub:local` (a PEX) another Pants run is in progress: run beside it.
    if os.environ.get("PEX"):
        pants.append("--concurrent")
    command = [*pants, *BUILD_ARGUMENTS]
    print("Building the course images:", " ".join(command), flush=True)
    subprocess.run(command, cwd=root, check=True, env=outside_this_pex())


def outside_this_pex() -> dict[str, str]:
    """This process's environment less what running as a PEX added to it (the PEX's venv first
    on PATH, PEX_* variables), so that a nested ./pants finds the user's own tools: the stand-in's
    torch wheels are fetched by the user's python3 and pip (images/base:torch-wheels)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PEX")}
    if sys.prefix != sys.base_prefix:  # a venv (the PEX's), never the system's own prefix
        paths = env.get("PATH", "").split(os.pathsep)
        env["PATH"] = os.pathsep.join(p for p in paths if not p.startswith(sys.prefix + os.sep))
    return env
