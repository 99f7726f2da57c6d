"""The local hub's spawner: the production planning glue on DockerSpawner (local_hub/spawner.py),
as Docker's terms for each plan (image, limits and guarantees, GPUs, labels)."""

from __future__ import annotations

import asyncio
from typing import Any

from jupyterhub.objects import Hub
from traitlets.config import Config

from hub.launch import LaunchSettings
from hub.settings import CullSettings, HubSettings
from hub.spawner import COURSE_LABEL
from local_hub.spawner import CourseDockerSpawner
from tests.hub.hub_data import CATALOG, GPU, IMAGE_MAP, LOCAL, GiB
from tests.hub.kube import MockUser


def hub_settings(launch: LaunchSettings) -> HubSettings:
    return HubSettings(CATALOG, IMAGE_MAP, launch, CullSettings(kernel_idle_timeout=600))


def docker_spawner(launch: LaunchSettings, **docker: Any) -> CourseDockerSpawner:
    c = Config()
    c.CourseSpawner.hub_settings = hub_settings(launch)
    for name, value in docker.items():
        setattr(c.CourseDockerSpawner, name, value)
    return CourseDockerSpawner(hub=Hub(base_url="/hub/"), user=MockUser(), config=c)


def test_docker_cpu_course() -> None:
    spawner = docker_spawner(
        LOCAL,
        loopback=True,
        extra_host_config={"pids_limit": 512},
        extra_create_kwargs={"labels": {"ol.hub": "test"}},
    )
    spawner.user_options = {"course": "intro-ml", "notebook": "notebooks/My Notebook.ipynb"}
    spawner.prepare_launch()
    assert spawner.image == IMAGE_MAP["intro-ml"]
    assert spawner.mem_limit == 3 * GiB
    assert spawner.cpu_limit == 2.0
    assert spawner.default_url == "/lab/tree/notebooks/My%20Notebook.ipynb"
    assert spawner.extra_host_config == {
        "pids_limit": 512,
        "mem_reservation": 3 * GiB // 2,
        "cpu_shares": 512,
        "security_opt": ["no-new-privileges"],
    }
    assert spawner.extra_create_kwargs["labels"] == {COURSE_LABEL: "intro-ml", "ol.hub": "test"}
    spawner.port = 43210
    assert asyncio.run(spawner.get_ip_and_port()) == ("127.0.0.1", 43210)
    assert "--MappingKernelManager.cull_idle_timeout=600" in spawner.get_args()


def test_docker_gpu_then_cpu() -> None:
    spawner = docker_spawner(LaunchSettings(gpu=GPU))
    spawner.user_options = {"course": "deep-learning-gpu"}
    spawner.prepare_launch()
    assert spawner.extra_host_config["device_requests"] == [
        {"Driver": "", "Count": 1, "Capabilities": [["gpu"]]}
    ]
    spawner.user_options = {"course": "data-analytics"}
    spawner.prepare_launch()
    assert "device_requests" not in spawner.extra_host_config
    assert spawner.image == IMAGE_MAP["data-analytics"] and spawner.mem_limit == 1 * GiB
