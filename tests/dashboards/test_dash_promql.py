"""Every PromQL expression of every panel and rule, checked by a real Prometheus.

`promtool check rules` parses each one; then a Prometheus loaded with synthetic
kube-state-metrics, cAdvisor, DCGM and JupyterHub series (see support.py) must return data for
every panel's query, and the right numbers for the ones that join series to courses.

Then a Prometheus loaded with the recording of real series that `./pants run
dashboards:pictures` made (tests/dashboards/recording/: the local hub's /hub/metrics under a
short load) must return data, over the recording, for every panel query whose metrics' source
the recording has; a query reading a metric the recording lacks although it has its source (a
renamed metric) fails too. So a renamed metric shows up here before a person sees an empty
panel. The binaries come from Debian's `prometheus` package; without them these tests are
skipped (a failure with CI set, tests/conftest.py).
"""

from __future__ import annotations

import gzip
import json
import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalog import Catalog
from dashboards.alerts import rules_yaml
from dashboards.build import dashboards
from dashboards.common import DEFAULTS
from dashboards.views import (
    grafana_intervals,
    metric_names,
    recording_gaps,
    substitute,
    variables,
)
from tests.dashboards.support import (
    PrometheusServer,
    expressions_of,
    make_catalog,
    running_prometheus,
)

ALL = {"course": ".+", "__rate_interval": "5m", "__interval": "1m", "__range": "1h"}


def panel_queries(catalog: Catalog | None = None) -> list[tuple[str, str, str, str]]:
    """(dashboard file, panel title, refId, expr) for every target of every dashboard."""
    return [
        (name, title, ref, expr)
        for name, data in dashboards(catalog or make_catalog(), DEFAULTS).items()
        for title, ref, expr in expressions_of(data)
    ]


QUERIES = panel_queries()


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"`{name}` is not on PATH: install Debian's `prometheus` package (CI does)")
    return path


@pytest.fixture(scope="module")
def promtool() -> str:
    return binary("promtool")


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "alert-rules.yaml"
    path.write_text(rules_yaml(DEFAULTS))
    return path


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, promtool: str, rules_file: Path
) -> Iterator[PrometheusServer]:
    work = tmp_path_factory.mktemp("prometheus")
    with running_prometheus(work, promtool, binary("prometheus"), (rules_file,)) as server:
        yield server


def by_course(result: list[dict[str, Any]]) -> dict[str, float]:
    return {series["metric"].get("course", ""): float(series["value"][1]) for series in result}


def test_there_are_queries_to_check() -> None:
    assert len(QUERIES) >= 20
    assert all(expr.strip() for *_, expr in QUERIES)


@pytest.mark.parametrize("courses", ["example", "none"])
def test_every_panel_expression_passes_promtool_check_rules(
    promtool: str, tmp_path: Path, courses: str
) -> None:
    queries = QUERIES if courses == "example" else panel_queries(make_catalog({}))
    rules = [
        {
            "record": f"panel:{name.split('.')[0]}_{index}:{ref.lower()}",
            "expr": substitute(expr, ALL),
        }
        for index, (name, _title, ref, expr) in enumerate(queries)
    ]
    path = tmp_path / "panels.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    check = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(rules)} rules found" in check.stdout


def test_promtool_check_rules_catches_a_broken_expression(promtool: str, tmp_path: Path) -> None:
    """The check above can fail: a panel query with a syntax error is refused."""
    path = tmp_path / "broken.yaml"
    rule = {
        "record": "panel:broken",
        "expr": substitute("sum by (course) (rate(x[$__rate_interval])", ALL),
    }
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": [rule]}]}))
    check = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert check.returncode != 0


def test_generated_alert_rules_pass_promtool_check_rules(promtool: str, rules_file: Path) -> None:
    check = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 7 rules found" in check.stdout


@pytest.mark.parametrize(
    "name,title,ref,expr", QUERIES, ids=[f"{n}:{t}:{r}" for n, t, r, _ in QUERIES]
)
def test_panel_query_returns_data(
    prometheus: PrometheusServer, name: str, title: str, ref: str, expr: str
) -> None:
    result = prometheus.query(substitute(expr, ALL))
    assert result, f"{name} / {title} / {ref} returned no data for {substitute(expr, ALL)}"


def test_prometheus_loaded_every_alert_rule(prometheus: PrometheusServer) -> None:
    groups = prometheus.get("/api/v1/rules")["data"]["groups"]
    rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(rules) == {
        "CourseServerOOMKilled",
        "SpawnFailureRatioHigh",
        "CourseImagePullBackOff",
        "CourseServersUnschedulable",
        "KeptWorkNearQuota",
        "HubDown",
        "CourseServerPastMaxAge",
    }
    assert all(rule["health"] != "err" for rule in rules.values()), rules


