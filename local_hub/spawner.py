"""The local hub's spawner: the production `CourseSpawner` glue (hub/spawner.py) on DockerSpawner,
one container per learner on this machine's Docker engine.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dockerspawner import DockerSpawner
from jupyterhub.utils import random_port
from traitlets import Bool, Integer

from hub.contract import COURSE_LABEL
from hub.launch import LaunchPlan
from hub.spawner import CourseSpawner


def docker_host_config(plan: LaunchPlan) -> dict[str, Any]:
    """Docker's terms for a plan's guarantees and GPUs (limits are DockerSpawner's own traits):
    a memory reservation, CPU shares as Kubernetes derives them from a CPU request, a device
    request per GPU; and, as production's pods (allowPrivilegeEscalation: false), no process in
    the container may gain privileges (setuid binaries, file capabilities)."""
    host: dict[str, Any] = {
        "mem_reservation": plan.memory_guarantee,
        "cpu_shares": max(2, int(1024 * plan.cpu_guarantee)),
        "security_opt": ["no-new-privileges"],
    }
    if plan.gpu_count:
        host["device_requests"] = [
            {"Driver": "", "Count": plan.gpu_count, "Capabilities": [["gpu"]]}
        ]
    return host


class LoopbackDockerSpawner(DockerSpawner):
    """DockerSpawner with shared Docker API threads, that can also keep every connection on
    loopback.

    The local hub puts containers on the learners' own network (local_hub/processes.py). With
    `loopback` (a hub started without that network), containers share the host network and
    listen on 127.0.0.1 at a fresh port each start, so nothing needs a bridge or port bindings
    (configure `network_name = "host"`, `use_internal_ip = True`, `ip = "127.0.0.1"`). Also the
    launch benchmark's stock spawner.
    """

    loopback = Bool(
        False, help="Listen on 127.0.0.1 at a fresh port each start (host network)."
    ).tag(config=True)

    docker_threads = Integer(
        4,
        help="""Threads for Docker API calls, shared by all servers (DockerSpawner uses one, so
        20 launches at once queue behind each other's create/start/stop calls).""",
    ).tag(config=True)

    _thread_pool: ThreadPoolExecutor | None = None

    @property
    def executor(self) -> ThreadPoolExecutor:
        cls = LoopbackDockerSpawner
        if cls._thread_pool is None:
            cls._thread_pool = ThreadPoolExecutor(max(1, self.docker_threads))
        return cls._thread_pool

    async def start(self) -> Any:
        if self.loopback:
            self.port = random_port()
        return await super().start()

    # JupyterHub refuses a Spawner subclass that does not define start, stop and poll itself.
    async def stop(self, now: bool = False) -> Any:
        return await super().stop(now=now)

    async def poll(self) -> Any:
        return await super().poll()

    async def get_ip_and_port(self) -> tuple[str, int]:
        if self.loopback:
            return "127.0.0.1", self.port
        return await super().get_ip_and_port()


class CourseDockerSpawner(CourseSpawner, LoopbackDockerSpawner):
    """Local: one container per learner on the machine's Docker engine."""

    extra_host_config: dict[str, Any]
    extra_create_kwargs: dict[str, Any]

    planned_traits = CourseSpawner.planned_traits + ("extra_host_config", "extra_create_kwargs")

    def apply_plan(self, plan: LaunchPlan) -> None:
        self.image = plan.image
        self.extra_host_config = {**self.extra_host_config, **docker_host_config(plan)}
        create = dict(self.extra_create_kwargs)
        create["labels"] = {**create.get("labels", {}), COURSE_LABEL: plan.course}
        self.extra_create_kwargs = create
