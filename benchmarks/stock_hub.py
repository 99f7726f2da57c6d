"""The benchmarks' baseline: a local hub of stock JupyterHub parts (TmpAuthenticator and
DockerSpawner with the course's container configured) beside ours, on loopback like ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.cheap_spawner import STOCK_COURSE
from hub.launch import plan_launch
from hub.settings import HubSettings
from local_hub.config import configure_loopback, hub_settings, read_params
from local_hub.processes import LocalHub
from local_hub.spawner import docker_host_config


def configure_stock(c: Any, params_file: str) -> None:
    """jupyterhub_config.py of the baseline: stock TmpAuthenticator and DockerSpawner, configured
    with the container our launcher would start for the course (image, limits, guarantees), on
    loopback like ours."""
    params = read_params(params_file)
    settings = hub_settings(params)
    plan = plan_launch(
        {"course": params[STOCK_COURSE]}, settings.catalog, settings.image_map, settings.launch
    )
    c.JupyterHub.authenticator_class = "tmpauthenticator.TmpAuthenticator"
    c.Authenticator.allow_all = True
    c.JupyterHub.spawner_class = "local_hub.spawner.LoopbackDockerSpawner"
    c.DockerSpawner.image = plan.image
    c.DockerSpawner.mem_limit = plan.memory_limit
    c.DockerSpawner.cpu_limit = plan.cpu_limit
    c.DockerSpawner.extra_host_config = docker_host_config(plan)
    c.JupyterHub.authenticate_prometheus = False
    configure_loopback(c, params)


def stock_hub(settings: HubSettings, state_dir: Path, course: str, **kwargs: Any) -> LocalHub:
    """The baseline hub, launching `course`'s container with stock JupyterHub parts."""
    return LocalHub(
        settings,
        state_dir,
        configuration="benchmarks.stock_hub:configure_stock",
        params={STOCK_COURSE: course},
        **kwargs,
    )
