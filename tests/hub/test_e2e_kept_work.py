"""End to end, all real: a person's work outlives their server (issue 27).

The local hub behind the SSO gate (a real OpenID provider, `local_hub.sso_provider`) with kept
work on (`KeptWorkSettings(days=1)`, as `hub:local -- --sso --keep-work 1`) and a culler that
removes idle servers and their throwaway users within seconds. People are `requests` sessions
that sign in at the provider as a browser without JavaScript would, and headless Chromium, in
which a person edits a notebook in JupyterLab and finds their edit again.

Then the course image changes (a notebook the person edited and one they did not), and the rule
of images/base/kept_work.py holds in the person's volume; another person never sees it.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
import pytest

from catalog import Catalog
from hub.launch import KeptWorkSettings, LaunchSettings, work_volume_name
from hub.limits import LimitSettings
from hub.settings import CullSettings
from local_hub.client import user_from_url
from local_hub.images import docker_client
from local_hub.processes import LocalHub
from tests.hub.e2e_support import chromium_browser, count_rows, launchable, wait_for
from tests.hub.test_e2e_hub import wait_until_in_lab
from tests.hub.test_e2e_sso import browser_sign_in, gated_hub, no_server_errors, visit

pytestmark = pytest.mark.timeout(900)

KEEP = LaunchSettings(kept_work=KeptWorkSettings(days=1))
CULLING = CullSettings(idle_timeout=15, every=3, max_age=0, users=True)
MARK = "# kept: edited by learner01"


def two_file_course(hub: LocalHub) -> tuple[str, str, str]:
    """The smallest launchable CPU course with two notebooks: (slug, the one the person edits,
    the one they leave alone)."""
    catalog: Catalog = hub.settings.catalog
    slug = min(
        (s for s in launchable(hub) if not catalog[s].gpu and len(catalog[s].all_notebooks) > 1),
        key=lambda s: catalog[s].resources.memory_limit,
    )
    edited, untouched = catalog[slug].all_notebooks[:2]
    return slug, edited, untouched


def server_container(hub: LocalHub, user: str) -> Any:
    escaped = user.replace("-", "-2d")
    (container,) = (
        c for c in hub.containers(all=False) if c.labels.get("course") and c.name.endswith(escaped)
    )
    return container


def read(container: Any, path: str) -> str:
    code, output = container.exec_run(["cat", f"/home/jovyan/{path}"], user="1000")
    assert code == 0, output
    return output.decode()


def files(container: Any) -> set[str]:
    code, output = container.exec_run(
        ["find", "/home/jovyan", "-type", "f", "-not", "-path", "*/.*"], user="1000"
    )
    assert code == 0, output
    return {line.removeprefix("/home/jovyan/") for line in output.decode().split()}


def launch(hub: LocalHub, slug: str, notebook: str, who: str) -> Any:
    visited = visit(hub.link(slug, notebook), who)
    no_server_errors([visited])
    assert visited.user, (visited.response.status_code, visited.response.url)
    hub.wait_ready(visited.user)
    return visited.user, server_container(hub, visited.user)


def newer_image(client: docker.DockerClient, image: str, edited: str, untouched: str) -> str:
    """The course's image with both notebooks changed, as a course author's next version."""
    tag = f"ol-kept-work-test:{uuid.uuid4().hex[:12]}"
    script = (
        "import pathlib; "
        f"[pathlib.Path('/home/jovyan', p).write_text(p + ' v2') for p in {[edited, untouched]!r}]"
    )
    dockerfile = f"FROM {image}\nRUN python3 -c {json.dumps(script)}\n"
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    return tag


@pytest.fixture
def kept_work_hub() -> Iterator[LocalHub]:
    client = docker_client()
    with tempfile.TemporaryDirectory(prefix="ol-hub-kept-") as state:
        setup = gated_hub(
            Path(state), None, LimitSettings(servers_per_identity=1), CULLING, launch=KEEP
        )
        hub = setup.hub
        hub.kept_work_store = Path(state) / "kept-work.json"  # retention's records: this test's
        try:
            with setup.provider:
                setup.provider.start([f"{hub.url}/hub/oauth_callback"])
                with hub:
                    yield hub
        finally:
            for volume in client.volumes.list(filters={"label": "person"}):
                if volume.name.startswith("work-"):
                    volume.remove(force=True)


def edit_in_jupyterlab(page: Any, notebook: str) -> None:
    """Types MARK at the top of the notebook's first code cell and saves (Ctrl+S), as a person
    does; returns once JupyterLab shows the notebook saved."""
    editor = page.locator(".jp-NotebookPanel .jp-CodeCell .cm-content").first
    editor.click()
    page.keyboard.press("Control+Home")
    page.keyboard.type(MARK + "\n")
    page.keyboard.press("Control+s")
    page.locator("li.lm-TabBar-tab.jp-mod-current.jp-mod-dirty").wait_for(
        state="detached", timeout=60_000
    )


def test_a_persons_edit_survives_the_culler_and_a_course_update(kept_work_hub: LocalHub) -> None:
    """In Chromium: a person signs in, edits a notebook in JupyterLab and saves; closes the tab;
    the culler removes the server and the throwaway user; the person opens the same link again
    and JupyterLab shows their edit. Another person gets the course as published."""
    hub = kept_work_hub
    client = docker_client()
    slug, edited, untouched = two_file_course(hub)
    person = hub.person_key("learner01")
    volume = work_volume_name(person, slug)
    before = count_rows(hub.db_url)

    with chromium_browser() as browser:
        context = browser.new_context()
        page = context.new_page()
        browser_sign_in(page, hub.link(slug, edited), "learner01")
        wait_until_in_lab(page, edited)
        user = user_from_url(page.url)
        assert user
        container = server_container(hub, user)
        original = read(container, edited)
        assert volume in {m.get("Name") for m in container.attrs["Mounts"]}
        edit_in_jupyterlab(page, edited)
        assert MARK in read(container, edited)
        page.close()  # an open tab keeps the server active
        wait_for(lambda: count_rows(hub.db_url) == before, 120, "the culler to remove it all")

        page = context.new_page()  # the provider remembers the person: no sign-in form
        page.goto(hub.link(slug, edited))
        wait_until_in_lab(page, edited)
        again = user_from_url(page.url)
        assert again and again != user
        container = server_container(hub, again)
        assert MARK in read(container, edited)
        page.close()
        context.close()

    _, stranger = launch(hub, slug, edited, "learner02")
    assert read(stranger, edited) == original
    mounted = {m.get("Name") for m in stranger.attrs["Mounts"]}
    assert work_volume_name(hub.person_key("learner02"), slug) in mounted
    assert volume not in mounted
    hub.api("DELETE", f"/users/{again}/server")
    wait_for(lambda: count_rows(hub.db_url) == before, 120, "the culler to remove both users")

    new_image = newer_image(client, hub.settings.image_map[slug], edited, untouched)
    try:
        hub.settings = replace(hub.settings, image_map={**hub.settings.image_map, slug: new_image})
        hub.restart_hub()
        _, container = launch(hub, slug, edited, "learner01")
        assert MARK in read(container, edited)  # theirs, kept
        assert read(container, untouched) == f"{untouched} v2"  # untouched: updated
        (beside,) = (
            f for f in files(container) if f.startswith(edited.rsplit(".", 1)[0] + ".course-")
        )
        assert read(container, beside) == f"{edited} v2"  # the course's new version beside it
    finally:
        hub.stop_hub()
        hub.remove_containers()
        client.images.remove(new_image, force=True)


def test_a_person_deletes_their_kept_work_on_the_hubs_page(kept_work_hub: LocalHub) -> None:
    """/hub/kept-work lists the person's work (not another's), refuses to delete it while its
    server runs, and deletes it once the server is stopped."""
    hub = kept_work_hub
    client = docker_client()
    slug, notebook, _ = two_file_course(hub)
    mine = work_volume_name(hub.person_key("learner01"), slug)
    theirs = work_volume_name(hub.person_key("learner02"), slug)
    first = visit(hub.link(slug, notebook), "learner01")
    other = visit(hub.link(slug, notebook), "learner02")
    no_server_errors([first, other])
    assert first.user and other.user
    hub.wait_ready(first.user)
    hub.wait_ready(other.user)
    page_url = f"{hub.url}/hub/kept-work"

    page = first.session.get(page_url, timeout=30)
    assert page.status_code == 200, page.text[:2000]
    (row,) = re.findall(r'<tr class="ol-kept" data-course="([^"]+)"', page.text)
    assert row == slug
    assert "stop it to delete its work" in page.text
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    token = xsrf.group(1) if xsrf else first.session.cookies.get("_xsrf", "")
    refused = first.session.post(page_url, data={"course": slug, "_xsrf": token}, timeout=30)
    assert refused.status_code == 409, refused.text[:2000]

    hub.api("DELETE", f"/users/{first.user}/server")
    wait_for(lambda: not client.containers.list(all=True, filters={"volume": mine}), 60, "stop")
    page = first.session.get(page_url, timeout=30)
    (token,) = re.findall(r'name="_xsrf" value="([^"]+)"', page.text)
    deleted = first.session.post(page_url, data={"course": slug, "_xsrf": token}, timeout=30)
    assert deleted.status_code == 200, deleted.text[:2000]
    assert "is deleted" in deleted.text
    names = {v.name for v in client.volumes.list()}
    assert mine not in names and theirs in names
