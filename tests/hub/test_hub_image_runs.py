"""The production hub image (hub:image), started the way the chart's hub pod starts it.

Pants builds the image before these tests (runtime_package_dependencies; its `hub` stage, all but
the database's CA bundle). The test renders dev's values through the real z2jh chart
(tests/infra/chart.py), puts the rendered Secret `hub` and ConfigMap `hub` and the chart's own
jupyterhub_config.py and z2jh.py where the pod mounts them, gives the container the hub
container's environment and runs the Deployment's own args in the image as the chart's user.
What Kubernetes would put beside it is real too, on loopback (the container shares the machine's
network, so the hub listens on 8081 as in the pod): configurable-http-proxy as the proxy pod,
PostgreSQL as the database, and the Services' names in the container's /etc/hosts.

Where this differs from the cluster, because the real part cannot run here: the database is the
loopback PostgreSQL without TLS (the rendered URL verifies RDS's certificate, which only the
`production` stage has); no Kubernetes API, so no learner server is started (KubeSpawner's pods
are tested in tests/infra/test_chart_hub_config.py).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import docker
import pytest
import requests

from catalog import Catalog, find_repo_root, load_catalog
from infra.images import course_images, hub_image_from_docker_info
from infra.images import hub_image as checked_hub_image
from infra.stack_config import load_stack_config
from infra.values import RELEASE_NAME, helm_values
from local_hub.processes import free_port, port_open, stop_process
from tests.docker_engine import client  # noqa: F401 - the fixture
from tests.hub.e2e_support import PostgresServer, require_proxy, wait_for
from tests.infra.chart import HUB_ETC, Z2JH, chart, hub_environment, named, template, write_hub_etc
from tests.infra.support import HUB_IMAGE, image_map_for

#: Where Pants puts the image's docker-info for the test (hub:image is a runtime dependency).
DOCKER_INFO = Path("hub/image.docker-info.json")
#: The hub's port in its pod (the chart's jupyterhub_config.py binds it; the Service targets it).
HUB_PORT = 8081
STACK = "dev"
CULLER_CALL = "GET /hub/api/users"


@pytest.fixture(scope="module")
def hub_image(client: docker.DockerClient) -> Any:  # noqa: F811 - the fixture
    if not DOCKER_INFO.is_file():
        pytest.skip(f"no {DOCKER_INFO}: run with `./pants test tests/hub:image-runs` (builds it)")
    return client.images.get(hub_image_from_docker_info(json.loads(DOCKER_INFO.read_text())))


def test_the_image_keeps_the_charts_hub_image_contract(hub_image: Any) -> None:
    """What the chart's pod assumes of zero-to-jupyterhub's own hub image."""
    config = hub_image.attrs["Config"]
    assert config["User"] == "1000"
    assert config["WorkingDir"] == "/srv/jupyterhub"
    assert "8081/tcp" in config["ExposedPorts"]
    assert config["Entrypoint"] == ["tini", "--"]
    assert config["Cmd"] == ["jupyterhub", "--config", f"{HUB_ETC}jupyterhub_config.py"]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(find_repo_root())


@contextmanager
def proxy(token: str, log: Path) -> Iterator[tuple[int, int]]:
    """configurable-http-proxy on loopback with the hub's proxy token: (public port, API port)."""
    require_proxy()
    port, api_port = free_port(), free_port()
    command = [
        str(shutil.which("configurable-http-proxy")),
        "--ip=127.0.0.1",
        f"--port={port}",
        "--api-ip=127.0.0.1",
        f"--api-port={api_port}",
        "--log-level=warn",
    ]
    env = {**os.environ, "CONFIGPROXY_AUTH_TOKEN": token}
    with open(log, "ab") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: port_open(api_port), 30, "configurable-http-proxy's API")
        yield port, api_port
    finally:
        stop_process(process)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the hub's server does
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_the_image_serves_the_charts_hub_configuration(
    hub_image: Any,
    client: docker.DockerClient,  # noqa: F811 - the fixture
    catalog: Catalog,
    tmp_path: Path,
) -> None:
    """The hub starts from the chart's own configuration with our launcher loaded, registers its
    route with the proxy, answers its health check, its culler reaches its API on loopback, and a
    launch link goes to the SSO gate, whose page says so when the provider cannot be reached
    (here a loopback port where nothing listens: the gate's request goes out through the chart's
    curl client, pycurl)."""
    assert _port_free(HUB_PORT), f"port {HUB_PORT} is taken: the hub binds it as in its pod"
    stack = load_stack_config(find_repo_root() / "infra", STACK)
    issuer = f"http://127.0.0.1:{free_port()}/realms/learners"
    stack = replace(stack, sso=replace(stack.sso, issuer=issuer))
    with PostgresServer() as postgres:
        images = course_images(catalog, image_map_for(catalog))
        values = helm_values(stack, catalog, images, checked_hub_image(HUB_IMAGE), "127.0.0.1")
        values["hub"]["db"]["url"] = postgres.url
        objects = template(chart(Z2JH), RELEASE_NAME, stack.namespace, values, tmp_path)
        etc = tmp_path / "etc-jupyterhub"
        write_hub_etc(objects, etc)
        for folder in (etc, *etc.iterdir()):
            if folder.is_dir():
                folder.chmod(0o755)
        environment = hub_environment(objects, stack.namespace)
        token = environment["CONFIGPROXY_AUTH_TOKEN"]
        with proxy(token, tmp_path / "proxy.log") as (proxy_port, proxy_api_port):
            environment["PROXY_API_SERVICE_PORT"] = str(proxy_api_port)
            environment["PROXY_PUBLIC_SERVICE_PORT"] = str(proxy_port)
            (hub,) = named(objects, "Deployment", "hub")["spec"]["template"]["spec"]["containers"]
            security = hub["securityContext"]
            container = client.containers.run(
                hub_image.id,
                command=hub["args"],
                user=f"{security['runAsUser']}:{security['runAsGroup']}",
                environment=environment,
                volumes={str(etc): {"bind": HUB_ETC, "mode": "ro"}},
                network_mode="host",
                extra_hosts={name: "127.0.0.1" for name in ("hub", "proxy-api", "proxy-public")},
                name=f"ol-hub-image-test-{uuid.uuid4().hex[:8]}",
                detach=True,
            )
            try:
                _check_running_hub(container, proxy_api_port, token)
            finally:
                container.remove(force=True)


