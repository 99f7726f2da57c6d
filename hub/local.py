"""The local hub: JupyterHub, its proxy and DockerSpawner on 127.0.0.1 with the course images.

    python -m hub.local            # or: ./pants run hub:local

builds the course images (`./pants package courses:: courses:image-map`), starts
configurable-http-proxy and JupyterHub (SQLite in a state directory, throwaway users, the idle
culler), prints the launch link of every notebook, and on Ctrl-C stops everything and removes
the containers it started. Every connection stays on loopback: containers use the host network
and listen on 127.0.0.1 (see `hub.spawner.LoopbackDockerSpawner`).

`LocalHub` is also what the end-to-end tests and the benchmark run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode, urlparse

import requests

from catalog import Catalog, find_repo_root, load_catalog
from hub.config import configure_hub
from hub.launch import LaunchSettings, plan_launch
from hub.settings import CullSettings, HubSettings, parse_custom, settings_to_custom
from hub.spawner import docker_host_config

IMAGE_REPOSITORY = "ol-course-notebooks"
# pants.toml [docker.registries.local]: the local-only name that carries the moving `:<slug>` tag.
MOVING_TAG_REGISTRY = "localhost"
IMAGE_MAP_PATHS = ("courses/image-map.json", "dist/courses/image-map.json")
BUILD_COMMAND = ("package", "courses::", "courses:image-map")
#: Scopes of the local hub's own API token (tests, benchmark, launch-link checks).
ADMIN_SCOPES = [
    "admin:users",
    "admin:servers",
    "access:servers",
    "list:users",
    "read:users",
    "read:servers",
    # /hub/metrics needs a token, locally as in production.
    "read:metrics",
]
ADMIN_SERVICE = "ol-local"


# --- Images ---------------------------------------------------------------------------------


def repo_root() -> Path:
    """The monorepo root, or the Pants sandbox holding the repo's files (the nearest folder with
    `courses/` at or above the working directory); else `MONOREPO_ROOT`."""
    try:
        return find_repo_root()
    except FileNotFoundError:
        if os.environ.get("MONOREPO_ROOT"):
            return Path(os.environ["MONOREPO_ROOT"])
        raise


def image_map_file(root: Path) -> Path | None:
    """The image map written by `./pants package courses:image-map`, if there is one.

    `HUB_IMAGE_MAP` names it explicitly; in a Pants test sandbox it is `courses/image-map.json`
    (a runtime package dependency), in a checkout `dist/courses/image-map.json`.
    """
    if os.environ.get("HUB_IMAGE_MAP"):
        return Path(os.environ["HUB_IMAGE_MAP"])
    for relative in IMAGE_MAP_PATHS:
        if (root / relative).is_file():
            return root / relative
    return None


def load_image_map(root: Path) -> dict[str, str]:
    path = image_map_file(root)
    if path is None or not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def docker_client() -> Any:
    import docker

    return docker.from_env()


def local_images(catalog: Catalog, image_map: Mapping[str, str], client: Any) -> dict[str, str]:
    """Course -> image reference for the courses whose image this Docker engine has.

    The image map's immutable reference when present, else the floating
    `localhost/ol-course-notebooks:<slug>` tag that local course builds also write.
    """
    references: set[str] = set()
    # slug -> (rank, reference): the local-only moving tag first, then the newest build.
    floating: dict[str, tuple[tuple[bool, str], str]] = {}
    for image in client.images.list():
        created = str(image.attrs.get("Created", ""))
        for reference in image.tags:
            references.add(reference)
            repository, _, tag = reference.rpartition(":")
            registry, _, name = repository.rpartition("/")
            if name == IMAGE_REPOSITORY:
                rank = (registry == MOVING_TAG_REGISTRY, created)
                if tag not in floating or floating[tag][0] < rank:
                    floating[tag] = (rank, reference)
    result = {}
    for slug in catalog.slugs:
        mapped = image_map.get(slug)
        if mapped and mapped in references:
            result[slug] = mapped
        elif slug in floating:
            result[slug] = floating[slug][1]
    return result


def build_images(root: Path) -> None:
    """Builds every course image and the image map with Pants (cached: fast when up to date)."""
    pants = [str(root / "pants")]
    # Under `./pants run hub:local` (a PEX) another Pants run is in progress: run beside it.
    if os.environ.get("PEX"):
        pants.append("--concurrent")
    command = [*pants, *BUILD_COMMAND]
    print("Building the course images:", " ".join(command), flush=True)
    subprocess.run(command, cwd=root, check=True, env=outside_this_pex())


def outside_this_pex() -> dict[str, str]:
    """This process's environment less what running as a PEX added to it (the PEX's venv first
    on PATH, PEX_* variables), so that a nested ./pants finds the user's own tools: the stand-in's
    torch wheels are fetched by the user's python3 and pip (images/base:torch-wheels)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PEX")}
    if sys.prefix != sys.base_prefix:  # a venv (the PEX's), never the system's own prefix
        paths = env.get("PATH", "").split(os.pathsep)
        env["PATH"] = os.pathsep.join(p for p in paths if not p.startswith(sys.prefix + os.sep))
    return env