def test_kept_work_is_counted_and_summed_per_course(prometheus: PrometheusServer) -> None:
    """Kept-work claims joined to their course by the claims' labels (support.KEPT_CLAIMS)."""
    volumes = query_panel(prometheus, "Kept work volumes per course", ".+")
    assert {s["metric"]["course"]: float(s["value"][1]) for s in volumes} == {
        "intro-python": 2.0,
        "ml": 1.0,
    }
    used = query_panel(prometheus, "Kept work bytes per course", "ml")
    assert {s["metric"]["course"]: float(s["value"][1]) for s in used} == {"ml": 900e6}
    quota = query_panel(prometheus, "Kept work storage against its quota", ".+")
    assert [float(s["value"][1]) for s in quota] == [3 / 500]


def query_panel(
    prometheus: PrometheusServer, title: str, course: str, ref: str = "A"
) -> list[dict[str, Any]]:
    matches = [expr for _, t, r, expr in QUERIES if t == title and r == ref]
    assert len(matches) == 1, f"no single panel titled {title!r}"
    return prometheus.query(substitute(matches[0], {**ALL, "course": course}))


def test_course_variable_selects_one_course_exactly(prometheus: PrometheusServer) -> None:
    """`ml` must not also select `ml-advanced`, although one slug starts with the other."""
    result = query_panel(prometheus, "Memory working set against the course limit", "ml")
    assert {(s["metric"]["course"], s["metric"]["pod"]) for s in result} == {
        ("ml", "jupyter-carol")
    }


def test_multi_value_course_variable(prometheus: PrometheusServer) -> None:
    """Grafana writes a multi-value selection as `(a|b)`."""
    result = query_panel(prometheus, "CPU used per course", "(ml|deep-learning)")
    assert by_course(result) == pytest.approx({"ml": 1.0, "deep-learning": 3.0})


def test_running_servers_per_image_skip_pending_and_non_course_pods(
    prometheus: PrometheusServer,
) -> None:
    result = query_panel(prometheus, "Running servers per course image", ".+")
    counts = {(s["metric"]["course"], s["metric"]["image"]): s["value"][1] for s in result}
    assert counts == {
        (course, f"registry.example/ol-course-notebooks:{course}-1a2b3c4d"): "1"
        for course in ("intro-python", "deep-learning", "ml", "ml-advanced")
    }


def test_memory_share_uses_each_course_limit_from_the_catalog(prometheus: PrometheusServer) -> None:
    result = query_panel(prometheus, "Memory: largest server as a share of the course limit", ".+")
    assert by_course(result) == pytest.approx(
        {"intro-python": 0.75, "deep-learning": 0.875, "ml": 0.5, "ml-advanced": 0.25}
    )


def test_memory_limit_lines_only_for_courses_with_servers(prometheus: PrometheusServer) -> None:
    result = query_panel(
        prometheus, "Memory working set against the course limit", "ml|ml-advanced", "B"
    )
    assert by_course(result) == {"ml": 4 * 2**30, "ml-advanced": 4 * 2**30}


def test_cpu_share_of_limit(prometheus: PrometheusServer) -> None:
    result = query_panel(prometheus, "CPU: busiest server as a share of the course limit", ".+")
    assert by_course(result) == pytest.approx(
        {"intro-python": 0.5, "deep-learning": 0.75, "ml": 0.5, "ml-advanced": 0.1}
    )


def test_old_servers_oom_kills_and_image_pulls_name_their_course(
    prometheus: PrometheusServer,
) -> None:
    old = query_panel(prometheus, "Servers older than the culler's maximum age", ".+")
    assert by_course(old) == {"deep-learning": 1}
    oom = query_panel(prometheus, "OOM kills per course", ".+")
    assert by_course(oom) == {"intro-python": 1}  # not ml-advanced: killed 110 min ago
    unschedulable = query_panel(prometheus, "Pods waiting for a node", ".+")
    assert by_course(unschedulable) == {"deep-learning": 1}  # erin is Pending, but scheduled
    waiting = query_panel(prometheus, "Pods waiting on image pulls", ".+")
    assert [(s["metric"]["course"], s["metric"]["reason"]) for s in waiting] == [
        ("intro-python", "ImagePullBackOff")
    ]
    gpu = query_panel(prometheus, "GPU utilisation per course", ".+")
    assert by_course(gpu) == pytest.approx({"deep-learning": 0.8})


def test_spawn_failure_ratio_ignores_already_pending(prometheus: PrometheusServer) -> None:
    ratio = query_panel(prometheus, "Spawn failure ratio", ".+")
    # failures 1/600 s against successes 1/60 s; the already-pending clicks do not count
    assert float(ratio[0]["value"][1]) == pytest.approx(1 / 11, rel=0.05)


