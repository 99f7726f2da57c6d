"""The local hub's spawner: the production `CourseSpawner` glue (hub/spawner.py) on DockerSpawner,
one container per learner on this machine's Docker engine.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
from dockerspawner import DockerSpawner
from jupyterhub.spawner import SpawnException
from jupyterhub.utils import random_port
from traitlets import Bool, Integer

from hub.contract import COURSE_LABEL, PERSON_LABEL
from hub.kept_work_page import StoredWork
from hub.launch import LaunchPlan
from hub.spawner import WORK_MOUNT, CourseSpawner, work_labels, work_sync_command
from local_hub.retention import volume_in_use

#: The learner in every course image (docker-stacks' jovyan, uid:gid).
LEARNER_OWNER = "1000:100"
#: Seconds the kept-work sync may take before the launch fails.
WORK_SYNC_TIMEOUT = 300


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
    """Local: one container per learner on the machine's Docker engine; with kept work, the
    person's Docker volume for the course over the home folder, brought up to date with the
    image by a container of that image first (as production's init container)."""

    volumes: dict[str, Any]

    extra_host_config: dict[str, Any]
    extra_create_kwargs: dict[str, Any]

    planned_traits = CourseSpawner.planned_traits + (
        "extra_host_config",
        "extra_create_kwargs",
        "volumes",
    )

    def apply_plan(self, plan: LaunchPlan) -> None:
        self.image = plan.image
        self.extra_host_config = {**self.extra_host_config, **docker_host_config(plan)}
        create = dict(self.extra_create_kwargs)
        create["labels"] = {**create.get("labels", {}), COURSE_LABEL: plan.course}
        self.extra_create_kwargs = create
        if plan.work is not None:
            self.volumes = {**self.volumes, plan.work.name: plan.work.mount_path}

    @classmethod
    def work_store(cls) -> DockerWorkStore:
        return DockerWorkStore()

    async def prepare_work(self, plan: LaunchPlan) -> None:
        work = plan.work
        if work is None:
            return
        await self.docker("create_volume", name=work.name, labels=work_labels(work))
        # Root in a container without network or capabilities beyond files': a new volume is
        # root's; the sync gives what it writes to the learner (the image's jovyan).
        host_config = self.client.create_host_config(
            binds={work.name: {"bind": WORK_MOUNT, "mode": "rw"}},
            network_mode="none",
            security_opt=["no-new-privileges"],
            cap_drop=["ALL"],
            cap_add=["CHOWN", "DAC_OVERRIDE", "FOWNER"],
        )
        created = await self.docker(
            "create_container",
            image=plan.image,
            command=work_sync_command(WORK_MOUNT, owner=LEARNER_OWNER),
            user="0",
            host_config=host_config,
            labels={**self.extra_create_kwargs.get("labels", {}), **work_labels(work)},
        )
        try:
            await self.docker("start", created["Id"])
            status = await self.docker("wait", created["Id"], timeout=WORK_SYNC_TIMEOUT)
            output = (await self.docker("logs", created["Id"])).decode(errors="replace")
        finally:
            await self.docker("remove_container", created["Id"], force=True)
        self.log.info("Kept work %s for %s: %s", work.name, self._log_name, output.strip())
        if status.get("StatusCode") != 0:
            raise SpawnException(
                f"Your saved work for this course could not be prepared: {output.strip()[-500:]}",
                reason="kept-work-sync",
                status_code=500,
            )


class DockerWorkStore:
    """People's kept-work volumes on this machine's Docker engine (labelled with their person)."""

    def __init__(self) -> None:
        self.client = docker.from_env()

    async def volumes(self, person: str) -> list[StoredWork]:
        def listed() -> list[StoredWork]:
            found = []
            for volume in self.client.volumes.list(filters={"label": f"{PERSON_LABEL}={person}"}):
                labels = volume.attrs.get("Labels") or {}
                in_use = volume_in_use(self.client, volume.name)
                found.append(StoredWork(volume.name, person, labels.get(COURSE_LABEL, ""), in_use))
            return found

        return await asyncio.get_running_loop().run_in_executor(None, listed)

    async def delete(self, name: str) -> None:
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.client.volumes.get(name).remove()
        )
