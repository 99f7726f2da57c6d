"""End to end, all real: the local hub (JupyterHub + configurable-http-proxy + DockerSpawner on
127.0.0.1) with the course images, its database on a PostgreSQL server started here, learners
in headless Chromium. Skips (with the reason) without Docker, the images, the proxy, Chromium
or PostgreSQL.
"""

from __future__ import annotations

import posixpath
import socket
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import docker
import pytest
import requests

from hub.launch import LaunchSettings
from hub.settings import CullSettings, HubSettings
from local_hub import firewall
from local_hub.client import user_from_url
from local_hub.processes import LocalHub
from tests.hub.e2e_support import (
    PostgresServer,
    chromium_browser,
    count_rows,
    course_images,
    launchable,
    redirects_to_spawn,
    repository_catalog,
    require_proxy,
)

pytestmark = pytest.mark.timeout(600)

CATALOG = repository_catalog()
SLUGS = list(CATALOG.slugs) if CATALOG else []
CONCURRENT = 20
RESTARTED = 5


@pytest.fixture(scope="module")
def hub() -> Iterator[LocalHub]:
    courses = course_images()
    require_proxy()
    settings = HubSettings(
        catalog=courses.catalog,
        image_map=courses.images,
        launch=LaunchSettings(),
        # Culling is tested on its own hub; here nothing may disappear mid-test.
        culling=CullSettings(idle_timeout=3600, max_age=0),
    )
    with PostgresServer() as postgres, tempfile.TemporaryDirectory(prefix="ol-hub-e2e-") as state:
        local_hub = LocalHub(settings, Path(state), db_url=postgres.url)
        with local_hub:
            yield local_hub


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def image_available(hub: LocalHub, slug: str) -> None:
    if slug not in hub.settings.image_map:
        pytest.fail(f"the image map has no image for {slug}")


def container_of(hub: LocalHub, user: str) -> Any:
    (container,) = (
        c for c in hub.containers() if c.labels.get("course") and user_suffix(user) in c.name
    )
    return container


def user_suffix(user: str) -> str:
    """DockerSpawner escapes names: the uuid's hex digits survive, '-' becomes '-2d'."""
    return user.replace("-", "-2d")


def wait_until_in_lab(page: Any, notebook: str) -> None:
    page.wait_for_url(f"**/lab/tree/{notebook}**", timeout=120_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
    current = page.locator("li.lm-TabBar-tab.jp-mod-current .lm-TabBar-tabLabel").first
    # The tab bar may come after the cells on a busy machine (a cold CI run once waited 30 s).
    current.wait_for(timeout=120_000)
    assert current.inner_text() == posixpath.basename(notebook)


@pytest.mark.parametrize("slug", SLUGS)
def test_every_course_opens_its_notebook_in_jupyterlab(hub: LocalHub, page: Any, slug: str) -> None:
    image_available(hub, slug)
    course = hub.settings.catalog[slug]
    notebook = course.notebooks[-1]
    page.goto(hub.link(slug, notebook))
    wait_until_in_lab(page, notebook)
    user = user_from_url(page.url)
    assert user
    container = container_of(hub, user)
    # no GPUs here: a GPU course runs its CPU image (`<slug>--cpu`)
    expected = hub.settings.image_map[hub.settings.catalog[slug].image_key(gpu=False)]
    assert container.attrs["Config"]["Image"] == expected
    assert container.attrs["HostConfig"]["Memory"] == course.resources.memory_limit
    assert container.attrs["HostConfig"]["SecurityOpt"] == ["no-new-privileges"]
    assert container.labels["course"] == slug
    hub.delete_user(user)


@pytest.mark.parametrize(
    "query, status, text",
    [
        ({"course": "no-such-course"}, 404, "There is no course called"),
        ({"notebook": "../../../etc/passwd"}, 400, "is not allowed"),
        ({"notebook": "%2e%2e%2f%2e%2e%2fetc%2fpasswd"}, 400, "is not allowed"),
        ({"tag": "pr-1"}, 403, "does not open preview versions"),
    ],
    ids=["unknown-course", "traversal", "encoded-traversal", "tag"],
)
def test_refused_links_help_and_start_nothing(
    hub: LocalHub, page: Any, query: dict[str, str], status: int, text: str
) -> None:
    slug = launchable(hub)[0]
    arguments = {"course": slug, **query}
    before = {c.id for c in hub.containers()}
    course_param = arguments.pop("course")
    response = page.goto(hub.link(course_param, **arguments))
    assert response.status == status
    assert text in page.inner_text(".ol-launch-error")
    # Every launchable course is offered, with a link that works.
    links = page.locator("a.ol-course-link")
    assert links.count() == len(launchable(hub))
    assert {c.id for c in hub.containers()} == before
    if query.get("course") == "no-such-course":
        page.locator("a.ol-course-link").first.click()
        first = next(c for c in hub.settings.catalog if c.slug in hub.settings.image_map)
        page.wait_for_url("**/lab**", timeout=120_000)
        page.wait_for_selector(".jp-Launcher, .jp-DirListing", timeout=120_000)
        user = user_from_url(page.url)
        assert user and container_of(hub, user).labels["course"] == first.slug
        hub.delete_user(user)


def test_api_spawn_without_course_starts_nothing(hub: LocalHub) -> None:
    """REST API spawns go through the same plan: no course, no server (never a default)."""
    assert hub.api("POST", "/users/api-learner").status_code in (201, 409)
    before = {c.id for c in hub.containers()}
    response = hub.api("POST", "/users/api-learner/server", json={"image": "evil:latest"})
    assert response.status_code == 400, response.text
    assert {c.id for c in hub.containers()} == before
    ok = hub.api("POST", "/users/api-learner/server", json={"course": launchable(hub)[0]})
    assert ok.status_code in (201, 202), ok.text
    hub.wait_ready("api-learner")
    hub.delete_user("api-learner")


def test_twenty_concurrent_launches(hub: LocalHub) -> None:
    slug = min(launchable(hub), key=lambda s: hub.settings.catalog[s].resources.memory_limit)
    notebook = hub.settings.catalog[slug].notebooks[0]

    def launch(_: int) -> str:
        user = hub.launch(hub.link(slug, notebook)).user
        hub.wait_ready(user, timeout=300, interval=1.0)
        return user

    with ThreadPoolExecutor(CONCURRENT) as pool:
        users = list(pool.map(launch, range(CONCURRENT)))
    try:
        assert len(set(users)) == CONCURRENT
        assert all(hub.server_answers(user) for user in users)
        running = [c for c in hub.containers(all=False) if c.labels.get("course") == slug]
        assert len(running) >= CONCURRENT
    finally:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(hub.delete_user, users))


