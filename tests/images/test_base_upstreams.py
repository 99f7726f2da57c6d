"""What each course image starts from, read from the committed build files as Docker reads them.

A course's image builds FROM its base image (`Course.base_image`), which builds FROM the image its
Dockerfile's `ARG` names, and so on down to an image nobody here builds: the upstream. These
tests follow that chain through `images/base/BUILD`, the Dockerfiles' `ARG`/`FROM` lines and the
build args of `pants.production.toml` (Pants passes `[docker].build_args` to every build, where
they replace the Dockerfile's defaults), for every course of the catalog:

- in production's configuration a CPU course ends on docker-stacks' CPU pytorch-notebook and no
  CUDA lock, a GPU course on its CUDA tag (and a GPU TensorFlow course on the CUDA lock), both
  tags of one build;
- locally every chain goes through the offline stand-in.

No Docker and no registry: the production upstream cannot be pulled here, so this is the contract
with docker-stacks' tag scheme (`<date>` and `cuda12-<date>`), checked as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import tomllib

from catalog import Course, load_catalog

CATALOG = load_catalog()
BASE_BUILD = Path("images/base/BUILD")
PRODUCTION = Path("pants.production.toml")
UPSTREAM = "quay.io/jupyter/pytorch-notebook"
DATE = r"\d{4}-\d{2}-\d{2}"


def _base_dockerfiles() -> dict[str, Path]:
    """`images/base:<name>` -> its Dockerfile, from the BUILD file's docker_image targets."""
    targets = re.findall(
        r'docker_image\(\s*name="([^"]+)",\s*source="([^"]+)"', BASE_BUILD.read_text()
    )
    return {f"images/base:{name}": BASE_BUILD.parent / source for name, source in targets}


def production_build_args() -> dict[str, str]:
    args = tomllib.loads(PRODUCTION.read_text())["docker"]["build_args"]["add"]
    return dict(arg.split("=", 1) for arg in args)


@dataclass(frozen=True)
class Chain:
    images: tuple[str, ...]  # the course's base image first, the upstream last
    locks: tuple[str, ...]  # the *_LOCK build args' values on the way


def _value(values: dict[str, str], arg: re.Match[str]) -> str:
    return values[arg[1]]


def chain(base_image: str, build_args: dict[str, str]) -> Chain:
    """Follow `FROM` (its `${ARG}` as the build sees it) from a base image target down to the
    first image no target builds."""
    dockerfiles = _base_dockerfiles()
    images, locks = [base_image], []
    while images[-1] in dockerfiles:
        text = dockerfiles[images[-1]].read_text()
        defaults = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.MULTILINE))
        values = defaults | {k: v for k, v in build_args.items() if k in defaults}
        froms = re.findall(r"^FROM (\S+)$", text, re.MULTILINE)
        assert len(froms) == 1, f"{dockerfiles[images[-1]]}: one stage expected"
        locks += [value for name, value in values.items() if name.endswith("_LOCK")]
        images.append(re.sub(r"\$\{(\w+)\}", partial(_value, values), froms[0]))
    return Chain(tuple(images), tuple(locks))


def test_every_base_image_target_is_followed() -> None:
    """The BUILD file's docker_image targets are all read (a reformatted BUILD fails here)."""
    assert BASE_BUILD.read_text().count("docker_image(") == len(_base_dockerfiles()) >= 5


#: Every course image: (course, image map key), a GPU course's CPU image (`<slug>--cpu`) too.
IMAGES = [pytest.param(c, key, id=key) for c in CATALOG for key in c.image_keys]


@pytest.mark.parametrize(("course", "key"), IMAGES)
def test_production_builds_gpu_courses_on_cuda_and_the_rest_on_cpu(
    course: Course, key: str
) -> None:
    """A GPU course's own image on the CUDA upstream; every other image, a GPU course's CPU
    image too, on the CPU upstream without CUDA anywhere in its chain."""
    found = chain(course.base_image_of(key), production_build_args())
    upstream = found.images[-1]
    cuda = course.gpu and key == course.slug
    assert (key == course.slug) != key.endswith("--cpu")
    if cuda:
        assert re.fullmatch(rf"{UPSTREAM}:cuda12-{DATE}", upstream), found
    else:
        assert re.fullmatch(rf"{UPSTREAM}:{DATE}", upstream), found
        assert not any("cuda" in image for image in found.images), found
    if course.flavor == "tensorflow":
        expected = "tensorflow-cuda.lock" if cuda else "tensorflow.lock"
        assert [Path(lock).name for lock in found.locks] == [expected], found
    else:
        assert found.locks == (), found


def test_production_takes_both_upstreams_from_one_build() -> None:
    args = production_build_args()
    cpu, gpu = args["UPSTREAM_IMAGE"], args["UPSTREAM_GPU_IMAGE"]
    assert gpu == cpu.replace(f"{UPSTREAM}:", f"{UPSTREAM}:cuda12-"), (cpu, gpu)


@pytest.mark.parametrize("course", CATALOG.courses, ids=CATALOG.slugs)
def test_local_builds_start_from_the_stand_in(course: Course) -> None:
    found = chain(course.base_image, {})
    assert found.images[-2:] == ("images/base:standin", "debian:bookworm-slim"), found
    assert course.base_image.endswith("-gpu") == course.gpu
