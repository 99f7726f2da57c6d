"""The hub's own capacity scenario, small and not timed (`benchmarks.capacity`): our hub (the production
configuration) with cheap learner servers (`benchmarks.cheap_servers`), its database on a PostgreSQL
server started here, the real configurable-http-proxy; 50 learners, spread over every course,
follow their launch links through the OAuth round trip, and every one must land on its own
course's notebook. The check itself must be able to fail: on the stock hub, which serves one
course whatever the link says, a learner of another course is reported as failed.

No Docker and no course image. Skips (with `CI` set: fails) without configurable-http-proxy or
PostgreSQL's server.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from benchmarks.capacity import CapacityReport
from benchmarks.capacity_lab import OURS, STOCK, CapacityLab, Load, LoadResult, ServerFarm
from benchmarks.capacity_report import comparison, render
from benchmarks.cheap_servers import notebook_page, read_page
from benchmarks.learners import (
    BROWSER_HEADERS,
    Visit,
    VisitError,
    check_landing,
    learner_links,
    visit,
)
from catalog import Catalog
from hub.contract import launch_link
from hub.settings import CullSettings
from local_hub.client import user_from_url
from local_hub.postgres import PostgresUnavailable
from tests.hub.e2e_support import repository_catalog, require_proxy

pytestmark = pytest.mark.timeout(600)

LEARNERS = 50


def catalog() -> Catalog:
    found = repository_catalog()
    if found is None:
        pytest.skip("no courses/ directory (this test needs courses:content)")
    return found


@pytest.fixture(scope="module")
def lab() -> Iterator[CapacityLab]:
    courses = catalog()
    require_proxy()
    with tempfile.TemporaryDirectory(prefix="ol-capacity-test-") as state:
        # Nothing may be culled mid-test.
        capacity_lab = CapacityLab(
            courses, Path(state), culling=CullSettings(idle_timeout=3600, max_age=0)
        )
        try:
            capacity_lab.start()
        except PostgresUnavailable as missing:
            capacity_lab.stop()
            pytest.skip(str(missing))
        except BaseException:
            capacity_lab.stop()
            raise
        try:
            yield capacity_lab
        finally:
            capacity_lab.stop()


def test_every_learner_of_a_class_lands_on_its_own_courses_notebook(lab: CapacityLab) -> None:
    result = lab.run(OURS, Load(f"{LEARNERS} learners", LEARNERS, 10))
    assert not result.error
    assert [(v.status, v.reason) for v in result.visits if v.status != "ok"] == []
    # Spread over every course, each learner with a throwaway user of its own.
    assert Counter((v.course, v.notebook) for v in result.visits) == Counter(
        learner_links(lab.catalog, LEARNERS)
    )
    assert {v.course for v in result.visits} == set(lab.catalog.slugs)
    assert len({v.user for v in result.visits}) == LEARNERS
    # The hub's own record agrees: each user's server is ready, planned for the learner's link.
    hub = lab.hubs[OURS]
    for v in result.visits:
        assert v.user
        server = hub.server(v.user)
        assert server and server["ready"]
        assert server["user_options"]["course"] == v.course
        assert server["user_options"].get("notebook") == v.notebook
    assert lab.clean(OURS) == []


def test_a_learner_shown_another_course_is_a_failure(lab: CapacityLab) -> None:
    stock = lab.hubs[STOCK]
    landed = visit(stock.url, lab.stock_course, lab.stock_notebook)
    assert (landed.status, landed.reason) == ("ok", "")
    # The stock hub starts its one course whatever the link asks for.
    other = next(course.slug for course in lab.catalog if course.slug != lab.stock_course)
    elsewhere = visit(stock.url, other, lab.stock_notebook)
    assert elsewhere.status == "failed"
    assert elsewhere.reason == f"landed on course {lab.stock_course!r}, not {other!r}"
    for v in (landed, elsewhere):
        assert v.user
        stock.delete_user(v.user)


def test_a_learner_cannot_open_another_learners_server(lab: CapacityLab) -> None:
    hub = lab.hubs[OURS]
    slug, notebook = learner_links(lab.catalog, 1)[0]
    first, second = (visit(hub.url, slug, notebook) for _ in range(2))
    assert first.status == second.status == "ok"
    assert first.user and second.user
    browser = requests.Session()
    browser.headers.update(BROWSER_HEADERS)
    own = browser.get(launch_link(hub.url, slug, notebook), timeout=60)
    assert own.status_code == 200 and read_page(own.text)
    # The other learner's server sends the browser to the hub's OAuth, which refuses it.
    theirs = browser.get(
        f"{hub.url}/user/{quote(second.user)}/lab/tree/{quote(notebook or '')}", timeout=60
    )
    assert theirs.status_code == 403
    assert read_page(theirs.text) is None
    # Its readiness answers without a login; its status only with a token that may access it.
    base = f"{hub.url}/user/{quote(second.user)}"
    assert requests.get(f"{base}/api", timeout=10).json()["version"]
    assert requests.get(f"{base}/api/status", timeout=10).status_code == 403
    assert hub.server_answers(second.user)
    for user in (first.user, second.user, user_from_url(own.url)):
        assert user
        hub.delete_user(user)


def landing(url: str, text: str, status: int = 200) -> requests.Response:
    response = requests.Response()
    response.status_code, response.url, response._content = status, url, text.encode()
    return response


def test_the_farm_fails_a_start_of_a_missing_image(tmp_path: Path) -> None:
    """`--missing-image` (the dashboards' pictures' failed spawn): the farm answers 502 with the
    reason, as a registry without the tag fails a pod, and starts nothing."""
    with ServerFarm(tmp_path, missing_images=["ol-course-notebooks:gone"]) as farm:
        response = requests.post(
            f"{farm.url}servers",
            json={"env": {}, "args": [], "image": "ol-course-notebooks:gone"},
            headers={"Authorization": f"token {farm.token}"},
            timeout=10,
        )
        assert response.status_code == 502
        assert response.json()["error"] == "MissingImage: image ol-course-notebooks:gone not found"
        assert farm.count() == 0


def test_the_landing_check_names_what_is_wrong() -> None:
    url = "http://127.0.0.1:9/user/u-1/lab/tree/a%20b/n.ipynb"
    page = notebook_page(
        {"course": "intro-ml", "notebook": "a b/n.ipynb", "user": "u-1", "image": "i"}
    )
    check_landing(landing(url, page), "u-1", "intro-ml", "a b/n.ipynb")
    cases = [
        (landing(url, page), "data-analytics", "landed on course 'intro-ml', not 'data-analytics'"),
        (landing(url, "nope", 404), "intro-ml", "HTTP 404 at /user/<name>/lab/tree/a b/n.ipynb"),
        (
            landing(url, "<html><body>JupyterLab</body></html>"),
            "intro-ml",
            "/user/<name>/lab/tree/a b/n.ipynb is not a notebook page",
        ),
        (
            landing(url.replace("a%20b/n", "other"), page),
            "intro-ml",
            "ended at /user/<name>/lab/tree/other.ipynb, not at the notebook's URL",
        ),
    ]
    for response, course, reason in cases:
        with pytest.raises(VisitError) as raised:
            check_landing(response, "u-1", course, "a b/n.ipynb")
        assert str(raised.value) == reason


def test_notebook_pages_read_back_what_they_name() -> None:
    fields = {"course": 'a"<b>', "notebook": "x/&y.ipynb", "user": "u", "image": "r:t"}
    assert read_page(notebook_page(fields)) == fields
    assert read_page("<html><body data-course='x'></body></html>") is None


def visits(count: int, status: str = "ok", seconds: float = 0.5, reason: str = "") -> list[Visit]:
    return [
        Visit(
            "intro-ml", "n.ipynb", status, index * 0.1, index * 0.1 + seconds, reason, f"u{index}"
        )
        for index in range(count)
    ]


def test_the_tables_show_every_outcome_and_the_first_break() -> None:
    steady = Load("10/s for 1 s", 10, 1, "even")
    heavy = Load("20/s for 1 s", 20, 1, "even")
    report = CapacityReport(
        steps=[
            LoadResult(OURS, steady, visits(10), cpu={"hub": 0.6}),
            LoadResult(STOCK, steady, visits(10, seconds=3.0)),
            LoadResult(
                OURS,
                heavy,
                visits(15) + visits(5, "refused", reason="HTTP 429 at /hub/spawn"),
                log_problems=[("hub W: # pending spawns, throttling.", 5)],
            ),
        ]
    )
    text = render(report)
    assert "10/s for 1 s              ours          10       10        0        0" in text
    assert "ours: sustained 10 launches/s" in text
    assert "first break at 20/s for 1 s: 15/20 ok" in text
    assert "5 refused: HTTP 429 at /hub/spawn" in text
    assert "log, 5x: hub W: # pending spawns, throttling." in text
    # p95 over 2 s: not sustained, though nothing failed.
    assert "stock: sustained no stepped rate" in text
    assert "nothing broke up to 10/s" in text
    assert report.steps[0].cpu_per_launch("hub") == pytest.approx(0.06)
    assert comparison(report) == (["sustained rate: ours 10/s, stock 0/s (limit -10%)"], True)
    # Ours sustaining less than stock (by more than 10 %) misses the target.
    report.steps = [
        dataclasses.replace(r, hub=STOCK if r.hub == OURS else OURS) for r in report.steps
    ]
    assert comparison(report) == (["sustained rate: ours 0/s, stock 10/s (limit -10%)"], False)


def test_a_scenario_that_could_not_start_still_reports() -> None:
    assert render(CapacityReport()) == "capacity scenario: nothing ran"
    text = render(CapacityReport(error="PostgresUnavailable: not installed"))
    assert text == "capacity scenario stopped: PostgresUnavailable: not installed"
    assert comparison(CapacityReport(error="x")) == ([], False)
