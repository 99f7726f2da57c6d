"""What the dashboards' pictures show (dashboards/views.py): units, threshold colours, legends,
axes, Grafana's intervals, and which panels say "no data here" and why. Tables of input and
output; the panels are the real ones from dashboards.build."""

from __future__ import annotations

import math
from typing import Any

import pytest

from dashboards import views
from dashboards.build import dashboards
from dashboards.common import DEFAULTS
from tests.dashboards.support import make_catalog, panels_of

BOARDS = dashboards(make_catalog(), DEFAULTS)
HUB_METRICS = {
    "up",
    "jupyterhub_active_users",
    "jupyterhub_running_servers",
    "jupyterhub_server_spawn_duration_seconds_bucket",
    "jupyterhub_server_spawn_duration_seconds_count",
    "jupyterhub_request_duration_seconds_bucket",
    "jupyterhub_request_duration_seconds_count",
}


def panel(board: str, title: str) -> dict[str, Any]:
    found = [p for p in panels_of(BOARDS[board]) if p["title"] == title]
    assert len(found) == 1, title
    return found[0]


@pytest.mark.parametrize(
    "value,unit,shown",
    [
        (0, "short", "0"),
        (3, "short", "3"),
        (2.5, "short", "2.5"),
        (0.126, "short", "0.13"),
        (1234, "short", "1.23 K"),
        (2_500_000, "short", "2.5 Mil"),
        (0.25, "s", "250 ms"),
        (0.0004, "s", "400 µs"),
        (8.75, "s", "8.75 s"),
        (90, "s", "1.5 min"),
        (10 * 3600, "s", "10 hour"),
        (0.2, "percentunit", "20%"),
        (0.0909, "percentunit", "9.09%"),
        (1, "percentunit", "100%"),
        (80, "percent", "80%"),
        (512, "bytes", "512 B"),
        (1536, "bytes", "1.5 KiB"),
        (2 * 2**30, "bytes", "2 GiB"),
        (300e6, "bytes", "286 MiB"),
        (4000, "mbytes", "3.91 GiB"),
        (512, "mbytes", "512 MiB"),
        (1500, "decmbytes", "1.5 GB"),
        (2.0, "reqps", "2 req/s"),
        (0.5, "reqps", "0.5 req/s"),
        (3, "watt", "3 watt"),
        (None, "s", "-"),
        (float("nan"), "short", "NaN"),
        (float("inf"), "s", "+Inf"),
    ],
)
def test_format_value(value: float | None, unit: str, shown: str) -> None:
    assert views.format_value(value, unit) == shown


RATIO = views.threshold_steps(panel("hub.json", "Spawn failure ratio"))


@pytest.mark.parametrize(
    "value,steps,shade",
    [
        (0.1, RATIO, views.NAMED_COLORS["green"]),
        (0.2, RATIO, views.NAMED_COLORS["red"]),  # reaching the threshold is past it
        (0.5, RATIO, views.NAMED_COLORS["red"]),
        (None, RATIO, views.NAMED_COLORS["text"]),
        (float("nan"), RATIO, views.NAMED_COLORS["text"]),
        (5, [], views.NAMED_COLORS["text"]),
        (5, [(None, "green"), (3, "#FF0000"), (10, "red")], "#FF0000"),
        (-1, [(None, "blue"), (0, "red")], "blue"),
    ],
)
def test_threshold_color(value: float | None, steps: list[Any], shade: str) -> None:
    assert views.threshold_color(value, steps) == shade


def test_threshold_steps_come_from_the_panel() -> None:
    assert RATIO == [(None, views.NAMED_COLORS["green"]), (0.2, views.NAMED_COLORS["red"])]
    assert views.threshold_steps(panel("hub.json", "Active users")) == []