def test_spawn_duration_median(prometheus: PrometheusServer) -> None:
    median = query_panel(prometheus, "Spawn duration (successful spawns)", ".+")
    # 20% of spawns under 5 s, 60% under 10 s: the median interpolates to 8.75 s
    assert float(median[0]["value"][1]) == pytest.approx(8.75, rel=0.01)


# --- The recording of real series (dashboards:pictures) ------------------------------------

RECORDING = Path(__file__).resolve().parent / "recording"


def recording() -> tuple[str, dict[str, Any]]:
    """The recorded OpenMetrics text and its facts (start, end, scrape interval, metrics)."""
    with gzip.open(RECORDING / "series.om.gz", "rt", encoding="utf-8") as text:
        series = text.read()
    return series, json.loads((RECORDING / "facts.json").read_text())


SERIES, FACTS = recording()
RECORDED = set(FACTS["metrics"])
#: The panel queries the recording can check: those whose metrics' sources it has.
CHECKED = [
    (name, title, ref, expr)
    for name, title, ref, expr in QUERIES
    if metric_names(expr) <= RECORDED or recording_gaps(metric_names(expr), RECORDED)
]


def shifted(text: str, seconds: float) -> str:
    """OpenMetrics text with every sample's timestamp moved by `seconds` (the recording, moved
    to just before now: Prometheus drops blocks older than its retention)."""
    lines = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            head, stamp = line.rsplit(" ", 1)
            line = f"{head} {float(stamp) + seconds:.3f}"
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def recorded(
    tmp_path_factory: pytest.TempPathFactory, promtool: str
) -> Iterator[tuple[PrometheusServer, float, float]]:
    """A Prometheus serving the recording, and the recording's start and end there."""
    work = tmp_path_factory.mktemp("recorded")
    by = math.floor(time.time()) - 120 - FACTS["end"]
    data = (shifted(SERIES, by), FACTS["end"] + by)
    with running_prometheus(work, promtool, binary("prometheus"), data=data) as server:
        yield server, FACTS["start"] + by, FACTS["end"] + by


def assert_returns_data(
    server: PrometheusServer, start: float, end: float, label: str, expr: str
) -> None:
    """`expr` as Grafana would run it over [start, end] returns at least one value."""
    gaps = recording_gaps(metric_names(expr), RECORDED)
    assert not gaps, (
        f"{label} reads {', '.join(gaps)}, which the recording lacks although it has their "
        "source: renamed? (or re-record with `./pants run dashboards:pictures`)"
    )
    interval, step, rate = grafana_intervals(end - start, 100, FACTS["scrape_seconds"])
    query = substitute(expr, variables(interval, rate, end - start))
    result = server.query_range(query, start, end, step)
    values = [float(v) for series in result for _, v in series["values"]]
    assert any(not math.isnan(v) for v in values), f"{label} returned no data for {query}"


def test_the_recording_checks_the_hub_panels() -> None:
    """The recording has real hub series, and they cover most of the Hub dashboard's queries."""
    assert {
        "jupyterhub_active_users",
        "jupyterhub_server_spawn_duration_seconds_bucket",
    } <= RECORDED
    hub = [q for q in QUERIES if q[0] == "hub.json"]
    # Every Hub query but the hub's and proxy's container metrics (cAdvisor: Kubernetes only).
    assert [q for q in CHECKED if q[0] == "hub.json"] == [
        q for q in hub if not any(m.startswith("container_") for m in metric_names(q[3]))
    ]
    assert len(hub) - len([q for q in CHECKED if q[0] == "hub.json"]) == 4
    assert FACTS["end"] - FACTS["start"] >= 120


@pytest.mark.parametrize(
    "name,title,ref,expr", CHECKED, ids=[f"{n}:{t}:{r}" for n, t, r, _ in CHECKED]
)
def test_panel_query_returns_data_from_the_recording(
    recorded: tuple[PrometheusServer, float, float], name: str, title: str, ref: str, expr: str
) -> None:
    server, start, end = recorded
    assert_returns_data(server, start, end, f"{name} / {title} / {ref}", expr)


def test_the_recording_check_fails_on_a_renamed_metric_or_label(
    recorded: tuple[PrometheusServer, float, float],
) -> None:
    """The check above can fail: a metric renamed in a query, or a label the series lack."""
    server, start, end = recorded
    expr = next(e for n, t, _, e in QUERIES if t == "Active users")
    assert_returns_data(server, start, end, "as built", expr)
    with pytest.raises(AssertionError, match="renamed"):
        assert_returns_data(server, start, end, "renamed", expr.replace("_users", "_user"))
    with pytest.raises(AssertionError, match="returned no data"):
        assert_returns_data(server, start, end, "label", expr.replace('job="hub"', 'job="hubs"'))
