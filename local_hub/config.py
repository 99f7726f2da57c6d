"""The local hub's JupyterHub configuration: the production hub configuration (`hub.config`) on
loopback, with DockerSpawner on the learners' own network (or the host network: see
local_hub/processes.py).

`LocalHub` (local_hub/processes.py) writes the parameters as JSON and a jupyterhub_config.py
that calls `configure_local(c, <params file>)`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hub.config import configure_hub
from hub.settings import HubSettings, parse_custom

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
#: Labels of the containers and the network a local hub makes: its instance, and the process that
#: owns it (`<host>:<pid>`), so that what a killed hub left behind can be found and removed.
INSTANCE_LABEL = "ol.hub"
#: What a local hub's containers, network and firewall rules are named after: `olhub-<instance>`.
NAME_PREFIX = "olhub-"
OWNER_LABEL = "ol.hub.owner"
#: The hub's cookie secret, in its state folder (JupyterHub writes it, hex-encoded).
COOKIE_SECRET_FILE = "jupyterhub_cookie_secret"


def read_params(params_file: str) -> dict[str, Any]:
    """The parameters `LocalHub` wrote."""
    params: dict[str, Any] = json.loads(Path(params_file).read_text())
    return params


def hub_settings(params: dict[str, Any]) -> HubSettings:
    return parse_custom(params["custom"], require_all_images=False)


def configure_local(c: Any, params_file: str) -> None:
    """jupyterhub_config.py of the local hub: the production configuration, on loopback."""
    params = read_params(params_file)
    configure_loopback(c, params)
    configure_hub(c, hub_settings(params), "local_hub.spawner.CourseDockerSpawner")


def configure_loopback(c: Any, params: dict[str, Any]) -> None:
    """Ports, database, proxy and containers of a hub on 127.0.0.1, and its admin token."""
    instance = params["instance"]
    hub_url = f"http://{params.get('hub_ip') or '127.0.0.1'}:{params['hub_port']}"
    c.JupyterHub.bind_url = f"http://127.0.0.1:{params['port']}"
    public_url = c.JupyterHub.bind_url
    if params.get("subdomains"):
        # Learners' servers on <user>.localhost, each an origin of its own, as in production
        # (the proxy routes by host: LocalHub starts it with --host-routing).
        public_url = f"http://localhost:{params['port']}"
        c.JupyterHub.subdomain_host = public_url
    c.JupyterHub.hub_bind_url = hub_url
    c.JupyterHub.db_url = params["db_url"]
    c.JupyterHub.upgrade_db = True
    c.JupyterHub.cookie_secret_file = str(Path(params["state_dir"]) / COOKIE_SECRET_FILE)
    c.JupyterHub.log_level = params.get("log_level", "INFO")
    # Servers outlive the hub process (restarts); `LocalHub.stop` removes the containers.
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = False
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{params['proxy_api_port']}"
    c.ConfigurableHTTPProxy.auth_token = params["proxy_token"]
    if params.get("data_files_path"):
        c.JupyterHub.data_files_path = params["data_files_path"]

    network = params.get("learner_network")
    # On the learners' network each container has its address, the server listens on all of
    # its interfaces; on the host network, on a fresh loopback port.
    c.LoopbackDockerSpawner.loopback = not network
    c.DockerSpawner.network_name = network or "host"
    c.DockerSpawner.use_internal_ip = True
    c.DockerSpawner.remove = True
    c.DockerSpawner.prefix = f"{NAME_PREFIX}{instance}"
    owner = {OWNER_LABEL: params["owner"]} if params.get("owner") else {}
    c.DockerSpawner.extra_create_kwargs = {"labels": {INSTANCE_LABEL: instance, **owner}}
    c.DockerSpawner.pull_policy = "ifnotpresent"
    # The hub's own environment (PYTHONPATH, PATH) has no business inside the containers.
    c.DockerSpawner.env_keep = []
    c.Spawner.ip = "0.0.0.0" if network else "127.0.0.1"
    c.Spawner.hub_connect_url = hub_url
    c.Spawner.start_timeout = params.get("start_timeout", 180)
    c.Spawner.http_timeout = params.get("start_timeout", 180)

    if params.get("sso_client_secret"):
        c.CourseSsoAuthenticator.client_secret = params["sso_client_secret"]
        c.CourseSsoAuthenticator.oauth_callback_url = f"{public_url}/hub/oauth_callback"

    services = list(c.JupyterHub.get("services", []))
    roles = list(c.JupyterHub.get("load_roles", []))
    services.append({"name": ADMIN_SERVICE, "api_token": params["api_token"]})
    roles.append({"name": ADMIN_SERVICE, "scopes": ADMIN_SCOPES, "services": [ADMIN_SERVICE]})
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles
