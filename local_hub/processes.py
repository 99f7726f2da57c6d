"""The local hub's processes: configurable-http-proxy and JupyterHub, spawning Docker containers
on a network of their own; started, watched and stopped, containers and network removed.

People and tests reach the hub at the proxy's public port on 127.0.0.1. Learner containers are
on the hub's own bridge network (`olhub-<instance>`): JupyterHub listens for them on that
network's gateway address, its only address they can reach, as production's pods reach the hub
at its service port and nothing else of the cluster. The proxy's API and everything else on the
host's loopback stay out of their reach, and so do the other learners' containers (no
inter-container traffic on it); firewall rules (`local_hub.firewall`, as root) keep them off
every other port of this machine and every private address, as production's NetworkPolicy does,
while they reach the internet, as production's pods do. `learner_network=False` keeps the servers on the host network
instead (for servers that are not containers).

`LocalHub` is what `./pants run hub:local`, the launch benchmark and the end-to-end tests run;
it is also a `HubClient` of itself.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import requests

from hub.settings import HubSettings, settings_to_custom
from hub.sso import identity_key
from local_hub import firewall
from local_hub.client import HubClient, HubError
from local_hub.config import COOKIE_SECRET_FILE, INSTANCE_LABEL, NAME_PREFIX, OWNER_LABEL
from local_hub.images import docker_client
from local_hub.retention import RetentionLoop, default_store

#: The jupyterhub_config.py function that configures the local hub (`module:function`).
LOCAL_CONFIGURATION = "local_hub.config:configure_local"


class LocalHubError(HubError):
    pass


class Started:
    """Context manager for what `start()`s and `stop()`s local processes: `with X(...) as x`
    starts it, and leaving, or a start that fails halfway, stops whatever had started."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_S = TypeVar("_S", bound=Started)


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


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 20) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def owner() -> str:
    """This process, as the owner label of what a local hub makes in Docker."""
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def orphaned(labels: Mapping[str, str], host: str, alive: Callable[[int], bool]) -> bool:
    """Whether a container or network a local hub made outlived the process that owned it
    (on this host: a process of another host is not ours to judge)."""
    owner_host, _, pid = labels.get(OWNER_LABEL, "").rpartition(":")
    return owner_host == host and pid.isdigit() and not alive(int(pid))


def remove_orphans(client: Any) -> list[str]:
    """Removes the containers, then the networks, of local hubs whose process is gone: a hub
    killed before it could clean up (SIGKILL, a supervisor's stop of its process group). Returns
    their names."""
    host, removed = socket.gethostname(), []
    for container in client.containers.list(all=True, filters={"label": OWNER_LABEL}):
        if orphaned(container.labels, host, pid_alive):
            try:
                container.remove(force=True)
                removed.append(container.name)
            except Exception:  # noqa: BLE001 - gone meanwhile
                pass
    for network in client.networks.list(filters={"label": OWNER_LABEL}):
        if orphaned(network.attrs.get("Labels") or {}, host, pid_alive):
            try:
                network.remove()
                removed.append(network.name)
            except Exception:  # noqa: BLE001 - gone meanwhile, or a container still on it
                pass
    return removed


