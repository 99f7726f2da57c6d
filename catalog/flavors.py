"""The base image flavors a course can name in course.toml (`flavor = "pytorch"`), in one place:
their names, the base image each builds FROM and its locked layers, the resources a course of
each gets where its course.toml names none, and which upstream images mean which flavor (an old Dockerfile's FROM,
read by tools:import-course). Pure data; the reader (catalog.course), the writer
(catalog.course_toml), the build (pants-plugins/course_targets) and the tools read it here.
"""

from __future__ import annotations

from dataclasses import dataclass

_GiB = 2**30
#: What names a flavor's CUDA variant among the base images (`images/base:pytorch-gpu`).
GPU_SUFFIX = "-gpu"


@dataclass(frozen=True)
class Flavor:
    name: str
    #: What is in it, for people choosing one.
    summary: str
    #: Memory limit and guarantee (bytes), CPU limit and guarantee of a learner's server, where
    #: course.toml has no [resources]; a GPU course gets at least GPU_RESOURCES.
    resources: tuple[int, int, float, float]
    #: The base image's locked layers (images/base/<layer>.lock), bottom first, in local builds
    #: and CI (tools/lock_base_images.py: what each holds); its CUDA variant's too (the stand-in
    #: has one PyTorch; only production's tensorflow-gpu installs the tensorflow-cuda layer).
    layers: tuple[str, ...]

    def base_image(self, gpu: bool) -> str:
        """The Pants address of the base image a course of this flavor builds FROM: its CUDA
        variant (`images/base:<flavor>-gpu`) for a course with `gpu = true`. In production the
        two start from docker-stacks' CPU and CUDA tags of pytorch-notebook
        (pants.production.toml); here both from the stand-in, whose PyTorch is the CUDA build."""
        return f"images/base:{self.name}{GPU_SUFFIX if gpu else ''}"


#: The least a GPU course's server gets by default (the GPU's work needs host memory too).
GPU_RESOURCES = (4 * _GiB, 2 * _GiB, 2.0, 0.5)

_FLAVORS = (
    Flavor(
        "pytorch",
        "docker-stacks' pytorch-notebook: Python, the scientific stack and PyTorch",
        (2 * _GiB, 1 * _GiB, 2.0, 0.5),
        ("standin", "torch"),
    ),
    Flavor(
        "tensorflow",
        "pytorch plus TensorFlow (as the system this replaces had it)",
        (4 * _GiB, 2 * _GiB, 2.0, 0.5),
        ("standin", "torch", "tensorflow"),
    ),
)
BY_NAME = {flavor.name: flavor for flavor in _FLAVORS}
#: The flavor names, in the order people are offered them (the first is the default).
FLAVORS = tuple(BY_NAME)
DEFAULT_FLAVOR = FLAVORS[0]


def default_resources(flavor: object, gpu: bool) -> tuple[int, int, float, float]:
    """What a course of `flavor` gets where its course.toml has no [resources] (the default
    flavor's for a flavor that is none, which the reader reports: maybe not even a string)."""
    name = flavor if isinstance(flavor, str) and flavor in BY_NAME else DEFAULT_FLAVOR
    base = BY_NAME[name].resources
    if not gpu:
        return base
    return (
        max(base[0], GPU_RESOURCES[0]),
        max(base[1], GPU_RESOURCES[1]),
        max(base[2], GPU_RESOURCES[2]),
        max(base[3], GPU_RESOURCES[3]),
    )


def flavor_of_image(image: str) -> str | None:
    """The flavor an upstream image reference stands for (`FROM` of the system this replaces):
    a TensorFlow image -> tensorflow, any other docker-stacks `*-notebook` -> pytorch; None for
    an image that is no docker-stacks notebook."""
    name = image.split("@")[0].rsplit(":", 1)[0].rsplit("/", 1)[-1]
    if "tensorflow" in name:
        return "tensorflow"
    if name.endswith("-notebook"):  # docker-stacks: pytorch, scipy, datascience, minimal...
        return DEFAULT_FLAVOR
    return None
