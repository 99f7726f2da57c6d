"""The local hub's spawner: the production planning glue on DockerSpawner (local_hub/spawner.py),
as Docker's terms for each plan (image, limits and guarantees, GPUs, labels)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from jupyterhub.objects import Hub
from traitlets.config import Config

from hub.contract import COURSE_LABEL
from hub.launch import LaunchSettings
from hub.settings import CullSettings, HubSettings
from local_hub.spawner import CourseDockerSpawner
from tests.hub.hub_data import CATALOG, GPU, IMAGE_MAP, LOCAL
from tests.hub.kube import MockUser


def hub_settings(launch: LaunchSettings) -> HubSettings:
    return HubSettings(CATALOG, IMAGE_MAP, launch, CullSettings(kernel_idle_timeout=600))


def docker_spawner(launch: LaunchSettings, **docker: Any) -> CourseDockerSpawner:
    c = Config()
    c.CourseSpawner.hub_settings = hub_settings(launch)
    for name, value in docker.items():
        setattr(c.CourseDockerSpawner, name, value)
    return CourseDockerSpawner(hub=Hub(base_url="/hub/"), user=MockUser(), config=c)


def planned(spawner: CourseDockerSpawner) -> dict[str, Any]:
    """Every trait a plan sets on the Docker spawner, and the server's arguments."""
    return {
        "image": spawner.image,
        "mem_limit": spawner.mem_limit,
        "mem_guarantee": spawner.mem_guarantee,
        "cpu_limit": spawner.cpu_limit,
        "cpu_guarantee": spawner.cpu_guarantee,
        "default_url": spawner.default_url,
        "environment": {k: v for k, v in spawner.environment.items() if k == "OL_COURSE"},
        "extra_host_config": spawner.extra_host_config,
        "extra_create_kwargs": spawner.extra_create_kwargs,
        "kernel_culling": [a for a in spawner.get_args() if a.startswith("--")],
    }


KERNEL_CULLING = [
    "--MappingKernelManager.cull_idle_timeout=600",
    "--MappingKernelManager.cull_interval=120",
    "--MappingKernelManager.cull_connected=True",
    "--TerminalManager.cull_inactive_timeout=1200",
    "--TerminalManager.cull_interval=120",
]
#: The local hub's own container settings (local_hub/config.py): kept under every plan.
CONFIGURED = {
    "extra_host_config": {"pids_limit": 512},
    "extra_create_kwargs": {"labels": {"ol.hub": "test"}},
}


def expected(course: str, url: str = "/lab", gpus: int = 0) -> dict[str, Any]:
    resources = CATALOG[course].resources
    host: dict[str, Any] = {
        "pids_limit": 512,
        "mem_reservation": resources.memory_guarantee,
        "cpu_shares": int(1024 * resources.cpu_guarantee),
        "security_opt": ["no-new-privileges"],
    }
    if gpus:
        host["device_requests"] = [{"Driver": "", "Count": gpus, "Capabilities": [["gpu"]]}]
    return {
        "image": IMAGE_MAP[CATALOG[course].image_key(gpus > 0)],
        "mem_limit": resources.memory_limit,
        "mem_guarantee": resources.memory_guarantee,
        "cpu_limit": resources.cpu_limit,
        "cpu_guarantee": resources.cpu_guarantee,
        "default_url": url,
        "environment": {"OL_COURSE": course},
        "extra_host_config": host,
        "extra_create_kwargs": {"labels": {COURSE_LABEL: course, "ol.hub": "test"}},
        "kernel_culling": KERNEL_CULLING,
    }


@pytest.mark.parametrize(
    ("options", "launch", "want"),
    [
        pytest.param(
            {"course": "intro-ml", "notebook": "notebooks/My Notebook.ipynb"},
            LOCAL,
            expected("intro-ml", "/lab/tree/notebooks/My%20Notebook.ipynb"),
            id="cpu-course-with-notebook",
        ),
        pytest.param(
            {"course": "deep-learning-gpu"},
            LaunchSettings(gpu=GPU),
            expected("deep-learning-gpu", gpus=1),
            id="gpu-course-on-a-machine-with-gpus",
        ),
        pytest.param(
            {"course": "deep-learning-gpu"},
            LOCAL,
            expected("deep-learning-gpu"),
            id="gpu-course-without-gpus",
        ),
    ],
)
def test_the_whole_plan_in_dockers_terms(
    options: dict[str, str], launch: LaunchSettings, want: dict[str, Any]
) -> None:
    spawner = docker_spawner(launch, **CONFIGURED)
    spawner.user_options = options
    spawner.prepare_launch()
    assert planned(spawner) == want


def test_nothing_carries_over_between_spawns() -> None:
    spawner = docker_spawner(LaunchSettings(gpu=GPU), **CONFIGURED)
    for course, gpus in (("deep-learning-gpu", 1), ("data-analytics", 0), ("deep-learning-gpu", 1)):
        spawner.user_options = {"course": course}
        spawner.prepare_launch()
        assert planned(spawner) == expected(course, gpus=gpus)


def test_loopback_servers_listen_on_a_port_of_their_own() -> None:
    spawner = docker_spawner(LOCAL, loopback=True)
    spawner.port = 43210
    assert asyncio.run(spawner.get_ip_and_port()) == ("127.0.0.1", 43210)
