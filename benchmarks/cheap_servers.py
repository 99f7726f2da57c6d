"""Cheap learner servers for measuring the hub itself: one "server farm" process that serves every
learner's server, each on a 127.0.0.1 port of its own, so that hundreds of launches cost the
machine almost nothing outside the hub (`benchmarks.capacity`, `./pants run hub:bench-launch`).

Real, as jupyterhub-singleuser behaves towards the hub and the browser:

- each server is started from the environment JupyterHub's `Spawner.get_env()` gives it (API
  token, OAuth client id and callback URL, service prefix `/user/<name>/`, activity URL, default
  URL) and listens on its own port; before listening it asks the hub's API for its version;
- `<prefix>api` answers the hub's readiness check with JSON and `X-JupyterHub-Version`;
- a browser logs in with the real OAuth round trip with the hub, through JupyterHub's own
  `jupyterhub.services.auth` (`HubOAuth`: state cookie, PKCE, `/hub/api/oauth2/authorize`;
  `HubOAuthCallbackHandler`: the code exchanged for a token, the token checked against
  `/hub/api/user` and the server's access scopes, the cookie set);
- `<prefix>api/status` answers tokens that may access the server (the hub's admin token);
- activity reaches the hub's activity URL every `JUPYTERHUB_ACTIVITY_INTERVAL` (300 s) when
  there was some, as jupyterhub-singleuser posts it.

Cheap: no container, no process per learner, no Jupyter server. `<prefix>` redirects to the
default URL, and `<prefix>lab[/tree/<notebook>]` is a small page naming the course (`OL_COURSE`,
which `CourseSpawner` sets), the notebook, the user and the image the launch plan chose (never
pulled, never run); `read_page` reads those back. No kernels, contents or websockets.

The farm's control API, for `benchmarks.cheap_spawner.FarmSpawner` (127.0.0.1 only, header
`Authorization: token $OL_FARM_TOKEN`): `POST /servers` `{"env", "args", "image"}` -> 201
`{"id", "port"}`; `GET /servers/<id>` -> 200 or 404; `DELETE /servers/<id>` -> 204 or 404;
`GET /servers` -> `{"count"}`. A start of an image named by `--missing-image` answers 502, as a
registry without the tag fails the pod (a failed spawn for the dashboards' pictures).

    OL_FARM_TOKEN=... python -m benchmarks.cheap_servers --port 9000

This module imports only tornado, JupyterHub's service library and the names in hub/contract.py,
so the farm process stays small (a process per learner would cost at least that process's size each).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import html
import json
import logging
import os
import random
import re
import secrets
import signal
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from jupyterhub import __version__ as JUPYTERHUB_VERSION
from jupyterhub.httpclient import fetch
from jupyterhub.services.auth import (
    HubOAuth,
    HubOAuthCallbackHandler,
    HubOAuthenticated,
    UserNotAllowed,
)
from jupyterhub.utils import isoformat, url_path_join
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from hub.contract import COURSE_ENV

log = logging.getLogger("benchmarks.cheap_servers")

#: The control API's token (environment of the farm process).
FARM_TOKEN_ENV = "OL_FARM_TOKEN"
#: What `<prefix>api` says (jupyter_server says its own version there).
SERVER_VERSION = f"cheap-{JUPYTERHUB_VERSION}"
#: How a notebook page names what it shows: `data-<field>` attributes of its body.
PAGE_FIELDS = ("course", "notebook", "user", "image")


def now() -> datetime:
    return datetime.now(timezone.utc)


def notebook_page(fields: Mapping[str, str]) -> str:
    """The stand-in for JupyterLab's page: the course, notebook, user and image, as text and as
    `data-*` attributes of the body (see `read_page`)."""
    e = {name: html.escape(fields.get(name, ""), quote=True) for name in PAGE_FIELDS}
    attributes = " ".join(f'data-{name}="{e[name]}"' for name in PAGE_FIELDS)
    return (
        "<!doctype html>\n"
        f'<html><head><meta charset="utf-8"><title>{e["notebook"] or "JupyterLab"} - '
        f"{e['course']}</title></head>\n"
        f"<body {attributes}>\n"
        f"<h1>{e['course']}</h1>\n<p>Notebook: {e['notebook'] or '(home folder)'}</p>\n"
        f"<p>User: {e['user']}</p>\n"
        "<p>A cheap stand-in for JupyterLab (benchmarks.cheap_servers): no container runs; the launch "
        f"plan chose the image {e['image']}.</p>\n"
        "</body></html>\n"
    )


_PAGE_BODY = re.compile(r"<body\b([^>]*)>")
_ATTRIBUTE = re.compile(r'data-([a-z]+)="([^"]*)"')


def read_page(text: str) -> dict[str, str] | None:
    """The fields of a `notebook_page` (None: not such a page)."""
    body = _PAGE_BODY.search(text)
    if body is None:
        return None
    found = {name: html.unescape(value) for name, value in _ATTRIBUTE.findall(body.group(1))}
    if not all(name in found for name in PAGE_FIELDS):
        return None
    return {name: found[name] for name in PAGE_FIELDS}


def hub_oauth(env: Mapping[str, str]) -> HubOAuth:
    """JupyterHub's OAuth client for one server, from the environment its spawner gave it (the
    variables jupyterhub-singleuser reads; set explicitly: the farm's own environment has none)."""
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX") or "/"
    scopes = env.get("JUPYTERHUB_OAUTH_ACCESS_SCOPES") or env.get("JUPYTERHUB_OAUTH_SCOPES")
    return HubOAuth(
        api_token=env["JUPYTERHUB_API_TOKEN"],
        api_url=env["JUPYTERHUB_API_URL"],
        oauth_client_id=env["JUPYTERHUB_CLIENT_ID"],
        oauth_redirect_uri=env.get("JUPYTERHUB_OAUTH_CALLBACK_URL")
        or url_path_join(prefix, "oauth_callback"),
        base_url=prefix,
        hub_host=env.get("JUPYTERHUB_HOST", ""),
        hub_prefix=url_path_join(env.get("JUPYTERHUB_BASE_URL") or "/", "hub") + "/",
        access_scopes=set(json.loads(scopes)) if scopes else set(),
        cookie_options=json.loads(env.get("JUPYTERHUB_COOKIE_OPTIONS") or "{}"),
        cookie_host_prefix_enabled=env.get("JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED") == "1",
        keyfile="",
        certfile="",
        client_ca="",
    )


