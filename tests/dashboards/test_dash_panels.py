"""The dashboards' structure: descriptions, variables, layout, uids; pure functions of the catalog."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog import Catalog, parse_course
from catalog.course import SLUG_PATTERN
from dashboards.alerts import alert_rules
from dashboards.build import build, dashboards
from dashboards.common import ALL_COURSES, DEFAULTS, WHAT_TO_DO, Settings
from dashboards.views import substitute
from tests.dashboards.support import COURSES, expressions_of, make_catalog, panels_of

BOARDS = dashboards(make_catalog(), DEFAULTS)


#: Every panel of every dashboard, one case each (`<file> / <title>`).
PANELS = [
    pytest.param(panel, id=f"{name} / {panel['title']}")
    for name, data in BOARDS.items()
    for panel in panels_of(data)
]


def test_the_dashboards_have_their_panels() -> None:
    assert len(PANELS) >= 18


@pytest.mark.parametrize("panel", PANELS)
def test_every_panel_says_what_it_shows_and_what_to_do(panel: dict[str, Any]) -> None:
    shows, _, todo = (panel.get("description") or "").partition(WHAT_TO_DO)
    assert len(shows.strip()) >= 30, "says too little about what it shows"
    assert len(todo.strip()) >= 30, "says nothing about what to do"


@pytest.mark.parametrize("panel", PANELS)
def test_every_panel_queries_the_chosen_prometheus(panel: dict[str, Any]) -> None:
    assert panel["targets"], "no query"
    assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert all(t["datasource"] == panel["datasource"] for t in panel["targets"])
    assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


# (dashboard, a metric or selector of the issue) -> on one of its panels
ISSUE_METRICS = [
    *(
        ("courses.json", metric)
        for metric in (
            "kube_pod_container_info",
            "container_memory_working_set_bytes",
            "container_cpu_usage_seconds_total",
            'kube_pod_container_status_last_terminated_reason{namespace="jupyterhub", '
            'container="notebook", reason="OOMKilled"}',
            "kube_pod_container_status_restarts_total",
            "kube_pod_container_status_waiting_reason",
            'kube_pod_status_phase{namespace="jupyterhub", phase="Pending"}',
            "kube_pod_status_unschedulable",
            "DCGM_FI_DEV_GPU_UTIL",
            "DCGM_FI_DEV_FB_USED",
            "kube_pod_created",
        )
    ),
    *(
        ("hub.json", metric)
        for metric in (
            "jupyterhub_active_users",
            "jupyterhub_running_servers",
            "jupyterhub_server_spawn_duration_seconds_bucket",
            "jupyterhub_server_spawn_duration_seconds_count",
            "jupyterhub_request_duration_seconds_bucket",
            'container="hub"',
            'container="chp"',
        )
    ),
]


@pytest.mark.parametrize(
    "board, metric",
    [pytest.param(board, metric, id=f"{board} / {metric}") for board, metric in ISSUE_METRICS],
)
def test_the_issue_s_metrics_are_all_on_a_panel(board: str, metric: str) -> None:
    assert metric in " ".join(e for *_, e in expressions_of(BOARDS[board]))


def panel(board: str, title: str) -> dict[str, Any]:
    matches = [p for p in panels_of(BOARDS[board]) if p["title"] == title]
    assert len(matches) == 1, f"{board}: no single panel titled {title!r}"
    return matches[0]


@pytest.mark.parametrize(
    "board,title,unit",
    [
        # DCGM reports frame buffer memory in MiB: Grafana's `mbytes` (`decmbytes` is 10^6 B)
        ("courses.json", "GPU memory used per course", "mbytes"),
        ("courses.json", "Memory working set against the course limit", "bytes"),
        ("courses.json", "Memory: largest server as a share of the course limit", "percentunit"),
        ("courses.json", "GPU utilisation per course", "percentunit"),  # DCGM's 0-100, / 100
        ("courses.json", "Oldest server per course", "s"),
        ("courses.json", "OOM kills per course", "short"),
        ("courses.json", "Pods waiting for a node", "short"),
        ("hub.json", "Hub and proxy memory", "bytes"),
        ("hub.json", "Spawn duration (successful spawns)", "s"),
        ("hub.json", "Hub requests by status code", "reqps"),
    ],
)
def test_panel_units_match_what_the_metric_counts(board: str, title: str, unit: str) -> None:
    assert panel(board, title)["fieldConfig"]["defaults"]["unit"] == unit


@pytest.mark.parametrize(
    "alert,title",
    [
        ("CourseServerOOMKilled", "OOM kills per course"),
        ("CourseServersUnschedulable", "Pods waiting for a node"),
    ],
)
def test_alert_is_its_panel_s_query(alert: str, title: str) -> None:
    """Panel and alert come from one builder: the rule is the panel's query for every course
    over the alert window, above 0."""
    (target,) = panel("courses.json", title)["targets"]
    rule = next(r for r in alert_rules(DEFAULTS) if r["alert"] == alert)
    scope = {"course": ALL_COURSES, "__rate_interval": DEFAULTS.alert_window}
    assert rule["expr"] == substitute(target["expr"], scope) + " > 0"


def test_pods_waiting_for_a_node_panel_says_what_to_do() -> None:
    description = panel("courses.json", "Pods waiting for a node")["description"]
    shows, _, todo = description.partition(WHAT_TO_DO)
    assert "Pending" in shows and "kube_pod_status_unschedulable" in shows and "GPU" in shows
    assert "kubectl describe pod" in todo and "CourseServersUnschedulable" in todo


def test_course_variable_lists_the_catalog() -> None:
    variables = {v["name"]: v for v in BOARDS["courses.json"]["templating"]["list"]}
    course = variables["course"]
    assert [o["value"] for o in course["options"]] == list(COURSES)
    assert course["multi"] and course["includeAll"] and course["allValue"] == ".+"
    assert variables["datasource"]["type"] == "datasource"


def _queries(board: str) -> list[Any]:
    return [
        pytest.param(expr, id=f"{title} / {ref}")
        for title, ref, expr in expressions_of(BOARDS[board])
    ]


#: Courses panels about the whole stack, not some courses: no course variable.
STACK_WIDE = {"Kept work storage against its quota"}


@pytest.mark.parametrize(
    "expr",
    [
        pytest.param(expr, id=f"{title} / {ref}")
        for title, ref, expr in expressions_of(BOARDS["courses.json"])
        if title not in STACK_WIDE
    ],
)
def test_every_courses_query_follows_the_course_variable(expr: str) -> None:
    assert 'label_course=~"$course"' in expr


def test_the_stack_wide_panels_are_there() -> None:
    titles = {title for title, _, _ in expressions_of(BOARDS["courses.json"])}
    assert STACK_WIDE <= titles


@pytest.mark.parametrize("expr", _queries("hub.json"))
def test_no_hub_query_has_the_course_variable(expr: str) -> None:
    assert "$course" not in expr


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_layout_fills_a_24_column_grid_without_overlaps(name: str) -> None:
    data = BOARDS[name]
    cells: dict[tuple[int, int], str] = {}
    ids = [panel["id"] for panel in data["panels"]]
    assert ids == list(range(1, len(ids) + 1))
    for panel in data["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_uids_and_titles_are_stable() -> None:
    assert {name: (d["uid"], d["title"]) for name, d in BOARDS.items()} == {
        "courses.json": ("ol-courses", "Courses"),
        "hub.json": ("ol-hub", "Hub"),
    }
    assert all(d["id"] is None and d["version"] == 0 for d in BOARDS.values())


def test_memory_limits_come_from_the_catalog() -> None:
    bigger = make_catalog({"ml": COURSES["ml"].replace('"4Gi"', '"16Gi"')})
    exprs = " ".join(
        e for *_, e in expressions_of(json.loads(build(bigger, DEFAULTS)["courses.json"]))
    )
    assert f'label_replace(vector({16 * 2**30}), "course", "ml", "", "")' in exprs
    assert "intro-python" not in exprs


def test_the_gpu_panel_names_the_courses_and_notebooks_that_ask_for_a_gpu() -> None:
    """`gpu = true`: the course; `gpu = [notebooks]`: how many of its notebooks plan a GPU."""
    files = ["01.ipynb", "02.ipynb", "requirements.txt"]
    text = 'title = "T"\nflavor = "pytorch"\nnotebooks = ["01.ipynb", "02.ipynb"]\n'
    catalog = Catalog(
        (
            parse_course("all-gpu", text + "gpu = true\n", files),
            parse_course("some-gpu", text + 'gpu = ["02.ipynb"]\n', files),
            parse_course("no-gpu", text, files),
        )
    )
    board = json.loads(build(catalog, DEFAULTS)["courses.json"])
    (description,) = (
        p["description"] for p in panels_of(board) if p["title"] == "GPU utilisation per course"
    )
    assert "Courses asking for a GPU: all-gpu, some-gpu (1 of 2 notebooks)." in description


def test_settings_reach_panels_and_rules() -> None:
    custom = Settings(namespace="hub-staging", culler_max_age_seconds=7200, spawn_failure_ratio=0.5)
    exprs = " ".join(
        e for data in dashboards(make_catalog(), custom).values() for *_, e in expressions_of(data)
    )
    assert 'namespace="hub-staging"' in exprs and 'namespace="jupyterhub"' not in exprs
    assert "> 7200)" in exprs
    rules = {r["alert"]: r["expr"] for r in alert_rules(custom)}
    assert rules["SpawnFailureRatioHigh"].endswith("> 0.5")
    assert rules["CourseServerPastMaxAge"].endswith(f"> {7200 + custom.culler_slack_seconds}) > 0")


def test_substitute_replaces_only_known_variables() -> None:
    expr = 'label_replace(x{a=~"$course"}[$__rate_interval], "c", "$1", "l", "(.+)") ${course}'
    assert substitute(expr, {"course": "ml", "__rate_interval": "5m"}) == (
        'label_replace(x{a=~"ml"}[5m], "c", "$1", "l", "(.+)") ml'
    )


SLUGS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=22).filter(
    lambda slug: SLUG_PATTERN.match(slug) is not None
)
MEMORY = st.sampled_from(["512Mi", "1Gi", "2G", "3500M", "16Gi"])


@st.composite
def catalogs(draw: st.DrawFn) -> Catalog:
    slugs = draw(st.lists(SLUGS, unique=True, max_size=6))
    courses = {
        slug: f'title = "T"\nflavor = "pytorch"\ngpu = {str(draw(st.booleans())).lower()}\n'
        f'notebooks = ["01.ipynb"]\n[resources]\nmemory_limit = "{draw(MEMORY)}"\n'
        for slug in sorted(slugs)
    }
    return make_catalog(courses)


@settings(max_examples=40, deadline=None, database=None)
@given(catalogs())
def test_any_catalog_builds_deterministically(catalog: Catalog) -> None:
    first, second = build(catalog, DEFAULTS), build(catalog, DEFAULTS)
    assert first == second
    data = json.loads(first["courses.json"])
    course = next(v for v in data["templating"]["list"] if v["name"] == "course")
    assert [o["value"] for o in course["options"]] == list(catalog.slugs)
    exprs = [e for *_, e in expressions_of(data)]
    for expr in exprs:
        assert expr.count("(") == expr.count(")"), expr
    for slug in catalog.slugs:
        limit = catalog[slug].resources.memory_limit
        assert any(
            f'label_replace(vector({limit}), "course", "{slug}", "", "")' in e for e in exprs
        )
    # the alert rules do not depend on the catalog
    assert first["alert-rules.yaml"] == build(make_catalog({}), DEFAULTS)["alert-rules.yaml"]


def test_an_empty_catalog_still_gives_valid_dashboards() -> None:
    """No courses yet: the limits are an empty vector (promtool checks these in test_dash_promql)."""
    data = json.loads(build(make_catalog({}), DEFAULTS)["courses.json"])
    assert len(panels_of(data)) == len(panels_of(BOARDS["courses.json"]))
    exprs = [e for *_, e in expressions_of(data)]
    assert any("(vector(0) unless on () vector(0))" in e for e in exprs)
    assert next(v for v in data["templating"]["list"] if v["name"] == "course")["options"] == []


def test_dcgm_labels_can_be_mapped_to_the_pod() -> None:
    """Without honor_labels, Prometheus renames DCGM's pod labels to exported_*."""
    custom = Settings(dcgm_pod_label="exported_pod", dcgm_namespace_label="exported_namespace")
    exprs = [e for t, _, e in expressions_of(dashboards(make_catalog(), custom)["courses.json"])]
    gpu = [e for e in exprs if "DCGM_FI_DEV_GPU_UTIL" in e]
    assert gpu and all(
        'label_replace(DCGM_FI_DEV_GPU_UTIL, "pod", "$1", "exported_pod", "(.+)")' in e
        and '"namespace", "$1", "exported_namespace", "(.+)")' in e
        for e in gpu
    )