# --- Processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_environment() -> dict[str, str]:
    """Environment for Python children (hub, culler): this process's import path included, so
    they work from a venv, a PEX or a Pants test sandbox alike."""
    env = dict(os.environ)
    # Absolute: the children run in other directories (a sandbox puts "." on sys.path).
    paths = [os.path.abspath(p) for p in sys.path if p and os.path.exists(p)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def _data_files_path() -> str:
    """JupyterHub's templates and static files (found next to the package, or on sys.path)."""
    from jupyterhub._data import DATA_FILES_PATH

    if DATA_FILES_PATH:
        return str(DATA_FILES_PATH)
    for entry in sys.path:
        for candidate in (
            Path(entry) / "share" / "jupyterhub",
            Path(entry).parent / "share" / "jupyterhub",
        ):
            if (candidate / "static" / "css").is_dir():
                return str(candidate)
    return ""


def _stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 20) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def configure_local(c: Any, params_file: str) -> None:
    """jupyterhub_config.py of the local hub: `LocalHub` writes the parameters as JSON."""
    params = json.loads(Path(params_file).read_text())
    settings = parse_custom(params["custom"], require_all_images=False)
    instance = params["instance"]
    if params.get("stock_course"):
        # The benchmark's baseline: stock TmpAuthenticator and DockerSpawner, configured with
        # the container our launcher would start for that course (image, limits, guarantees).
        plan = plan_launch(
            {"course": params["stock_course"]},
            settings.catalog,
            settings.image_map,
            settings.launch,
        )
        c.JupyterHub.authenticator_class = "tmpauthenticator.TmpAuthenticator"
        c.Authenticator.allow_all = True
        c.JupyterHub.spawner_class = "hub.spawner.LoopbackDockerSpawner"
        c.DockerSpawner.image = plan.image
        c.DockerSpawner.mem_limit = plan.memory_limit
        c.DockerSpawner.cpu_limit = plan.cpu_limit
        c.DockerSpawner.extra_host_config = docker_host_config(plan)
        c.JupyterHub.authenticate_prometheus = False
    else:
        configure_hub(c, settings, "hub.spawner.CourseDockerSpawner")
    hub_url = f"http://127.0.0.1:{params['hub_port']}"
    c.JupyterHub.bind_url = f"http://127.0.0.1:{params['port']}"
    c.JupyterHub.hub_bind_url = hub_url
    c.JupyterHub.db_url = params["db_url"]
    c.JupyterHub.upgrade_db = True
    c.JupyterHub.cookie_secret_file = str(Path(params["state_dir"]) / "jupyterhub_cookie_secret")
    c.JupyterHub.log_level = params.get("log_level", "INFO")
    # Servers outlive the hub process (restarts); `LocalHub.stop` removes the containers.
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = False
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{params['proxy_api_port']}"
    c.ConfigurableHTTPProxy.auth_token = params["proxy_token"]
    if params.get("data_files_path"):
        c.JupyterHub.data_files_path = params["data_files_path"]

    c.LoopbackDockerSpawner.loopback = True
    c.DockerSpawner.network_name = "host"
    c.DockerSpawner.use_internal_ip = True
    c.DockerSpawner.remove = True
    c.DockerSpawner.prefix = f"olhub-{instance}"
    c.DockerSpawner.extra_create_kwargs = {"labels": {"ol.hub": instance}}
    c.DockerSpawner.pull_policy = "ifnotpresent"
    # The hub's own environment (PYTHONPATH, PATH) has no business inside the containers.
    c.DockerSpawner.env_keep = []
    c.Spawner.ip = "127.0.0.1"
    c.Spawner.hub_connect_url = hub_url
    c.Spawner.start_timeout = params.get("start_timeout", 180)
    c.Spawner.http_timeout = params.get("start_timeout", 180)

    services = list(c.JupyterHub.get("services", []))
    roles = list(c.JupyterHub.get("load_roles", []))
    services.append({"name": ADMIN_SERVICE, "api_token": params["api_token"]})
    roles.append({"name": ADMIN_SERVICE, "scopes": ADMIN_SCOPES, "services": [ADMIN_SERVICE]})
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles


