"""The image facts: how images are named and tagged, and where the image map is and what it holds.

The one place for what the build (the Pants plugin), the hub, infra and the tools must agree on
about images. It imports on Python 3.9 (the Pants plugin imports it) and does no I/O but
`read_image_map`.

- Repositories: course images are `<registry>/ol-course-notebooks:<tag>`, the hub image
  `<registry>/ol-course-hub:<tag>`, base images `ol-course-base` (`hub/BUILD` and
  `images/base/BUILD` name theirs too: BUILD files import nothing; tests compare them).
- Content tags: `<name>-<hash>`, the hash being Pants' 64-hex input hash (the image tag template
  `<name>-{pants.hash}`): `<slug>-<hash>` for a course, `hub-<hash>` for the hub. They never move;
  they are the only tags pushed and the only tags the hub and infra use.
- The image map: a JSON object `course slug -> image reference` (content-tagged), written by
  `./pants package courses::` as `courses/image-map.json` under the package output folder:
  `dist/courses/image-map.json` in a checkout, `courses/image-map.json` in the sandbox of a test
  with a `runtime_package_dependencies` on `courses:image-map`. Every reader of a course's image
  goes through it; a course missing from it is an error that says how to rebuild it, never a
  guessed tag.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from catalog.course import CPU_IMAGE_SUFFIX

COURSE_REPOSITORY = "ol-course-notebooks"
HUB_REPOSITORY = "ol-course-hub"
#: The base images' (`images/base/BUILD` names it too); never pushed.
BASE_REPOSITORY = "ol-course-base"
HUB_TAG_NAME = "hub"

#: Pants' image tag placeholder for the target's input hash (64 hex digits).
PANTS_HASH = "{pants.hash}"
#: A Docker tag: what a registry accepts after the `:`.
TAG_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
#: A content tag `<name>-<64 hex>`; `name` is a course slug, `hub` or a base image's name.
CONTENT_TAG_PATTERN = re.compile(
    r"^(?P<name>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)-(?P<hash>[0-9a-f]{64})$"
)

#: The command that builds every course image and writes the image map.
BUILD_COMMAND = "./pants package courses::"
#: The Pants target that writes the image map (`course_image_map`, courses/BUILD).
IMAGE_MAP_TARGET = "courses:image-map"
#: Where the image map goes, relative to the package output folder (`dist/`, or a test sandbox).
IMAGE_MAP_OUTPUT = "courses/image-map.json"
DIST_DIR = "dist"
#: The image map of a checkout, relative to the repository root.
IMAGE_MAP = f"{DIST_DIR}/{IMAGE_MAP_OUTPUT}"
#: The image map CI's publish gate writes for the deploy (same format).
DEPLOY_IMAGE_MAP = f"{DIST_DIR}/courses/deploy-image-map.json"
#: Pants' record of the built hub image (`./pants package hub:image`), relative to the root.
HUB_IMAGE_INFO = f"{DIST_DIR}/hub/image.docker-info.json"


#: The generated targets of a course's images: its own (`courses/<slug>#image`) and a GPU
#: course's CPU image (`courses/<slug>#image-cpu`, image map key `<slug>--cpu`).
IMAGE_TARGET = "image"
CPU_IMAGE_TARGET = "image-cpu"


def image_target_name(key: str) -> str:
    """The generated target's name of the image with image map key `key`."""
    return CPU_IMAGE_TARGET if key.endswith(CPU_IMAGE_SUFFIX) else IMAGE_TARGET


def image_key(slug: str, target_name: str) -> str:
    """The image map key of a course's generated image target (the inverse of
    `image_target_name`)."""
    return slug + CPU_IMAGE_SUFFIX if target_name == CPU_IMAGE_TARGET else slug


def image_target(key: str) -> str:
    """The Pants address of the image with image map key `key`: `courses/<slug>#image[-cpu]`."""
    slug = key[: -len(CPU_IMAGE_SUFFIX)] if key.endswith(CPU_IMAGE_SUFFIX) else key
    return f"courses/{slug}#{image_target_name(key)}"


class ImageMapError(ValueError):
    """A missing or unreadable image map, or a course without its image: says how to fix it."""


# --- tags ---------------------------------------------------------------------------------------


def content_tag_template(name: str) -> str:
    """The Pants `image_tags` entry of an image named `name`: `<name>-{pants.hash}`."""
    return f"{name}-{PANTS_HASH}"


def content_tag(name: str, digest: str) -> str:
    """The content tag `<name>-<hash>` (what Pants makes of the template)."""
    tag = f"{name}-{digest}"
    if not CONTENT_TAG_PATTERN.match(tag):
        raise ValueError(f"{tag!r} is not a content tag <name>-<64 hex>")
    return tag


HUB_TAG_TEMPLATE = content_tag_template(HUB_TAG_NAME)


