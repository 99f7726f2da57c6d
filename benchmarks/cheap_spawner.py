"""Spawners that start cheap learner servers in a server farm (`benchmarks.cheap_servers`) instead of
containers, and the jupyterhub_config functions of the two hubs the capacity scenario compares.

- `FarmSpawner`: the platform part, as DockerSpawner or KubeSpawner would be: `start()` sends
  JupyterHub's own environment for the server (`Spawner.get_env()`: API token, OAuth client,
  prefix, default URL, `OL_COURSE`...) and arguments to the farm, which listens on a fresh
  127.0.0.1 port and returns it; `poll()` and `stop()` ask the farm; the farm's server id is the
  spawner's state (kept across hub restarts). Nothing is pulled or run: `image` is only recorded.
- `CourseFarmSpawner`: ours, `CourseSpawner` (the launch planning, error pages, clean state of
  production's `CourseKubeSpawner`) on `FarmSpawner`, as `CourseDockerSpawner` is on Docker.

`configure_cheap` is the hub configuration production shares (`hub.config.configure_hub`:
CourseSpawner, limits, the culler service; our TmpAuthenticator where production has the SSO
gate) on loopback (`local_hub.config`) with
`CourseFarmSpawner`; `configure_cheap_stock` is the baseline: stock TmpAuthenticator and the
plain `FarmSpawner` with the course fixed, as `benchmarks.stock_hub.configure_stock` fixes the image.
`LocalHub(..., configuration="benchmarks.cheap_spawner:configure_cheap", params=farm_params(...))`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jupyterhub.httpclient import fetch
from jupyterhub.spawner import Spawner
from jupyterhub.utils import url_path_join
from traitlets import Unicode

from hub.config import configure_hub
from hub.contract import COURSE_ENV
from hub.launch import LaunchPlan, plan_launch
from hub.spawner import CourseSpawner
from local_hub.config import configure_loopback, hub_settings, read_params

#: Parameters (hub-params.json) of the hubs configured here.
FARM_URL = "farm_url"
FARM_TOKEN = "farm_token"
STOCK_COURSE = "stock_course"
STOCK_NOTEBOOK = "stock_notebook"
#: JupyterHub traits (`c.JupyterHub.<name>`) the scenario sets alike on both hubs.
HUB_TRAITS = "hub_traits"


class FarmError(RuntimeError):
    pass


class FarmSpawner(Spawner):
    """Starts the learner's server in the server farm (`benchmarks.cheap_servers`) on 127.0.0.1."""

    farm_url = Unicode("", help="The server farm's control API, http://127.0.0.1:<port>/").tag(
        config=True
    )
    farm_token = Unicode("", help="The server farm's control API token.").tag(config=True)
    image = Unicode(
        "", help="The image a real spawner would run: recorded and shown, never pulled or run."
    ).tag(config=True)

    #: The farm's id of this spawner's server ("" when none).
    farm_server = Unicode("")

    async def _farm(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = await fetch(
            url_path_join(self.farm_url, path),
            method=method,
            headers={
                "Authorization": f"token {self.farm_token}",
                "Content-Type": "application/json",
            },
            data=None if body is None else json.dumps(body),
            raise_for_status=False,
        )
        text = await response.text()
        return int(response.status), json.loads(text) if text else None

    def load_state(self, state: Mapping[str, Any]) -> None:
        super().load_state(state)
        self.farm_server = str(state.get("farm_server", ""))

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()
        if self.farm_server:
            state["farm_server"] = self.farm_server
        return state

    def clear_state(self) -> None:
        super().clear_state()
        self.farm_server = ""

    async def start(self) -> tuple[str, int]:
        body = {"env": self.get_env(), "args": self.get_args(), "image": self.image}
        status, reply = await self._farm("POST", "servers", body)
        if status != 201 or not isinstance(reply, dict):
            raise FarmError(f"the server farm answered {status}: {reply}")
        self.farm_server = str(reply["id"])
        return "127.0.0.1", int(reply["port"])

    async def poll(self) -> int | None:
        if not self.farm_server:
            return 0
        try:
            status, _ = await self._farm("GET", f"servers/{self.farm_server}")
        except Exception:  # noqa: BLE001 - the farm is gone, and its servers with it
            return 1
        return None if status == 200 else 0

    async def stop(self, now: bool = False) -> None:
        if self.farm_server:
            status, reply = await self._farm("DELETE", f"servers/{self.farm_server}")
            if status not in (204, 404):
                raise FarmError(f"the server farm answered {status} to a stop: {reply}")
            self.farm_server = ""


class CourseFarmSpawner(CourseSpawner, FarmSpawner):
    """Ours with cheap servers: the course launcher's planning, the farm's server."""

    def apply_plan(self, plan: LaunchPlan) -> None:
        self.image = plan.image


def farm_params(farm_url: str, farm_token: str, **extra: Any) -> dict[str, Any]:
    """`LocalHub(params=...)` for the configurations below."""
    return {FARM_URL: farm_url, FARM_TOKEN: farm_token, **extra}


def configure_farm(c: Any, params: dict[str, Any]) -> None:
    """The farm's address, and what both hubs of the scenario set alike."""
    c.FarmSpawner.farm_url = params[FARM_URL]
    c.FarmSpawner.farm_token = params[FARM_TOKEN]
    # The hub's own environment (PYTHONPATH, PATH) has no business in a learner's server.
    c.FarmSpawner.env_keep = []
    for name, value in dict(params.get(HUB_TRAITS) or {}).items():
        setattr(c.JupyterHub, name, value)


def configure_cheap(c: Any, params_file: str) -> None:
    """jupyterhub_config.py of ours: the shared hub configuration, cheap servers."""
    params = read_params(params_file)
    configure_hub(c, hub_settings(params), "benchmarks.cheap_spawner.CourseFarmSpawner")
    configure_loopback(c, params)
    configure_farm(c, params)


def configure_cheap_stock(c: Any, params_file: str) -> None:
    """jupyterhub_config.py of the baseline: stock TmpAuthenticator and the plain FarmSpawner
    with the course (and its notebook) fixed, on loopback like ours."""
    params = read_params(params_file)
    settings = hub_settings(params)
    query = {"course": params[STOCK_COURSE]}
    if params.get(STOCK_NOTEBOOK):
        query["notebook"] = params[STOCK_NOTEBOOK]
    plan = plan_launch(query, settings.catalog, settings.image_map, settings.launch)
    c.JupyterHub.authenticator_class = "tmpauthenticator.TmpAuthenticator"
    c.Authenticator.allow_all = True
    c.JupyterHub.spawner_class = "benchmarks.cheap_spawner.FarmSpawner"
    c.FarmSpawner.image = plan.image
    c.Spawner.default_url = plan.url
    c.Spawner.environment = {COURSE_ENV: plan.course}
    c.JupyterHub.authenticate_prometheus = False
    configure_loopback(c, params)
    configure_farm(c, params)