def remove_stale_rules(client: Any) -> list[str]:
    """Removes the firewall rules of local hubs' networks that are gone (local_hub.firewall);
    returns what it removed. A hub makes its network before its rules, so a running hub's are
    never taken for stale."""
    present = {network.name for network in client.networks.list()}
    stale = firewall.rule_tags(firewall.tagged_rules(firewall.listing())) - present
    firewall.unguard(stale)
    return [f"the firewall rules of {tag}" for tag in sorted(stale)]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def tail_of(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


class LocalHub(HubClient, Started):
    """JupyterHub + configurable-http-proxy on loopback, spawning Docker containers.

    Use as a context manager (or `start()`/`stop()`); `stop()` also removes every container this
    hub started (they carry the label `ol.hub=<instance>`). `configuration` names the
    jupyterhub_config.py function (`module:function`, called with `c` and the parameters file),
    `params` adds to the parameters it reads.
    """

    def __init__(
        self,
        settings: HubSettings,
        state_dir: Path,
        *,
        port: int = 0,
        db_url: str | None = None,
        log_level: str = "INFO",
        start_timeout: int = 180,
        echo_logs: bool = False,
        configuration: str = LOCAL_CONFIGURATION,
        params: Mapping[str, Any] | None = None,
        sso_client_secret: str | None = None,
        learner_network: bool = True,
        subdomains: bool = False,
        kept_work_store: Path | None = None,
        proxy_metrics: bool = False,
    ) -> None:
        self.port = port or free_port()
        #: configurable-http-proxy's Prometheus metrics on 127.0.0.1 (`/metrics`); 0: none.
        self.proxy_metrics_port = free_port() if proxy_metrics else 0
        #: Learners' servers on `<user>.localhost` (JupyterHub's subdomain_host), as production's
        #: on `<user>.<domain>`; the hub is then `localhost`, which browsers and the system
        #: resolve to this machine (Chromium resolves every `*.localhost` itself).
        self.subdomains = subdomains
        host = "localhost" if subdomains else "127.0.0.1"
        super().__init__(f"http://{host}:{self.port}", secrets.token_hex(24))
        self.settings = settings
        self.state_dir = Path(state_dir).resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.hub_port = free_port()
        self.proxy_api_port = free_port()
        self.db_url = db_url or f"sqlite:///{self.state_dir / 'jupyterhub.sqlite'}"
        self.instance = secrets.token_hex(4)
        self.proxy_token = secrets.token_hex(24)
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.echo_logs = echo_logs
        self.configuration = configuration
        self.extra_params = dict(params or {})
        self.sso_client_secret = sso_client_secret
        self.learner_network = learner_network
        self.network: Any = None
        #: Whether the network's firewall rules are in place (local_hub.firewall).
        self.network_guarded = False
        #: Where JupyterHub listens: the learner network's gateway, else loopback.
        self.hub_ip = "127.0.0.1"
        self.hub_log = self.state_dir / "jupyterhub.log"
        self.proxy_log = self.state_dir / "proxy.log"
        self.proxy: subprocess.Popen[bytes] | None = None
        self.hub: subprocess.Popen[bytes] | None = None
        #: Where kept work's retention records each volume's last use (local_hub.retention).
        self.kept_work_store = kept_work_store or default_store()
        self.retention: RetentionLoop | None = None

    @property
    def network_name(self) -> str:
        return f"{NAME_PREFIX}{self.instance}"

    def start(self) -> None:
        try:
            self.remove_orphans()
            if self.learner_network:
                self.create_network()
            self.start_proxy()
            self.start_hub()
            self.start_retention()
        except BaseException:
            self.stop()
            raise

    def start_retention(self) -> None:
        """Kept work's retention on the culler's schedule, where this hub keeps work."""
        days = self.settings.launch.kept_work.days
        if days > 0:
            self.retention = RetentionLoop(
                docker_client(),
                days,
                self.settings.culling.every,
                self.kept_work_store,
                lambda line: print(line, file=sys.stderr, flush=True),
            )
            self.retention.start()

    def create_network(self) -> None:
        """The learners' bridge network; JupyterHub will listen on its gateway address."""
        client = docker_client()
        # No traffic between containers on it: one learner's server is not another's business.
        self.network = client.networks.create(
            self.network_name,
            driver="bridge",
            labels={INSTANCE_LABEL: self.instance, OWNER_LABEL: owner()},
            options={"com.docker.network.bridge.enable_icc": "false"},
        )
        self.network.reload()
        self.hub_ip = self.network.attrs["IPAM"]["Config"][0]["Gateway"]
        # Of this machine, only the hub's port; no private address (local_hub.firewall).
        self.network_guarded = firewall.guard(
            f"br-{self.network.id[:12]}", self.hub_port, self.network_name
        )
        if not self.network_guarded:
            print(
                "local hub: not root, or no iptables: learner containers can reach this "
                "machine's services bound on 0.0.0.0 and private addresses",
                flush=True,
            )

    def remove_orphans(self) -> None:
        """What earlier hubs left behind when they were killed; reported, never fatal."""
        try:
            client = docker_client()
            removed = remove_orphans(client) + remove_stale_rules(client)
        except Exception:  # noqa: BLE001 - no Docker: nothing was left in it
            return
        if removed:
            print(f"local hub: removed what killed hubs left: {', '.join(removed)}", flush=True)

    def remove_network(self) -> None:
        if self.network is None:
            return
        if self.network_guarded:
            firewall.unguard([self.network_name])
        try:
            self.network.remove()
        except Exception:  # noqa: BLE001 - already gone
            pass
        self.network = None

    def start_proxy(self) -> None:
        executable = shutil.which("configurable-http-proxy")
        if executable is None:
            raise LocalHubError(
                "configurable-http-proxy is not on PATH: npm install -g configurable-http-proxy"
            )
        hub = f"http://{self.hub_ip}:{self.hub_port}"
        command = [
            executable,
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--api-ip=127.0.0.1",
            f"--api-port={self.proxy_api_port}",
            f"--default-target={hub}",
            f"--error-target={hub}/hub/error",
            "--log-level=warn",
            *(["--host-routing"] if self.subdomains else []),
        ]
        if self.proxy_metrics_port:
            command += ["--metrics-ip=127.0.0.1", f"--metrics-port={self.proxy_metrics_port}"]
        env = {**os.environ, "CONFIGPROXY_AUTH_TOKEN": self.proxy_token}
        with open(self.proxy_log, "ab") as log:
            self.proxy = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait(
            lambda: port_open(self.proxy_api_port), 30, "the proxy", self.proxy, self.proxy_log
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
            "log_level": self.log_level,
            "start_timeout": self.start_timeout,
            "data_files_path": _data_files_path(),
            "sso_client_secret": self.sso_client_secret,
            "hub_ip": self.hub_ip,
            "owner": owner(),
            "learner_network": self.network_name if self.network is not None else None,
            "subdomains": self.subdomains,
            **self.extra_params,
        }
        params_file = self.state_dir / "hub-params.json"
        params_file.write_text(json.dumps(params, indent=1))
        params_file.chmod(0o600)
        module, function = self.configuration.split(":")
        config = self.state_dir / "jupyterhub_config.py"
        config.write_text(
            "# Written by local_hub.processes.LocalHub; the parameters are in hub-params.json.\n"
            f"from {module} import {function}\n\n"
            f"{function}(c, {str(params_file)!r})  # noqa: F821\n"
        )
        return config

    def start_hub(self) -> None:
        if self.hub is not None and self.hub.poll() is None:
            raise LocalHubError("the hub is already running")
        config = self._write_config()
        command = [sys.executable, "-m", "jupyterhub", "-f", str(config)]
        # A native crash leaves Python's traceback of every thread in the hub's log.
        env = {**child_environment(), "PYTHONFAULTHANDLER": "1"}
        for attempt in (1, 2):
            output: Any = None if self.echo_logs else open(self.hub_log, "ab")
            try:
                process = subprocess.Popen(
                    command,
                    cwd=self.state_dir,
                    env=env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            finally:
                if output is not None:
                    output.close()
            self.hub = process
            try:
                self._wait(self._hub_answers, 90, "JupyterHub", process, self.hub_log)
                return
            except LocalHubError:
                if attempt == 2 or process.poll() is None:
                    raise
            # Exited while starting (a native crash was seen once under load: SIGSEGV): started
            # once more, as Kubernetes restarts the hub's pod; the log keeps both. A hub that
            # cannot start fails twice, with its error.
            with open(self.hub_log, "a") as log:
                log.write(f"local hub: JupyterHub exited ({process.returncode}) while starting\n")

    def _hub_answers(self) -> bool:
        try:
            return requests.get(f"{self.url}/hub/api/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def _wait(self, ready: Any, timeout: float, what: str, process: Any, log: Path) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise LocalHubError(f"{what} exited ({process.returncode}):\n{tail_of(log)}")
            if ready():
                return
            time.sleep(0.2)
        raise LocalHubError(f"{what} did not start in {timeout:.0f}s:\n{tail_of(log)}")

    def stop_hub(self) -> None:
        stop_process(self.hub)

    def restart_hub(self) -> None:
        self.stop_hub()
        self.start_hub()

    def stop(self) -> None:
        """Stops the hub and the proxy and removes this hub's containers (kept work's volumes
        stay: they are the people's)."""
        if self.retention is not None:
            self.retention.stop()
            self.retention = None
        try:
            self.stop_hub()
        finally:
            try:
                stop_process(self.proxy)
            finally:
                self.remove_containers()
                self.remove_network()

    def containers(self, all: bool = True) -> list[Any]:
        try:
            client = docker_client()
            return list(
                client.containers.list(
                    all=all, filters={"label": f"{INSTANCE_LABEL}={self.instance}"}
                )
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
        return tail_of(self.hub_log, lines)

    def person_key(self, subject: str) -> str:
        """The key the SSO gate gives the person with `subject` at this hub's provider: an HMAC
        with this hub's cookie secret (hub.sso.identity_key), which JupyterHub keeps in the state
        folder, hex-encoded."""
        if self.settings.sso is None:
            raise LocalHubError("this hub has no SSO gate: its users belong to no person")
        secret = bytes.fromhex((self.state_dir / COOKIE_SECRET_FILE).read_text().strip())
        return identity_key(secret, self.settings.sso.issuer, subject)