def split_reference(reference: str) -> tuple[str, str]:
    """`(name, tag)` of `<name>:<tag>`; `tag` is "" when the reference has none (a `:` in the
    registry's host:port is no tag)."""
    name, sep, tag = reference.rpartition(":")
    if not sep or "/" in tag:
        return reference, ""
    return name, tag


def content_tag_name(tag: str) -> str | None:
    """The `<name>` of a content tag `<name>-<64 hex>`; None for any other tag."""
    match = CONTENT_TAG_PATTERN.match(tag)
    return match.group("name") if match else None


def is_content_tag(reference: str, name: str | None = None) -> bool:
    """Whether the reference's tag is a content tag (of `name`, when given)."""
    found = content_tag_name(split_reference(reference)[1])
    return found is not None and (name is None or found == name)


def content_reference(slug: str, references: Iterable[str], skip: Collection[str] = ()) -> str:
    """The course's content-tagged reference among the names of its built image (Pants' tags),
    leaving out names in the registries `skip` (local-only ones, whose names never leave the
    machine); the first in sorted order when several registries have one."""
    found = sorted(
        reference
        for reference in references
        if is_content_tag(reference, slug)
        and not any(reference.startswith(f"{registry}/") for registry in skip)
    )
    if not found:
        names = ", ".join(sorted(references)) or "none"
        raise ImageMapError(
            f"the image of {slug} has no content tag {slug}-<hash> (its names: {names})"
        )
    return found[0]


# --- the image map ------------------------------------------------------------------------------


def format_image_map(image_map: Mapping[str, str]) -> str:
    """The image map file's text: a JSON object, courses sorted."""
    return json.dumps(dict(sorted(image_map.items())), indent=2) + "\n"


def parse_image_map(text: str, source: str = IMAGE_MAP) -> dict[str, str]:
    """The image map from its text; `source` names the file in errors."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ImageMapError(f"{source} is not valid JSON ({e}): {_REBUILD}") from None
    if not isinstance(data, dict):
        raise ImageMapError(
            f"{source} is not a JSON object of course -> image reference: {_REBUILD}"
        )
    bad = sorted(str(k) for k, v in data.items() if not isinstance(v, str) or not v)
    if bad:
        raise ImageMapError(
            f"{source}: the image of {', '.join(bad)} is not an image reference: {_REBUILD}"
        )
    return {str(k): v for k, v in data.items()}


def read_image_map(path: Path) -> dict[str, str]:
    """Reads and checks an image map file; a missing file says how to build it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImageMapError(
            f"no image map at {path}: build the course images and the map with `{BUILD_COMMAND}`"
        ) from None
    except OSError as e:
        raise ImageMapError(f"cannot read the image map {path}: {e}") from None
    return parse_image_map(text, str(path))


def image_of(image_map: Mapping[str, str], slug: str, source: str = IMAGE_MAP) -> str:
    """The course's image from the image map; a course without one is an error, never a guess."""
    image = image_map.get(slug)
    if not image:
        raise ImageMapError(f"{source} has no image for {slug}: {_REBUILD}")
    return image


def image_map_path(root: Path) -> Path:
    """The image map of the checkout at `root` (`./pants package courses::` writes it)."""
    return root / IMAGE_MAP


def find_image_map(root: Path, here: Path | None = None) -> Path:
    """The image map to read: the one a Pants test carries in its sandbox (the working directory,
    or `here`), else the checkout's (`root`). The path may not exist: `read_image_map` says what
    to run then."""
    carried = (here or Path.cwd()) / IMAGE_MAP_OUTPUT
    return carried if carried.is_file() else image_map_path(root)


def course_image_info(slug: str) -> str:
    """Pants' record of a course image's last build (`./pants package courses/<slug>::`),
    relative to the root."""
    return f"{DIST_DIR}/courses.{slug}/image.docker-info.json"


def built_names(docker_info: str) -> set[str]:
    """Every name a Pants `*.docker-info.json` gives the image it built (empty if unreadable)."""
    try:
        info = json.loads(docker_info)
        return {tag["name"] for registry in info["registries"] for tag in registry["tags"]}
    except (ValueError, KeyError, TypeError):
        return set()


def stale_image(slug: str, mapped: str, built: set[str]) -> str | None:
    """What is wrong when the image map names another image than the course's last build (a
    course packaged alone after an edit: its map still names the image before it); None if not."""
    if not built or mapped in built:
        return None
    try:
        current = content_reference(slug, built)
    except ImageMapError:
        current = sorted(built)[0]
    return (
        f"the image map names {mapped} for {slug}, but its last build is {current}: "
        f"the map is older than that build; run `{BUILD_COMMAND}` (it builds only what changed) "
        "and try again"
    )


_REBUILD = f"rebuild it with `{BUILD_COMMAND}`"
