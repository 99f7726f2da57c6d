"""Image references: the image map and the hub image, parsed and checked. No I/O.

The image map (`catalog.image_facts`: where it is, what it holds, how tags are made) maps each
course to its immutable content tag `<registry>/ol-course-notebooks:<slug>-<64 hex>`. The hub
and infra use only those tags, never the moving `:<slug>` tag.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from catalog import Catalog
from catalog.image_facts import (
    BUILD_COMMAND,
    COURSE_REPOSITORY,
    HUB_REPOSITORY,
    PANTS_HASH,
    TAG_PATTERN,
    content_tag_name,
)

_MUTABLE_TAGS = {"latest", "main", "master"}


class ImageError(ValueError):
    """A missing, stale or mutable image reference, and how to fix it."""


_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageRef:
    """`<registry>/<repository>:<tag>`, or `...:<tag>@sha256:<digest>` once the registry has
    said which bytes the tag names (`pinned`); `name` is everything before the tag."""

    name: str
    tag: str
    digest: str | None = None

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        if not isinstance(ref, str) or "@" in ref:
            raise ImageError(f"{ref!r} is not an image reference of the form name:tag")
        name, sep, tag = ref.rpartition(":")
        if not sep or not name or "/" in tag or not TAG_PATTERN.match(tag):
            raise ImageError(f"{ref!r} has no tag; expected name:tag")
        return cls(name=name, tag=tag)

    @property
    def registry(self) -> str:
        """The registry host (and port), or "" for a bare Docker Hub name."""
        first, sep, _ = self.name.partition("/")
        return first if sep and ("." in first or ":" in first or first == "localhost") else ""

    @property
    def repository(self) -> str:
        """The repository path within the registry."""
        return self.name[len(self.registry) + 1 :] if self.registry else self.name

    def pinned(self, digest: str) -> ImageRef:
        """This image by the digest the registry gave for its tag: what is deployed."""
        if not _DIGEST.match(digest):
            raise ImageError(f"{self}: {digest!r} is not a sha256 digest")
        return replace(self, digest=digest)

    @property
    def helm_tag(self) -> str:
        """What a chart's `image.tag` takes (charts write `<name>:<tag>`): the tag, and the
        digest when pinned, so the node pulls exactly those bytes."""
        return f"{self.tag}@{self.digest}" if self.digest else self.tag

    def __str__(self) -> str:
        return f"{self.name}:{self.helm_tag}"


def course_images(catalog: Catalog, image_map: Mapping[str, str]) -> dict[str, ImageRef]:
    """Every course image of the catalog by image map key (`Catalog.image_keys`: a course's
    slug, and a GPU course's `<slug>--cpu`), from the image map, checked.

    Every key needs exactly one entry, tagged with its immutable content tag in the course image
    repository; an entry for an image that no longer exists means the file is stale.
    """
    rebuild = f"rebuild it with `{BUILD_COMMAND}`"
    keys = catalog.image_keys
    missing = [key for key in keys if key not in image_map]
    if missing:
        raise ImageError(f"the image map has no image for {', '.join(missing)}: {rebuild}")
    extra = sorted(set(image_map) - set(keys))
    if extra:
        raise ImageError(f"the image map lists images of no course ({', '.join(extra)}): {rebuild}")
    result = {}
    for key in keys:
        ref = ImageRef.parse(image_map[key])
        if content_tag_name(ref.tag) != key:
            raise ImageError(
                f"{key}: {ref} is not the image's immutable content tag ({key}-<64 hex>); "
                "the hub never uses the moving tag"
            )
        if ref.repository.rsplit("/", 1)[-1] != COURSE_REPOSITORY:
            raise ImageError(f"{key}: {ref} is not in the {COURSE_REPOSITORY} repository")
        result[key] = ref
    return result


def preview_tags(
    catalog: Catalog, published: Iterable[tuple[str, str]], limit: int
) -> dict[str, list[str]]:
    """Per course, the newest `limit` content tags published for it: what `tag=` may open.

    `published`: (tag, when pushed, any sortable text such as ISO 8601) for every tag in the
    course repository; other courses' tags and tags that are not content tags are ignored.
    """
    newest: dict[str, list[tuple[str, str]]] = {slug: [] for slug in catalog.slugs}
    for tag, pushed in published:
        slug = content_tag_name(tag)
        if slug is not None and slug in newest:
            newest[slug].append((pushed, tag))
    return {
        slug: [tag for _, tag in sorted(found, reverse=True)[:limit]]
        for slug, found in sorted(newest.items())
        if found and limit
    }


def hub_image(ref: str) -> ImageRef:
    """The hub image reference, checked: the hub repository and a tag that never moves."""
    image = ImageRef.parse(ref)
    if image.repository.rsplit("/", 1)[-1] != HUB_REPOSITORY:
        raise ImageError(f"{ref} is not in the {HUB_REPOSITORY} repository")
    if image.tag in _MUTABLE_TAGS:
        raise ImageError(f"{ref}: the hub image needs an immutable tag, not {image.tag!r}")
    return image


def hub_image_from_docker_info(info: Mapping[str, object]) -> str:
    """The hub image reference from Pants' `<name>.docker-info.json` for `hub:image`.

    Picks the tag made from `{pants.hash}` (immutable); if the image has a single tag, that one.
    """
    names: list[tuple[str, str]] = []
    registries = info.get("registries")
    if not isinstance(registries, list):
        raise ImageError("the docker-info file has no `registries` list")
    for registry in registries:
        for tag in registry.get("tags", []) if isinstance(registry, Mapping) else []:
            if isinstance(tag, Mapping) and isinstance(tag.get("name"), str):
                names.append((str(tag.get("template", "")), tag["name"]))
    hashed = [name for template, name in names if PANTS_HASH in template]
    if hashed:
        return hashed[0]
    if len(names) == 1:
        return names[0][1]
    raise ImageError(
        "the docker-info file names no single immutable hub image tag; pass --hub-image"
    )


def check_registry(images: Mapping[str, ImageRef], repository_url: str) -> None:
    """Every image must come from the stack's ECR repository (not a local or other registry)."""
    wrong = sorted(f"{key}: {ref}" for key, ref in images.items() if ref.name != repository_url)
    if wrong:
        raise ImageError(
            f"images not in {repository_url}: {'; '.join(wrong)}. Build them with "
            "PANTS_DOCKER_REGISTRIES pointing at the stack's registry and publish them first"
        )