class LearnerServer:
    """One learner's server in the farm: its own port, prefix, OAuth client and activity."""

    def __init__(
        self, server_id: str, env: Mapping[str, str], args: Sequence[str] = (), image: str = ""
    ) -> None:
        self.id = server_id
        self.env = dict(env)
        self.args = list(args)
        self.image = image
        self.prefix = env.get("JUPYTERHUB_SERVICE_PREFIX") or "/"
        self.user = env.get("JUPYTERHUB_USER", "")
        self.server_name = env.get("JUPYTERHUB_SERVER_NAME", "")
        self.course = env.get(COURSE_ENV, "")
        self.default_url = env.get("JUPYTERHUB_DEFAULT_URL") or "/lab"
        self.auth = hub_oauth(env)
        self.started = now()
        self.last_activity: datetime | None = None
        self.port = 0
        self._activity_sent: datetime | None = None
        self._http: HTTPServer | None = None
        self._activity: asyncio.Task[None] | None = None

    def application(self) -> web.Application:
        prefix = re.escape(self.prefix)
        arguments = {"server": self}
        return web.Application(
            [
                (rf"{prefix}api/?", VersionHandler, arguments),
                (rf"{prefix}api/status/?", StatusHandler, arguments),
                (rf"{prefix}oauth_callback/?", OAuthCallbackHandler, arguments),
                (rf"{prefix}lab/?", NotebookPageHandler, arguments),
                (rf"{prefix}lab/tree/(.+)", NotebookPageHandler, arguments),
                (rf"{prefix}?", DefaultUrlHandler, arguments),
                (rf"{prefix}.*", NotFoundHandler, arguments),
            ],
            cookie_secret=secrets.token_bytes(32),
            # As jupyterhub-singleuser: HubOAuth checks XSRF itself where a request needs it.
            xsrf_cookies=False,
            log_function=lambda handler: None,
        )

    async def check_hub_version(self, attempts: int = 5) -> str | None:
        """What jupyterhub-singleuser does before it listens: GET the hub's API root."""
        for attempt in range(attempts):
            try:
                response = await fetch(self.auth.api_url, raise_for_status=False)
                await response.text()
                return response.headers.get("X-JupyterHub-Version")
            except Exception as error:  # noqa: BLE001 - retried, then reported
                if attempt == attempts - 1:
                    raise RuntimeError(f"the hub's API at {self.auth.api_url}: {error}") from None
                await asyncio.sleep(min(2**attempt, 8))
        return None

    async def start(self) -> None:
        await self.check_hub_version()
        sockets = bind_sockets(0, "127.0.0.1")
        self.port = int(sockets[0].getsockname()[1])
        self._http = HTTPServer(self.application())
        self._http.add_sockets(sockets)
        interval = int(self.env.get("JUPYTERHUB_ACTIVITY_INTERVAL") or 300)
        if self.env.get("JUPYTERHUB_ACTIVITY_URL") and interval > 0:
            self._activity = asyncio.ensure_future(self.keep_activity_updated(interval))

    async def stop(self) -> None:
        if self._activity is not None:
            self._activity.cancel()
        if self._http is not None:
            self._http.stop()
            await self._http.close_all_connections()

    def touch(self) -> None:
        self.last_activity = now()

    async def notify_activity(self) -> None:
        """POSTs the last activity to the hub (jupyterhub-singleuser's body), if there was any
        since the last report."""
        last = self.last_activity
        if last is None or (self._activity_sent is not None and last <= self._activity_sent):
            return
        stamp = isoformat(last)
        body = {"servers": {self.server_name: {"last_activity": stamp}}, "last_activity": stamp}
        try:
            response = await fetch(
                self.env["JUPYTERHUB_ACTIVITY_URL"],
                method="POST",
                headers={
                    "Authorization": f"token {self.auth.api_token}",
                    "Content-Type": "application/json",
                },
                data=json.dumps(body),
                raise_for_status=False,
            )
            await response.text()
        except Exception as error:  # noqa: BLE001 - as jupyterhub-singleuser: logged, retried
            log.error("%s: error notifying the hub of activity: %s", self.user, error)
            return
        if response.status < 400:
            self._activity_sent = last
        else:
            log.error("%s: the hub answered %s to activity", self.user, response.status)

    async def keep_activity_updated(self, interval: int) -> None:
        while True:
            await self.notify_activity()
            # jupyterhub-singleuser's 20 % jitter, so servers do not report in step.
            await asyncio.sleep(interval * (1 + 0.2 * (random.random() - 0.5)))

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "port": self.port,
            "user": self.user,
            "course": self.course,
            "image": self.image,
            "started": isoformat(self.started),
            "last_activity": isoformat(self.last_activity) if self.last_activity else None,
        }


