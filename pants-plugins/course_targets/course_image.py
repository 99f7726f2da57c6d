"""A course image as plain data: its Dockerfile lines, its names, the reference that is published.

No Pants imports: register.py and quality.py hand these functions plain values, and
tests/plugin/ tests them without Pants (which runs the plugin on Python 3.9 and is not in the
project's resolve).
"""

from __future__ import annotations

import shlex
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from catalog import Course
from catalog.image_facts import ImageMapError, content_reference, content_tag_template

COURSE_TEMPLATE = "images/course/Dockerfile"
# What the shared template's first line is replaced with: the base image as a Pants address, so
# that Pants infers the dependency on it and passes the built image's reference as a build arg.
BASE_IMAGE_ARG = "ARG BASE_IMAGE="
EXECUTABLES_MARKER = "# @course-executables"
DATA_MARKER = "# @course-data"
#: Where fetch-course-data keeps what it downloaded, by sha256: one BuildKit cache shared by every
#: course build on the machine, so that a rebuild or another course with the same file does not
#: download it again.
DATA_CACHE_MOUNT = "--mount=type=cache,id=course-data,target=/tmp/course-data,uid=1000,gid=100"
# The local-only registry that carries the moving `:<slug>` tag: `[docker.registries.local]`,
# with `skip_push = true` and `extra_image_tags = ["{build_args.COURSE_SLUG}"]` (pants.toml).
LOCAL_REGISTRY = "local"
SLUG_BUILD_ARG = "COURSE_SLUG"


class CourseImageError(ValueError):
    """Input a course image cannot be made from or named by; the rules report it with the
    course's address."""


def course_slug(directory: str) -> str:
    """`courses/intro-ml` -> `intro-ml`: a course's slug is its directory's name."""
    return directory.rsplit("/", 1)[-1]


def course_file_globs(directory: str) -> tuple[str, ...]:
    """Every file of a course directory, less Jupyter's checkpoints: the image's content and the
    quality tools' input."""
    return (f"{directory}/**", f"!{directory}/**/.ipynb_checkpoints/**")


def course_instructions(
    template: str, course: Course, executables: Collection[str] = (), key: str | None = None
) -> list[str]:
    """The shared Dockerfile template filled in for one course's image `key` (default: its own):
    its base image, the files git has as executable (paths in the course directory), and its
    `[[data]]` files."""
    lines = template.splitlines()
    for prefix in (BASE_IMAGE_ARG, EXECUTABLES_MARKER, DATA_MARKER):
        if sum(line.startswith(prefix) for line in lines) != 1:
            raise CourseImageError(
                f"{COURSE_TEMPLATE} must have exactly one line starting with `{prefix}`"
            )
    result = []
    for line in lines:
        if line.startswith(BASE_IMAGE_ARG):
            result.append(f"{BASE_IMAGE_ARG}{course.base_image_of(key or course.slug)}")
        elif line.startswith(EXECUTABLES_MARKER):
            if executables:
                result.append("RUN chmod 0755 " + " ".join(map(shlex.quote, sorted(executables))))
        elif line.startswith(DATA_MARKER):
            result.extend(
                f"RUN {DATA_CACHE_MOUNT} fetch-course-data "
                + ("--unpack " if d.unpack else "")
                + " ".join(map(shlex.quote, (d.sha256, d.url, d.path)))
                for d in course.data
            )
        else:
            result.append(line)
    return result


def own_dockerfile_problem(course: Course, dockerfile: str) -> str | None:
    """What is wrong with a course's own Dockerfile, if anything: it must build FROM its flavor's
    base image (which Pants then builds first and passes in)."""
    expected = f"{BASE_IMAGE_ARG}{course.base_image}"
    if expected in dockerfile.splitlines():
        return None
    return (
        "must build FROM its flavor's base image: "
        f"add the line `{expected}` and use `FROM ${{BASE_IMAGE}}`"
    )


def own_dockerfile_for(course: Course, dockerfile: str, key: str) -> list[str]:
    """A course's own Dockerfile (checked by `own_dockerfile_problem`) for its image `key`: a GPU
    course's CPU image builds FROM its flavor's CPU base image instead."""
    own = f"{BASE_IMAGE_ARG}{course.base_image}"
    return [
        f"{BASE_IMAGE_ARG}{course.base_image_of(key)}" if line == own else line
        for line in dockerfile.splitlines()
    ]


class RegistryOptions(Protocol):
    """What is read here of a `[docker.registries.<name>]` entry (Pants' DockerRegistryOptions)."""

    @property
    def address(self) -> str: ...

    @property
    def default(self) -> bool: ...

    @property
    def skip_push(self) -> bool: ...


@dataclass(frozen=True)
class ImageNaming:
    """The tags of a course image, and where they go."""

    #: `image_tags`: the content tag `<slug>-{pants.hash}` only.
    tags: tuple[str, ...]
    #: Registries (`@alias`) besides the default ones; none: the default registries alone.
    extra_registries: tuple[str, ...] = ()
    #: `extra_build_args` (`NAME=value`).
    build_args: tuple[str, ...] = ()


def image_naming(slug: str, registries: Mapping[str, RegistryOptions]) -> ImageNaming:
    """`image_tags` is only the content tag `<slug>-<hash>`: immutable (it changes whenever any
    input changes), what the image map names, and all that `./pants publish` pushes (ECR's
    repositories refuse to move a tag). The moving `<slug>` tag, "the current image of this
    course" for people, is a tag of the local-only registry alone: its `extra_image_tags` name
    it from the COURSE_SLUG build arg (Pants 2.17 interpolates no other per-target value into a
    registry's tags), and `skip_push` keeps it off every registry. Without that registry (CI
    replaces the registries with ECR's), there is no moving tag and no COURSE_SLUG build arg.

    `registries` is Pants' `DockerRegistries.registries`: options by `@alias` and by address.
    """
    tags = (content_tag_template(slug),)
    local = registries.get(f"@{LOCAL_REGISTRY}")
    if local is None:
        return ImageNaming(tags)
    if not local.skip_push or local.default:
        raise CourseImageError(
            f"[docker.registries.{LOCAL_REGISTRY}] names the moving `:<slug>` tag of course "
            "images, which must never be pushed: it needs `skip_push = true` and must not be "
            "a default registry"
        )
    return ImageNaming(tags, (f"@{LOCAL_REGISTRY}",), (f"{SLUG_BUILD_ARG}={slug}",))


def published_reference(
    slug: str, tags: Collection[str], registries: Iterable[RegistryOptions]
) -> str:
    """The reference of a built course image that leaves the machine: its content tag
    `<slug>-<hash>` in a registry that is pushed to (never a `skip_push` registry's name, such as
    the moving tag's local-only one). What the image map names and what the smoke test runs:
    there is no other reference to fall back to.

    `registries`: Pants' configured registries (`DockerRegistries.registries.values()`).
    """
    local_only = {registry.address for registry in registries if registry.skip_push}
    try:
        return content_reference(slug, tags, local_only)
    except ImageMapError as e:
        raise CourseImageError(
            f"{e} in a registry that is pushed to: rebuild it, tagged "
            f"`{content_tag_template(slug)}`"
        ) from None
