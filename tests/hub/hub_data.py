"""Test data for the hub tests: a small catalog, its image map and launch settings, independent
of the real courses (which change while courses are written)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from catalog import Catalog, Course, Resources
from hub.launch import GpuSettings, LaunchSettings
from hub.settings import CullSettings, HubSettings, settings_to_custom

GiB = 2**30
MiB = 2**20
REGISTRY = "127.0.0.1:5000/ol-course-notebooks"


def _course(
    slug: str,
    notebooks: tuple[str, ...],
    memory: int,
    gpu: bool = False,
    gpu_notebooks: tuple[str, ...] = (),
) -> Course:
    return Course(
        slug=slug,
        title=slug.replace("-", " ").title(),
        flavor="tensorflow" if gpu else "pytorch",
        gpu=gpu,
        resources=Resources(
            memory_limit=memory, memory_guarantee=memory // 2, cpu_limit=2.0, cpu_guarantee=0.5
        ),
        notebooks=notebooks,
        gpu_notebooks=gpu_notebooks,
    )


CATALOG = Catalog(
    (
        _course(
            "data-analytics",
            (
                "lectures/01-dataframes/dataframes.ipynb",
                "lectures/02-groupby/groupby.ipynb",
                "assignments/assignment1.ipynb",
            ),
            1 * GiB,
        ),
        _course("deep-learning-gpu", ("lectures/lecture1/tensors.ipynb",), 4 * GiB, gpu=True),
        _course("intro-ml", ("notebooks/My Notebook.ipynb", "notebooks/100% sure.ipynb"), 3 * GiB),
        # `gpu = ["train.ipynb"]`: only that notebook's links plan a GPU server.
        _course("vision-lab", ("explore.ipynb", "train.ipynb"), 4 * GiB, True, ("train.ipynb",)),
        # In the catalog but not built: never launchable.
        _course("unbuilt", ("a.ipynb",), 512 * MiB),
    )
)
#: Every built course's images by image map key: a GPU course's CUDA image and CPU image.
IMAGE_MAP = {
    key: f"{REGISTRY}:{key}-{'0' * 63}{index}"
    for index, key in enumerate(
        (
            "data-analytics",
            "deep-learning-gpu",
            "deep-learning-gpu--cpu",
            "intro-ml",
            "vision-lab",
            "vision-lab--cpu",
        )
    )
}
GPU = GpuSettings(
    count=1,
    resource_name="nvidia.com/gpu",
    node_selector={"k8s.amazonaws.com/accelerator": "nvidia-tesla-t4"},
    tolerations=({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},),
)
PRODUCTION = LaunchSettings(allow_preview_tags=False, gpu=GPU)
PREVIEW = LaunchSettings(
    allow_preview_tags=True,
    preview_tags={"data-analytics": ("pr-42", "data-analytics-next")},
    gpu=GPU,
)
LOCAL = LaunchSettings()  # no GPUs, no previews


def local_hub_params_file(tmp_path: Path, **extra: Any) -> str:
    """What LocalHub writes for its hub process (params.json), for this catalog: the file."""
    settings = HubSettings(CATALOG, IMAGE_MAP, PRODUCTION, CullSettings())
    params = {
        "custom": settings_to_custom(settings),
        "instance": "abc",
        "port": 8000,
        "hub_port": 8081,
        "proxy_api_port": 8001,
        "proxy_token": "p" * 32,
        "api_token": "a" * 32,
        "db_url": f"sqlite:///{tmp_path}/db.sqlite",
        "state_dir": str(tmp_path),
        **extra,
    }
    path = tmp_path / "params.json"
    path.write_text(json.dumps(params))
    return str(path)