# --- A learner server's handlers ----------------------------------------------------------


class ServerHandler(web.RequestHandler):
    """Headers jupyterhub-singleuser adds to every answer."""

    server: LearnerServer

    def initialize(self, server: LearnerServer) -> None:
        self.server = server

    def set_default_headers(self) -> None:
        self.set_header("X-JupyterHub-Version", JUPYTERHUB_VERSION)
        self.set_header("Content-Security-Policy", "frame-ancestors 'none'")


class VersionHandler(ServerHandler):
    """`<prefix>api`: the hub's readiness check (no authentication, as jupyter_server)."""

    def get(self) -> None:
        self.finish({"version": SERVER_VERSION})


class DefaultUrlHandler(ServerHandler):
    """`<prefix>`: to the default URL the spawner set (the course's notebook)."""

    def get(self) -> None:
        self.redirect(url_path_join(self.server.prefix, self.server.default_url))


class NotFoundHandler(ServerHandler):
    def prepare(self) -> None:
        raise web.HTTPError(404)


class AuthenticatedHandler(HubOAuthenticated, ServerHandler):
    """Identifies the user with the hub before every request (token header or OAuth cookie),
    asynchronously, and allows only users and services with the server's access scopes."""

    def initialize(self, server: LearnerServer) -> None:
        super().initialize(server)
        self.hub_auth = server.auth

    async def prepare(self) -> None:
        model = await self.hub_auth.get_user(self, sync=False)
        user = None
        if model:
            try:
                user = self.check_hub_user(model)
            except UserNotAllowed:
                kind = model.get("kind", "user")
                raise web.HTTPError(403, f"{kind} {model.get('name')} is not allowed") from None
        self.current_user = user


class StatusHandler(AuthenticatedHandler):
    """`<prefix>api/status`, for tokens with access to this server."""

    def get(self) -> None:
        if not self.current_user:
            raise web.HTTPError(403)
        server = self.server
        self.finish(
            {
                "started": isoformat(server.started),
                "last_activity": isoformat(server.last_activity or server.started),
                "connections": 0,
                "kernels": 0,
            }
        )