class LocalHubError(RuntimeError):
    pass


@dataclass
class Launch:
    """One launch through `/tmplogin`: the throwaway user's name and the HTTP session."""

    user: str
    session: requests.Session
    response: requests.Response


class LocalHub:
    """JupyterHub + configurable-http-proxy on loopback, spawning Docker containers.

    Use as a context manager (or `start()`/`stop()`); `stop()` also removes every container this
    hub started (they carry the label `ol.hub=<instance>`).
    """

    def __init__(
        self,
        settings: HubSettings,
        state_dir: Path,
        *,
        port: int = 0,
        db_url: str | None = None,
        stock_course: str | None = None,
        log_level: str = "INFO",
        start_timeout: int = 180,
        echo_logs: bool = False,
    ) -> None:
        self.settings = settings
        self.state_dir = Path(state_dir).resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.hub_port = free_port()
        self.proxy_api_port = free_port()
        self.db_url = db_url or f"sqlite:///{self.state_dir / 'jupyterhub.sqlite'}"
        self.instance = secrets.token_hex(4)
        self.api_token = secrets.token_hex(24)
        self.proxy_token = secrets.token_hex(24)
        self.stock_course = stock_course
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.echo_logs = echo_logs
        self.hub_log = self.state_dir / "jupyterhub.log"
        self.proxy_log = self.state_dir / "proxy.log"
        self.proxy: subprocess.Popen[bytes] | None = None
        self.hub: subprocess.Popen[bytes] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LocalHub:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self.start_proxy()
            self.start_hub()
        except BaseException:
            self.stop()
            raise

    def start_proxy(self) -> None:
        executable = shutil.which("configurable-http-proxy")
        if executable is None:
            raise LocalHubError(
                "configurable-http-proxy is not on PATH: npm install -g configurable-http-proxy"
            )
        hub = f"http://127.0.0.1:{self.hub_port}"
        command = [
            executable,
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--api-ip=127.0.0.1",
            f"--api-port={self.proxy_api_port}",
            f"--default-target={hub}",
            f"--error-target={hub}/hub/error",
            "--log-level=warn",
        ]
        env = {**os.environ, "CONFIGPROXY_AUTH_TOKEN": self.proxy_token}
        with open(self.proxy_log, "ab") as log:
            self.proxy = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait(
            lambda: _port_open(self.proxy_api_port), 30, "the proxy", self.proxy, self.proxy_log
        )

    def _write_config(self) -> Path:
        params = {
            "custom": settings_to_custom(self.settings),
            "instance": self.instance,
            "port": self.port,
            "hub_port": self.hub_port,
            "proxy_api_port": self.proxy_api_port,
            "proxy_token": self.proxy_token,
            "api_token": self.api_token,
            "db_url": self.db_url,
            "state_dir": str(self.state_dir),
            "stock_course": self.stock_course,
            "log_level": self.log_level,
            "start_timeout": self.start_timeout,
            "data_files_path": _data_files_path(),
        }
        params_file = self.state_dir / "hub-params.json"
        params_file.write_text(json.dumps(params, indent=1))
        params_file.chmod(0o600)
        config = self.state_dir / "jupyterhub_config.py"
        config.write_text(
            "# Written by hub.local.LocalHub; the parameters are in hub-params.json.\n"
            "from hub.local import configure_local\n\n"
            f"configure_local(c, {str(params_file)!r})  # noqa: F821\n"
        )
        return config

    def start_hub(self) -> None:
        if self.hub is not None and self.hub.poll() is None:
            raise LocalHubError("the hub is already running")
        config = self._write_config()
        command = [sys.executable, "-m", "jupyterhub", "-f", str(config)]
        output: Any = None if self.echo_logs else open(self.hub_log, "ab")
        try:
            self.hub = subprocess.Popen(
                command,
                cwd=self.state_dir,
                env=child_environment(),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if output is not None:
                output.close()
        self._wait(self._hub_answers, 90, "JupyterHub", self.hub, self.hub_log)

    def _hub_answers(self) -> bool:
        try:
            return requests.get(f"{self.url}/hub/api/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def _wait(self, ready: Any, timeout: float, what: str, process: Any, log: Path) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise LocalHubError(f"{what} exited ({process.returncode}):\n{_tail(log)}")
            if ready():
                return
            time.sleep(0.2)
        raise LocalHubError(f"{what} did not start in {timeout:.0f}s:\n{_tail(log)}")

    def stop_hub(self) -> None:
        _stop_process(self.hub)

    def restart_hub(self) -> None:
        self.stop_hub()
        self.start_hub()

    def stop(self) -> None:
        """Stops the hub and the proxy and removes this hub's containers."""
        try:
            self.stop_hub()
        finally:
            try:
                _stop_process(self.proxy)
            finally:
                self.remove_containers()

    def containers(self, all: bool = True) -> list[Any]:
        try:
            client = docker_client()
            return list(
                client.containers.list(all=all, filters={"label": f"ol.hub={self.instance}"})
            )
        except Exception:  # noqa: BLE001 - no Docker: nothing to list
            return []

    def remove_containers(self) -> None:
        for container in self.containers():
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - already gone
                pass

    def log_tail(self, lines: int = 60) -> str:
        return _tail(self.hub_log, lines)

    # --- using it ----------------------------------------------------------------------------

    def link(self, course: str, notebook: str | None = None, **extra: str) -> str:
        """The launch link, as published: `/tmplogin?course=...&notebook=...`."""
        arguments = {"course": course, **({"notebook": notebook} if notebook else {}), **extra}
        return f"{self.url}/tmplogin?{urlencode(arguments, quote_via=quote)}"

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"token {self.api_token}", **kwargs.pop("headers", {})}
        return requests.request(
            method, f"{self.url}/hub/api{path}", headers=headers, timeout=30, **kwargs
        )

    def launch(self, url: str) -> Launch:
        """Opens a launch link like a browser without JavaScript; returns the new user."""
        session = requests.Session()
        response = session.get(url, timeout=60)
        user = user_from_url(response.url)
        if user is None:
            raise LocalHubError(
                f"{url} ended at {response.url} ({response.status_code}), not at a user's server"
            )
        return Launch(user, session, response)

    def server(self, user: str) -> dict[str, Any] | None:
        response = self.api("GET", f"/users/{quote(user, safe='')}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        servers = response.json().get("servers", {})
        return servers.get("")  # type: ignore[no-any-return]

    def wait_ready(self, user: str, timeout: float = 180, interval: float = 0.25) -> dict[str, Any]:
        """Waits until the user's server is ready (the hub's view), then checks it answers."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            server = self.server(user)
            if server and server.get("ready") and self.server_answers(user):
                return server
            active = server is not None and (server.get("pending") or server.get("ready"))
            if not active and time.monotonic() - started > 10:
                raise LocalHubError(f"{user}'s server did not start:\n{self.log_tail()}")
            time.sleep(interval)
        raise LocalHubError(f"{user}'s server not ready in {timeout:.0f}s:\n{self.log_tail()}")

    def server_answers(self, user: str) -> bool:
        """The user's server answers through the proxy (with the hub's admin token)."""
        try:
            response = requests.get(
                f"{self.url}/user/{quote(user, safe='')}/api/status",
                headers={"Authorization": f"token {self.api_token}"},
                timeout=10,
            )
        except requests.RequestException:
            return False
        return response.status_code == 200

    def delete_user(self, user: str) -> None:
        """Stops the user's server and deletes the user (waits for the stop)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            response = self.api("DELETE", f"/users/{quote(user, safe='')}")
            if response.status_code in (204, 404):
                return
            time.sleep(0.5)  # 400 while a spawn or stop is pending
        raise LocalHubError(f"could not delete {user}: {response.status_code} {response.text}")


def user_from_url(url: str) -> str | None:
    """The user name in a hub URL (`/hub/spawn-pending/<name>`, `/user/<name>/...`)."""
    path = urlparse(url).path
    match = re.search(r"/(?:hub/spawn-pending|user)/([^/]+)", path)
    return match.group(1) if match else None


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def launch_links(
    hub_url: str, catalog: Catalog, images: Mapping[str, str]
) -> Iterator[tuple[str, str, str]]:
    """(course, notebook, link) for every notebook of every course that has an image."""
    for course in catalog:
        if course.slug not in images:
            continue
        for notebook in course.notebooks:
            query = urlencode({"course": course.slug, "notebook": notebook}, quote_via=quote)
            yield course.slug, notebook, f"{hub_url}/tmplogin?{query}"


# --- Command line ---------------------------------------------------------------------------


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    defaults = CullSettings()
    parser = argparse.ArgumentParser(
        prog="python -m hub.local", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--port", type=int, default=8000, help="public port on 127.0.0.1")
    parser.add_argument("--state-dir", type=Path, help="database, logs (default: a temp dir)")
    parser.add_argument("--db-url", help="hub database (default: SQLite in the state dir)")
    parser.add_argument(
        "--no-build", action="store_true", help="use the images Docker has; do not run Pants"
    )
    parser.add_argument("--idle-timeout", type=int, default=defaults.idle_timeout)
    parser.add_argument("--max-age", type=int, default=defaults.max_age)
    parser.add_argument("--cull-every", type=int, default=defaults.every)
    parser.add_argument("--kernel-idle-timeout", type=int, default=defaults.kernel_idle_timeout)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--echo-logs", action="store_true", help="hub logs to the terminal")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    root = repo_root()
    if not args.no_build:
        build_images(root)
    catalog = load_catalog(root)
    images = local_images(catalog, load_image_map(root), docker_client())
    missing = [slug for slug in catalog.slugs if slug not in images]
    if not images:
        print(
            "No course image found in Docker; build them: ./pants package courses::",
            file=sys.stderr,
        )
        return 1
    culling = replace(
        CullSettings(),
        idle_timeout=args.idle_timeout,
        max_age=args.max_age,
        every=args.cull_every,
        kernel_idle_timeout=args.kernel_idle_timeout,
    )
    settings = HubSettings(
        catalog=catalog, image_map=images, launch=LaunchSettings(), culling=culling
    )
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="ol-local-hub-"))
    hub = LocalHub(
        settings,
        state_dir,
        port=args.port,
        db_url=args.db_url,
        log_level=args.log_level,
        echo_logs=args.echo_logs,
    )
    stop = {"now": False}

    def request_stop(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, request_stop)
    try:
        hub.start()
        print(f"\nLocal hub: {hub.url}   (state and logs: {state_dir})\n")
        for slug, notebook, link in launch_links(hub.url, catalog, images):
            print(f"  {slug:24} {notebook}\n    {link}")
        if missing:
            print(f"\nNo image for: {', '.join(missing)} (their links show the course list).")
        print(
            f"\nMetrics: {hub.url}/hub/metrics   Ctrl-C stops the hub and removes its containers."
        )
        sys.stdout.flush()
        while not stop["now"]:
            if hub.hub is not None and hub.hub.poll() is not None:
                print(f"JupyterHub exited:\n{hub.log_tail()}", file=sys.stderr)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C must not leave containers behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\nStopping the hub and removing its containers...", flush=True)
        hub.stop()
        print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
