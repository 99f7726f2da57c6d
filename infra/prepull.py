"""Which nodes pull which course image before a learner asks for it. Pure: data in, data out.

zero-to-jupyterhub's pre-puller is one DaemonSet for all of its images, scheduled like learner
pods: every node it may run on pulls every image. GPU course images are several GB, and GPU
nodes carry a taint that CPU learner pods do not tolerate, so:

- the chart's pre-puller gets the images of CPU servers only (CPU courses', and a GPU course's CPU
  image `<slug>--cpu`: CPU nodes never pull a CUDA image), and does not tolerate the GPU taint
  (CPU images stay off GPU nodes) unless the stack sets `prePull.cpuImagesOnGpuNodes`;
- a DaemonSet of our own (`gpu_prepuller`), which selects GPU nodes by their label and tolerates
  their taint, pulls the GPU courses' images, in the chart's pattern: one init container per
  image that only exits, then a pause container;
- the chart's pre-pull hook is off: it is a Job that holds every `helm upgrade` until all nodes
  have pulled, which made upgrades slow and, with an atomic release, fragile. The continuous
  pre-puller pulls on every node, new ones included, while the release stays atomic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from catalog import Catalog
from infra.images import ImageRef
from infra.stack_config import StackConfig

GPU_PREPULLER_NAME = "gpu-image-puller"
#: pulumi-kubernetes' annotation: create or update the object without awaiting its readiness.
SKIP_AWAIT = "pulumi.com/skipAwait"
#: The chart's own pause image (zero-to-jupyterhub 4.4.0 `prePuller.pause.image`).
PAUSE_IMAGE = "registry.k8s.io/pause:3.10.1"
#: What the chart's pre-puller containers run with (its `prePuller.containerSecurityContext`).
PULLER_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "runAsGroup": 65534,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
#: A puller's containers only exit (or pause): they request nothing, so they never keep a
#: learner's pod off a node, and are bounded should an image's shell misbehave.
PULLER_RESOURCES = {"requests": {"cpu": "0", "memory": "0"}, "limits": {"memory": "64Mi"}}
# A container name is at most 63 characters; the chart names its containers `image-pull-<key>`.
_KEY_MAX = 63 - len("image-pull-")


def prepull_key(slug: str) -> str:
    """A pre-puller entry name for a course: the slug, shortened with a hash when too long."""
    if len(slug) <= _KEY_MAX:
        return slug
    digest = hashlib.sha256(slug.encode()).hexdigest()[:8]
    return f"{slug[: _KEY_MAX - 9].rstrip('-')}-{digest}"


def _split(catalog: Catalog) -> tuple[list[str], list[str]]:
    """Image map keys: the images CPU servers run (CPU courses', and GPU courses' `<slug>--cpu`),
    and the CUDA images GPU servers run (GPU courses' own)."""
    cpu = sorted(course.image_key(gpu=False) for course in catalog)
    gpu = sorted(course.slug for course in catalog if course.gpu)
    return cpu, gpu


def chart_prepuller(
    stack: StackConfig, catalog: Catalog, images: Mapping[str, ImageRef]
) -> dict[str, Any]:
    """The chart's `prePuller` values: the images CPU servers run, hook off."""
    cpu, _ = _split(catalog)
    return {
        "hook": {"enabled": False},
        "continuous": {"enabled": True},
        "resources": PULLER_RESOURCES,
        "extraImages": {
            prepull_key(key): {
                "name": images[key].name,
                "tag": images[key].helm_tag,
                "pullPolicy": "IfNotPresent",
            }
            for key in cpu
        },
        "extraTolerations": (
            [stack.gpu.taint.toleration()] if stack.pre_pull.cpu_images_on_gpu_nodes else []
        ),
    }


def gpu_prepuller(
    stack: StackConfig, catalog: Catalog, images: Mapping[str, ImageRef]
) -> dict[str, Any] | None:
    """The DaemonSet that pulls the GPU courses' CUDA images on GPU nodes; None without GPU
    courses."""
    _, gpu = _split(catalog)
    if not gpu:
        return None
    labels = {
        "app.kubernetes.io/name": GPU_PREPULLER_NAME,
        "app.kubernetes.io/part-of": "jupyterhub",
        "app.kubernetes.io/managed-by": "pulumi",
    }
    container = {
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", "echo Pulling complete"],
        "securityContext": PULLER_SECURITY,
        "resources": PULLER_RESOURCES,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": GPU_PREPULLER_NAME,
            "namespace": stack.namespace,
            "labels": labels,
            # A deploy must not wait for every GPU node to pull several GB of images.
            "annotations": {SKIP_AWAIT: "true"},
        },
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": GPU_PREPULLER_NAME}},
            "updateStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "100%"},
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {stack.gpu.node_label_key: stack.gpu.node_label_value},
                    "tolerations": [stack.gpu.taint.toleration()],
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 0,
                    "securityContext": {"runAsNonRoot": True},
                    "initContainers": [
                        {"name": f"image-pull-{prepull_key(slug)}", "image": str(images[slug])}
                        | container
                        for slug in gpu
                    ],
                    "containers": [
                        {
                            "name": "pause",
                            "image": PAUSE_IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "securityContext": PULLER_SECURITY,
                            "resources": PULLER_RESOURCES,
                        }
                    ],
                },
            },
        },
    }