class NotebookPageHandler(AuthenticatedHandler):
    """`<prefix>lab[/tree/<notebook>]`: the course's notebook page; without the OAuth cookie,
    to the hub's OAuth authorization first (tornado's `authenticated` and HubOAuth's login
    URL, with its state cookie)."""

    @web.authenticated
    def get(self, notebook: str = "") -> None:
        server = self.server
        server.touch()
        fields = {
            "course": server.course,
            "notebook": notebook,
            "user": server.user,
            "image": server.image,
        }
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(notebook_page(fields))


class OAuthCallbackHandler(HubOAuthCallbackHandler, ServerHandler):
    """`<prefix>oauth_callback`: JupyterHub's own handler, with this server's OAuth client."""

    def initialize(self, server: LearnerServer) -> None:
        ServerHandler.initialize(self, server)
        self.hub_auth = server.auth


# --- The farm and its control API -----------------------------------------------------------


class MissingImage(RuntimeError):
    """A start of an image the farm was told is missing: the spawner reports it as a failed
    start, as a registry without the tag fails a pod's image pull."""


class Farm:
    """Every learner server of this process, by id; a start of one of `missing_images` fails."""

    def __init__(self, token: str, missing_images: Sequence[str] = ()) -> None:
        self.token = token
        self.missing_images = frozenset(missing_images)
        self.servers: dict[str, LearnerServer] = {}

    def application(self) -> web.Application:
        arguments = {"farm": self}
        return web.Application(
            [
                (r"/servers/?", ServersHandler, arguments),
                (r"/servers/([^/]+)", OneServerHandler, arguments),
            ],
            log_function=lambda handler: None,
        )

    async def start_server(
        self, env: Mapping[str, str], args: Sequence[str], image: str
    ) -> LearnerServer:
        if image in self.missing_images:
            raise MissingImage(f"image {image} not found")
        server = LearnerServer(secrets.token_hex(8), env, args, image)
        await server.start()
        self.servers[server.id] = server
        return server

    async def stop_all(self) -> None:
        servers, self.servers = list(self.servers.values()), {}
        await asyncio.gather(*(server.stop() for server in servers), return_exceptions=True)


class ControlHandler(web.RequestHandler):
    farm: Farm

    def initialize(self, farm: Farm) -> None:
        self.farm = farm

    def prepare(self) -> None:
        given = self.request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"token {self.farm.token}".encode()):
            raise web.HTTPError(403)


class ServersHandler(ControlHandler):
    def get(self) -> None:
        self.finish({"count": len(self.farm.servers)})

    async def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
            env = {str(k): str(v) for k, v in dict(body["env"]).items()}
            args = [str(a) for a in body.get("args", [])]
            image = str(body.get("image", ""))
        except (ValueError, KeyError, TypeError) as error:
            raise web.HTTPError(400, f"bad request: {error}") from None
        try:
            server = await self.farm.start_server(env, args, image)
        except Exception as error:  # noqa: BLE001 - the spawner reports it as a failed start
            self.set_status(502)
            self.finish({"error": f"{type(error).__name__}: {error}"})
            return
        self.set_status(201)
        self.finish({"id": server.id, "port": server.port})


class OneServerHandler(ControlHandler):
    def get(self, server_id: str) -> None:
        server = self.farm.servers.get(server_id)
        if server is None:
            raise web.HTTPError(404)
        self.finish(server.describe())

    async def delete(self, server_id: str) -> None:
        server = self.farm.servers.pop(server_id, None)
        if server is None:
            raise web.HTTPError(404)
        await server.stop()
        self.set_status(204)
        self.finish()


async def serve(port: int, token: str, missing_images: Sequence[str] = ()) -> None:
    farm = Farm(token, missing_images)
    control = HTTPServer(farm.application())
    control.listen(port, "127.0.0.1")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    log.warning("server farm listening on 127.0.0.1:%d", port)
    await stopping.wait()
    control.stop()
    await farm.stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cheap_servers", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--port", type=int, required=True, help="control API port (127.0.0.1)")
    parser.add_argument(
        "--missing-image",
        action="append",
        default=[],
        help="an image whose servers fail to start (a failed spawn), repeatable",
    )
    args = parser.parse_args(argv)
    token = os.environ.get(FARM_TOKEN_ENV)
    if not token:
        print(f"{FARM_TOKEN_ENV} is not set", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve(args.port, token, args.missing_image))
    return 0


if __name__ == "__main__":
    sys.exit(main())