def test_hub_restart_keeps_running_servers(hub: LocalHub) -> None:
    slug = launchable(hub)[0]
    with ThreadPoolExecutor(RESTARTED) as pool:
        users = list(pool.map(lambda _: hub.launch(hub.link(slug)).user, range(RESTARTED)))
        list(pool.map(hub.wait_ready, users))
    containers = {c.name: c.id for c in hub.containers(all=False)}
    rows = count_rows(hub.db_url)
    try:
        hub.restart_hub()
        for user in users:
            server = hub.server(user)
            assert server and server["ready"], f"{user} lost its server"
            assert hub.server_answers(user)
        assert {c.name: c.id for c in hub.containers(all=False)} == containers
        assert count_rows(hub.db_url) == rows
    finally:
        for user in users:
            hub.delete_user(user)


REACH = """
import socket, sys
for host, port in (tuple(a.split(":")) for a in sys.argv[1:]):
    with socket.socket() as s:
        s.settimeout(3)
        print(f"{host}:{port}", "open" if s.connect_ex((host, int(port))) == 0 else "closed")
"""


def test_learner_containers_reach_the_hub_and_nothing_else_of_the_host(hub: LocalHub) -> None:
    """Learner code runs in a container on the hub's own network, with no-new-privileges: it can
    reach the hub (its server needs the hub's API, as production's pods do) and nothing else of
    the host: not the proxy's API, not the public port, not the host's loopback services, not
    another learner's server."""
    slug = launchable(hub)[0]
    launch, other = hub.launch(hub.link(slug)), hub.launch(hub.link(slug))
    hub.wait_ready(launch.user)
    hub.wait_ready(other.user)
    container = container_of(hub, launch.user)
    neighbour = container_of(hub, other.user)
    neighbour_ip = neighbour.attrs["NetworkSettings"]["Networks"][hub.network_name]["IPAddress"]
    assert hub.network is not None
    assert list(container.attrs["NetworkSettings"]["Networks"]) == [hub.network_name]
    targets = {
        f"{hub.hub_ip}:{hub.hub_port}": "open",
        f"{hub.hub_ip}:{hub.proxy_api_port}": "closed",
        f"{hub.hub_ip}:{hub.port}": "closed",
        f"127.0.0.1:{hub.proxy_api_port}": "closed",
        f"127.0.0.1:{hub.hub_port}": "closed",
        f"127.0.0.1:{hub.port}": "closed",
        f"{neighbour_ip}:8888": "closed",
    }
    postgres = urlparse(hub.db_url).port
    if postgres:
        targets[f"{hub.hub_ip}:{postgres}"] = "closed"
    result = container.exec_run(["python3", "-c", REACH, *targets])
    assert result.exit_code == 0, result.output
    seen = dict(line.split(" ") for line in result.output.decode().splitlines())
    assert seen == targets
    # The hub itself reaches both servers (the proxy routes to them).
    assert hub.server_answers(launch.user) and hub.server_answers(other.user)
    hub.delete_user(launch.user)
    hub.delete_user(other.user)