def _check_running_hub(container: Any, proxy_api_port: int, proxy_token: str) -> None:
    hub = f"http://127.0.0.1:{HUB_PORT}"

    def logs() -> str:
        return container.logs().decode(errors="replace")

    def healthy() -> bool:
        container.reload()
        assert container.status != "exited", f"the hub exited:\n{logs()[-6000:]}"
        try:
            return requests.get(f"{hub}/hub/health", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(healthy, 120, "the hub's /hub/health")
    routes = requests.get(
        f"http://127.0.0.1:{proxy_api_port}/api/routes",
        headers={"Authorization": f"token {proxy_token}"},
        timeout=5,
    ).json()
    assert routes, "the hub registered no route with the proxy"
    assert any(route.get("target") == f"http://hub:{HUB_PORT}" for route in routes.values()), routes
    wait_for(lambda: CULLER_CALL in logs(), 60, "the culler's first call to the hub's API")
    (call,) = [line for line in logs().splitlines() if CULLER_CALL in line][:1]
    assert " 200 " in call and "idle-culler@127.0.0.1" in call, call
    link = f"{hub}/hub/tmplogin?course=no-such-course&notebook=x.ipynb"
    to_gate = requests.get(link, allow_redirects=False, timeout=10)
    assert to_gate.status_code == 302, (to_gate.status_code, to_gate.text[:2000])
    gate = urlsplit(to_gate.headers["Location"])
    assert gate.path == "/hub/oauth_login", to_gate.headers["Location"]
    assert parse_qs(gate.query)["next"] == [
        "/hub/spawn?opt-course=no-such-course&opt-notebook=x.ipynb"
    ]
    unavailable = requests.get(f"{hub}{gate.path}?{gate.query}", timeout=30)
    assert unavailable.status_code == 503, (unavailable.status_code, unavailable.text[:2000])
    assert "Sign-in is unavailable right now" in unavailable.text
    assert "SSO provider unreachable" in logs()
