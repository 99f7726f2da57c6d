"""End to end: culling with short timeouts on a real local hub (SQLite, the local default).

jupyterhub-idle-culler runs as the hub's service: it stops idle servers, stops servers past
their maximum age even while in use, and deletes the throwaway users; each single-user server
shuts down idle kernels itself, even while a browser tab is connected to them. Row counts are
read from the hub's database before and after.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from hub.launch import LaunchSettings
from hub.settings import CullSettings, HubSettings
from local_hub.client import user_from_url
from local_hub.processes import LocalHub
from tests.hub.e2e_support import (
    chromium_browser,
    count_rows,
    course_images,
    launchable,
    require_proxy,
    wait_for,
)

pytestmark = pytest.mark.timeout(600)

#: Idle culling alone. With a maximum age too, a server whose start took longer than the age
#: less the idle timeout (a loaded machine) would go for its age first.
IDLE = CullSettings(
    idle_timeout=15,
    every=3,
    max_age=0,
    users=True,
    kernel_idle_timeout=8,
    kernel_cull_interval=2,
    cull_connected=True,
    terminal_idle_timeout=8,
)
#: And a maximum age, for a server kept busy: long enough that its kernel starts and is culled
#: first on a loaded machine (with 45 s, a cold CI run once saw the server culled for its age
#: while the test still waited for the kernel, and the kernels API answer 500).
MAX_AGE = replace(IDLE, max_age=90)


def local_hub(culling: CullSettings) -> Iterator[LocalHub]:
    courses = course_images()
    require_proxy()
    settings = HubSettings(courses.catalog, courses.images, LaunchSettings(), culling)
    with tempfile.TemporaryDirectory(prefix="ol-hub-cull-") as state:
        with LocalHub(settings, Path(state)) as hub:
            assert hub.db_url.startswith("sqlite:///")
            yield hub


@pytest.fixture
def idle_hub() -> Iterator[LocalHub]:
    yield from local_hub(IDLE)


@pytest.fixture
def max_age_hub() -> Iterator[LocalHub]:
    yield from local_hub(MAX_AGE)


def smallest_course(hub: LocalHub) -> str:
    return min(launchable(hub), key=lambda s: hub.settings.catalog[s].resources.memory_limit)


def user_exists(hub: LocalHub, user: str) -> bool:
    return hub.api("GET", f"/users/{quote(user, safe='')}").status_code == 200


def kernels(hub: LocalHub, user: str) -> list[dict[str, Any]]:
    response = requests.get(
        f"{hub.url}/user/{quote(user, safe='')}/api/kernels",
        headers={"Authorization": f"token {hub.api_token}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def test_idle_servers_and_throwaway_users_are_culled(idle_hub: LocalHub) -> None:
    hub = idle_hub
    slug = smallest_course(hub)
    before = count_rows(hub.db_url)
    with ThreadPoolExecutor(3) as pool:
        users = list(pool.map(lambda _: hub.launch(hub.link(slug)).user, range(3)))
        list(pool.map(hub.wait_ready, users))
    during = count_rows(hub.db_url)
    assert during["users"] == before["users"] + 3
    assert during["servers"] >= before["servers"] + 3
    wait_for(
        lambda: not any(user_exists(hub, u) for u in users), 120, "the culler to remove the users"
    )
    after = count_rows(hub.db_url)
    log = hub.hub_log.read_text()
    reasons = {u: re.findall(rf"Culling server {re.escape(u)} \((\w+)", log) for u in users}
    assert reasons == {u: ["inactive"] for u in users}
    assert after["users"] == before["users"]
    assert after["servers"] == before["servers"]
    assert after["spawners"] == before["spawners"]
    wait_for(
        lambda: not [c for c in hub.containers() if c.labels.get("course")], 60, "containers to go"
    )


def test_kernels_culled_with_tab_open_and_servers_past_max_age(max_age_hub: LocalHub) -> None:
    hub = max_age_hub
    slug = smallest_course(hub)
    notebook = hub.settings.catalog[slug].notebooks[0]
    with chromium_browser() as browser:
        page = browser.new_context().new_page()
        page.goto(hub.link(slug, notebook))
        page.wait_for_url(f"**/lab/tree/{notebook}**", timeout=120_000)
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
        user = user_from_url(page.url)
        assert user
        # The server's age counts from its start as the hub recorded it (the page may have
        # taken a while to load on a busy machine).
        server = hub.server(user)
        assert server and server.get("started")
        server_started = datetime.fromisoformat(server["started"].replace("Z", "+00:00"))
        wait_for(lambda: kernels(hub, user), 60, "JupyterLab to start the notebook's kernel")
        # The tab stays open and connected; the idle kernel goes anyway.
        wait_for(
            lambda: not kernels(hub, user), 60, "the server to cull the idle kernel", interval=1
        )
        assert page.url.endswith(notebook) or "/lab/tree/" in page.url

        # Keep the server busy: it still goes at its maximum age (90 s), then the user.
        def server_gone() -> bool:
            hub.server_answers(user)  # activity through the proxy
            return hub.server(user) is None if user_exists(hub, user) else True

        wait_for(server_gone, 180, "the culler to stop the server at its maximum age", interval=2)
        age = (datetime.now(timezone.utc) - server_started).total_seconds()
        assert age >= MAX_AGE.max_age, f"the server went at {age:.0f} s, before its maximum age"
        # The culler's own account: by age, not for inactivity.
        assert f"Culling server {user} (age:" in hub.hub_log.read_text()
    wait_for(lambda: not user_exists(hub, user), 90, "the culler to delete the user")
    assert not [c for c in hub.containers() if user.replace("-", "-2d") in c.name]