def test_learner_containers_reach_no_other_service_of_this_machine(hub: LocalHub) -> None:
    """Issue 25, finding 9: a service this machine binds on 0.0.0.0 (here a listener of the
    test's own) was open to learner code through the network's gateway and through the host's
    other addresses (the default bridge's gateway). The local hub's firewall rules
    (local_hub.firewall, as root) leave the hub's port alone open. Their DOCKER-USER half (no
    private address through the host, as production's `privateIPs: false`) has nothing to reach
    here: it is read back as iptables lists it."""
    if not hub.network_guarded:
        pytest.skip("the local hub could not add its firewall rules (not root, or no iptables)")
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        port = listener.getsockname()[1]
        other = docker.from_env().networks.get("bridge").attrs["IPAM"]["Config"][0]["Gateway"]
        slug = launchable(hub)[0]
        launch = hub.launch(hub.link(slug))
        hub.wait_ready(launch.user)
        targets = {
            f"{hub.hub_ip}:{hub.hub_port}": "open",
            f"{hub.hub_ip}:{port}": "closed",
            f"{other}:{port}": "closed",
        }
        result = container_of(hub, launch.user).exec_run(["python3", "-c", REACH, *targets])
    assert result.exit_code == 0, result.output
    assert dict(line.split(" ") for line in result.output.decode().splitlines()) == targets
    bridge = f"br-{hub.network.id[:12]}"
    expected = firewall.guard_rules(bridge, hub.hub_port, hub.network_name)
    rules = firewall.tagged_rules(firewall.listing(), hub.network_name)
    assert sorted(rules) == sorted(expected)
    hub.delete_user(launch.user)


def test_metrics_need_a_token(hub: LocalHub) -> None:
    """As in production, /hub/metrics answers only a token whose role has read:metrics (the local
    hub's own service has it; production's Prometheus has the chart's `prometheus` service)."""
    url = f"{hub.url}/hub/metrics"
    assert requests.get(url, timeout=10).status_code == 403
    headers = {"Authorization": f"token {hub.api_token}"}
    response = requests.get(url, headers=headers, timeout=10)
    assert response.status_code == 200
    assert "jupyterhub_running_servers" in response.text
    assert (
        'jupyterhub_server_spawn_duration_seconds_count{reason="",status="success"}'
        in response.text
    )


def test_tmplogin_keeps_the_link_arguments(hub: LocalHub) -> None:
    slug = launchable(hub)[0]
    notebook = hub.settings.catalog[slug].notebooks[0]
    hops = redirects_to_spawn(hub.link(slug, notebook))
    assert [urlparse(h).path for h in hops] == ["/tmplogin", "/hub/tmplogin", "/hub/spawn"]
    assert parse_qs(urlparse(hops[-1]).query) == {"opt-course": [slug], "opt-notebook": [notebook]}


@contextmanager
def page_on_another_site(html: str) -> Iterator[str]:
    """A page served on loopback under the name `localhost`: another site than the hub's
    127.0.0.1 for the browser (a site is the scheme and host), as an attacker's page would be."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_launch_link_from_another_site_asks_for_one_click(hub: LocalHub, page: Any) -> None:
    """Issue 25, finding 8: any site could send a learner's browser to a launch link and start a
    server on their quota. Followed from another site (Chromium says `Sec-Fetch-Site:
    cross-site`) the link shows what it would start and starts nothing; the click (the same link,
    now from the hub's own page) does."""
    slug = launchable(hub)[0]
    notebook = hub.settings.catalog[slug].notebooks[0]
    link = hub.link(slug, notebook)
    users_before = {u["name"] for u in hub.api("GET", "/users").json()}
    containers_before = {c.id for c in hub.containers()}
    with page_on_another_site(f'<a id="go" href="{link}">a free GPU</a>') as attacker:
        page.goto(attacker)
        page.click("#go")
        page.wait_for_selector("#ol-start", timeout=30_000)
    assert slug in page.inner_text(".ol-confirm-launch")
    assert {u["name"] for u in hub.api("GET", "/users").json()} == users_before
    assert {c.id for c in hub.containers()} == containers_before
    page.click("#ol-start")
    wait_until_in_lab(page, notebook)
    user = user_from_url(page.url)
    assert user and container_of(hub, user).labels["course"] == slug
    hub.delete_user(user)


@pytest.mark.parametrize(
    "sec_fetch_site, asks", [("cross-site", True), ("same-site", False), ("none", False)]
)
def test_only_a_cross_site_navigation_asks(hub: LocalHub, sec_fetch_site: str, asks: bool) -> None:
    """What Chromium sends for a link on this site or a typed URL goes straight on."""
    slug = launchable(hub)[0]
    response = requests.get(
        f"{hub.url}/hub/tmplogin?course={slug}",  # the hub's own handler, past the proxy's hop
        headers={"Sec-Fetch-Site": sec_fetch_site},
        allow_redirects=False,
        timeout=30,
    )
    if asks:
        assert response.status_code == 200 and 'id="ol-start"' in response.text
    else:
        assert response.status_code in (301, 302, 303, 307), response.status_code