@pytest.mark.parametrize(
    "expr,names",
    [
        ('up{job="hub", namespace="jupyterhub"}', {"up"}),
        (
            'histogram_quantile(0.5, sum by (le) (rate(jupyterhub_server_spawn_duration_seconds_bucket{job="hub", status="success"}[5m])))',
            {"jupyterhub_server_spawn_duration_seconds_bucket"},
        ),
        ('label_replace(vector(2), "course", "ml", "", "")', set()),
        ('x{a="not_a_metric{b}"} / y{}', {"x", "y"}),
        ("sum(rate(a[5m]))", {"a"}),
        (
            'avg by (course) (label_replace(DCGM_FI_DEV_GPU_UTIL, "pod", "$1", "exported_pod", '
            '"(.+)") * on (namespace, pod) group_left (label_course) max by (namespace, pod) '
            '(kube_pod_labels{a="b"})) / 100',
            {"DCGM_FI_DEV_GPU_UTIL", "kube_pod_labels"},
        ),
        ("time() - kube_pod_created > 3600", {"kube_pod_created"}),
        ("(a > bool 1) and on () b unless c offset 5m", {"a", "b", "c"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert views.metric_names(expr) == names


@pytest.mark.parametrize(
    "metric,source",
    [
        ("jupyterhub_active_users", "the hub's /hub/metrics"),
        ("up", "the hub's /hub/metrics"),
        ("uptime", "an exporter of uptime"),
        ("kube_pod_labels", "kube-state-metrics (Kubernetes)"),
        ("container_memory_working_set_bytes", "cAdvisor's container metrics (the kubelet)"),
        ("DCGM_FI_DEV_GPU_UTIL", "the DCGM exporter (NVIDIA GPUs)"),
        ("node_cpu_seconds_total", "a node exporter"),
    ],
)
def test_source_of(metric: str, source: str) -> None:
    assert views.source_of(metric) == source


@pytest.mark.parametrize(
    "needed,present,reason",
    [
        (
            {"container_cpu_usage_seconds_total"},
            HUB_METRICS,
            "no data here: needs cAdvisor's container metrics (the kubelet)",
        ),
        (
            {"kube_pod_labels", "container_memory_working_set_bytes", "kube_pod_created"},
            HUB_METRICS,
            "no data here: needs cAdvisor's container metrics (the kubelet) and "
            "kube-state-metrics (Kubernetes)",
        ),
        (
            {"jupyterhub_server_spawn_duration_seconds_count"},
            HUB_METRICS,
            "no data here: its series exist, but none matched during the run",
        ),
        (
            {"jupyterhub_active_users"},
            set(),
            "no data here: needs the hub's /hub/metrics",
        ),
    ],
)
def test_no_data_reason(needed: set[str], present: set[str], reason: str) -> None:
    assert views.no_data_reason(needed, present) == reason


def panel_reasons(board: str, present: set[str]) -> dict[str, str]:
    """Panel title -> its picture's sentence, when no query returned anything."""
    view = views.dashboard_view(BOARDS[board], {}, present, 0, 600)
    return {p["title"]: p.get("message", "") for p in view["panels"] if p["type"] != "row"}


def test_with_the_hub_alone_every_panel_names_its_missing_source() -> None:
    """Here (the hub's metrics, no Kubernetes): which panels say "no data here" and why."""
    hub = panel_reasons("hub.json", HUB_METRICS)
    cadvisor = "no data here: needs cAdvisor's container metrics (the kubelet)"
    assert hub["Hub and proxy CPU"] == hub["Hub and proxy memory"] == cadvisor
    assert hub["Active users"] == "no data here: its series exist, but none matched during the run"
    courses = panel_reasons("courses.json", HUB_METRICS)
    assert all("kube-state-metrics (Kubernetes)" in reason for reason in courses.values())
    assert "the DCGM exporter (NVIDIA GPUs)" in courses["GPU utilisation per course"]
    assert "cAdvisor" not in courses["Pods waiting for a node"]


@pytest.mark.parametrize(
    "legend,labels,name",
    [
        ("{{period}}", {"period": "24h"}, "24h"),
        ("{{status}} {{reason}}", {"status": "failure", "reason": ""}, "failure"),
        ("{{ course }} limit", {"course": "ml"}, "ml limit"),
        ("hub {{pod}}", {}, "hub"),
        ("p95", {"job": "hub"}, "p95"),
        ("", {"__name__": "up", "job": "hub"}, 'up{job="hub"}'),
        ("", {}, "{}"),
    ],
)
def test_legend_label(legend: str, labels: dict[str, str], name: str) -> None:
    assert views.legend_label(legend, labels) == name


@pytest.mark.parametrize(
    "points,calc,value",
    [
        ([1.0, 3.0, None, 2.0], "lastNotNull", 2.0),
        ([1.0, 3.0, 2.0, None], "lastNotNull", 2.0),
        ([1.0, 3.0, float("nan")], "max", 3.0),
        ([None, None], "max", None),
        ([1.0, 3.0], "mean", 2.0),
    ],
)
def test_reduce(points: list[float | None], calc: str, value: float | None) -> None:
    assert views.reduce(points, calc) == value


@pytest.mark.parametrize(
    "top,unit,axis_top,labels",
    [
        (3, "short", 3, ["0", "1", "2", "3"]),
        (7, "short", 8, ["0", "2", "4", "6", "8"]),
        (0.0909, "percentunit", 0.1, ["0%", "2.5%", "5%", "7.5%", "10%"]),
        (0, "short", 1, ["0", "0.25", "0.5", "0.75", "1"]),
        (2.2 * 2**30, "bytes", 3e9, ["0 B", "954 MiB", "1.86 GiB", "2.79 GiB"]),
    ],
)
def test_value_ticks(top: float, unit: str, axis_top: float, labels: list[str]) -> None:
    got_top, ticks = views.value_ticks(top, unit)
    assert got_top == pytest.approx(axis_top)
    assert [label for _, label in ticks] == labels


@pytest.mark.parametrize(
    "start,end,labels",
    [
        (1_800_000_000, 1_800_000_000 + 420, ["08:00", "08:02", "08:04", "08:06"]),
        (
            1_800_000_030,
            1_800_000_000 + 3600,
            ["08:10", "08:20", "08:30", "08:40", "08:50", "09:00"],
        ),
    ],
)
def test_time_ticks(start: float, end: float, labels: list[str]) -> None:
    assert [label for _, label in views.time_ticks(start, end)] == labels


@pytest.mark.parametrize(
    "span,points,scrape,factor,intervals",
    [
        (420, 100, 5, 1, (5, 5, 20)),
        (420, 100, 5, 2, (5, 10, 20)),
        (6 * 3600, 100, 30, 2, (216, 432, 246)),
        (3600, 100, 15, 1, (36, 36, 60)),
    ],
)
def test_grafana_intervals(
    span: float, points: int, scrape: float, factor: int, intervals: tuple[int, int, int]
) -> None:
    assert views.grafana_intervals(span, points, scrape, factor) == intervals


def matrix(labels: dict[str, str], values: list[float]) -> dict[str, Any]:
    return {"metric": labels, "values": [[100 + 10 * i, str(v)] for i, v in enumerate(values)]}


def test_a_time_series_panel_with_data() -> None:
    ratio = panel("hub.json", "Spawn failure ratio")
    view = views.panel_view(ratio, {"A": [matrix({}, [0, 0.5, 0.25])]}, HUB_METRICS, 100, 120)
    assert "message" not in view
    assert view["unit"] == "percentunit"
    assert [s["label"] for s in view["series"]] == ["failure ratio"]
    assert view["series"][0]["values"] == [0, 0.5, 0.25]
    assert view["thresholds"] == [{"value": 0.2, "color": views.NAMED_COLORS["red"]}]
    assert view["legend"]["columns"] == ["", "Last *", "Max"]
    assert view["legend"]["rows"] == [[views.PALETTE[0], "failure ratio", "25%", "50%"]]
    assert view["ymax"] == pytest.approx(0.6)  # a round top above the largest value


def test_series_of_every_target_get_palette_colours_in_query_order() -> None:
    running = panel("hub.json", "Running servers and hub up")
    results = {"A": [matrix({}, [1, 2])], "B": [matrix({"job": "hub"}, [1, 1])]}
    view = views.panel_view(running, results, HUB_METRICS, 100, 110)
    assert [(s["label"], s["color"]) for s in view["series"]] == [
        ("running servers", views.PALETTE[0]),
        ("hub up", views.PALETTE[1]),
    ]


def test_stacked_panels_scale_to_the_sum() -> None:
    codes = panel("hub.json", "Hub requests by status code")
    results = {"A": [matrix({"code": "200"}, [2, 3]), matrix({"code": "302"}, [1, 1.5])]}
    view = views.panel_view(codes, results, HUB_METRICS, 100, 110)
    assert view["stacked"] and view["fill"] == 0.3
    assert view["ymax"] >= 4.5


def test_stat_and_table_panels() -> None:
    base = panel("hub.json", "Spawn failure ratio")
    stat = views.panel_view({**base, "type": "stat"}, {"A": [matrix({}, [0.1, 0.3])]}, set(), 0, 1)
    assert (stat["value"], stat["color"]) == ("30%", views.NAMED_COLORS["red"])
    table = views.panel_view(
        {**base, "type": "table"}, {"A": [matrix({}, [0.1, 0.05])]}, set(), 0, 1
    )
    assert table["rows"] == [["failure ratio", "5%"]]
    other = views.panel_view({**base, "type": "heatmap"}, {"A": [matrix({}, [1])]}, set(), 0, 1)
    assert other["message"] == "panel type 'heatmap' is not drawn here"


def test_dashboard_view_keeps_every_panel_in_its_grid_place() -> None:
    board = BOARDS["courses.json"]
    view = views.dashboard_view(board, {}, set(), 1_800_000_000, 1_800_000_600, "note")
    assert [(p["title"], p["grid"]) for p in view["panels"]] == [
        (p["title"], p["gridPos"]) for p in board["panels"]
    ]
    assert view["height"] == max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in board["panels"])
    assert view["subtitle"] == "2027-01-15 08:00–08:10 UTC. note"
    assert not math.isnan(view["height"])


@pytest.mark.parametrize(
    "needed,recorded,gaps",
    [
        ({"jupyterhub_active_users"}, HUB_METRICS, []),
        ({"jupyterhub_active_user"}, HUB_METRICS, ["jupyterhub_active_user"]),
        ({"kube_pod_labels", "container_cpu_usage_seconds_total"}, HUB_METRICS, []),
        ({"up", "kube_pod_labels"}, {"jupyterhub_running_servers"}, ["up"]),
        ({"jupyterhub_active_users"}, set(), []),
    ],
)
def test_recording_gaps(needed: set[str], recorded: set[str], gaps: list[str]) -> None:
    assert views.recording_gaps(needed, recorded) == gaps
