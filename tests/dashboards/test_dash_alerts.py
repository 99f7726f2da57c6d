"""The generated alert rules, unit-tested with `promtool test rules` (Debian's `prometheus`).

Each alert gets a case where it must fire with the right labels and annotations, and the
healthy series of every case together must fire nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.alerts import alert_rules, rules_yaml
from dashboards.build import dashboards
from dashboards.common import ALL_COURSES, Settings
from dashboards.views import substitute
from tests.dashboards.support import expressions_of, make_catalog

NS = Settings().namespace
# Small numbers so the cases stay short: the culler's max age is 1 h, plus 10 min of slack.
SETTINGS = Settings(culler_max_age_seconds=3600, culler_slack_seconds=600, alert_window="10m")
ALERTS = [rule["alert"] for rule in alert_rules(SETTINGS)]


def pod(name: str, course: str) -> dict[str, str]:
    """kube_pod_labels for a learner pod of `course`, present for the whole test."""
    return {
        "series": f'kube_pod_labels{{namespace="{NS}", pod="{name}", label_course="{course}"}}',
        "values": "1x120",
    }


def container(metric: str, name: str, values: str, **labels: str) -> dict[str, str]:
    extra = "".join(f', {key}="{value}"' for key, value in labels.items())
    selector = f'{metric}{{namespace="{NS}", pod="{name}", container="notebook"{extra}}}'
    return {"series": selector, "values": values}


def pod_status(metric: str, name: str, values: str, **labels: str) -> dict[str, str]:
    extra = "".join(f', {key}="{value}"' for key, value in labels.items())
    return {"series": f'{metric}{{namespace="{NS}", pod="{name}"{extra}}}', "values": values}


def created(name: str, values: str) -> dict[str, str]:
    return {"series": f'kube_pod_created{{namespace="{NS}", pod="{name}"}}', "values": values}


def spawns(status: str, reason: str, values: str) -> dict[str, str]:
    labels = f'job="hub", namespace="{NS}", status="{status}", reason="{reason}"'
    return {
        "series": f"jupyterhub_server_spawn_duration_seconds_count{{{labels}}}",
        "values": values,
    }


HUB_UP = {"series": f'up{{job="hub", namespace="{NS}", instance="hub:8081"}}', "values": "1x120"}
GI = 1024**3


def kept_quota(kind: str, values: str) -> dict[str, str]:
    """kube_resourcequota of the kept-work quota (infra/kept_work.py) on EFS's storage class."""
    resource = "efs-sc.storageclass.storage.k8s.io/requests.storage"
    return {
        "series": f'kube_resourcequota{{namespace="{NS}", resourcequota="kept-work", '
        f'resource="{resource}", type="{kind}"}}',
        "values": values,
    }


HEALTHY = [
    pod("jupyter-bob", "deep-learning"),
    # restarted, but not for memory
    container("kube_pod_container_status_restarts_total", "jupyter-bob", "0x10 1x110"),
    container(
        "kube_pod_container_status_last_terminated_reason",
        "jupyter-bob",
        "_x10 1x110",
        reason="Error",
    ),
    # pulling, not backing off
    container(
        "kube_pod_container_status_waiting_reason", "jupyter-bob", "1x5", reason="ContainerCreating"
    ),
    # unschedulable for 3 minutes, until a node came up
    pod_status("kube_pod_status_phase", "jupyter-bob", "1x5 0x115", phase="Pending"),
    pod_status("kube_pod_status_unschedulable", "jupyter-bob", "1x3"),
    # created 20 minutes in: 40 minutes old at 60m, under the 70 minutes that fire
    created("jupyter-bob", "1200x120"),
    # 1 failure in 11 attempts; already-pending clicks are not failures
    spawns("success", "", "0+10x120"),
    spawns("failure", "", "0+1x120"),
    spawns("failure", "already-pending", "0+50x120"),
    HUB_UP,
    # kept work at 70% of its quota
    kept_quota("hard", f"{100 * GI}x120"),
    kept_quota("used", f"{70 * GI}x120"),
]


def rendered_annotations(alert: str, **labels: str) -> dict[str, str]:
    """The rule's annotations with `{{ $labels.x }}` filled in, as Prometheus renders them."""
    rule = next(r for r in alert_rules(SETTINGS) if r["alert"] == alert)
    rendered = {}
    for key, text in rule["annotations"].items():
        for name, value in labels.items():
            text = text.replace(f"{{{{ $labels.{name} }}}}", value)
        assert "{{" not in text, f"{alert}.{key} has an unexpected template: {text}"
        rendered[key] = text
    return rendered


def fires(alert: str, at: str, **labels: str) -> dict[str, Any]:
    severity = next(r for r in alert_rules(SETTINGS) if r["alert"] == alert)["labels"]["severity"]
    expected = {
        "exp_labels": {**labels, "severity": severity},
        "exp_annotations": rendered_annotations(alert, **labels),
    }
    return {"eval_time": at, "alertname": alert, "exp_alerts": [expected]}


def silent(alert: str, at: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


def run_promtool(tmp_path: Path, tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("`promtool` is not on PATH: install Debian's `prometheus` package (CI does)")
    (tmp_path / "alert-rules.yaml").write_text(rules_yaml(SETTINGS))
    document = {"rule_files": ["alert-rules.yaml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return subprocess.run(
        [promtool, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True
    )


def case(series: list[dict[str, str]], *checks: dict[str, Any]) -> dict[str, Any]:
    return {"interval": "1m", "input_series": series, "alert_rule_test": list(checks)}


def assert_passes(tmp_path: Path, *cases: dict[str, Any]) -> None:
    result = run_promtool(tmp_path, list(cases))
    assert result.returncode == 0, result.stdout + result.stderr


def test_oom_kill_in_a_course_fires_the_alert_labelled_with_that_course(tmp_path: Path) -> None:
    oom = [
        pod("jupyter-alice", "intro-python"),
        container("kube_pod_container_status_restarts_total", "jupyter-alice", "0x10 1x110"),
        container(
            "kube_pod_container_status_last_terminated_reason",
            "jupyter-alice",
            "_x10 1x110",
            reason="OOMKilled",
        ),
    ]
    assert_passes(
        tmp_path,
        case(
            HEALTHY + oom,
            silent("CourseServerOOMKilled", "5m"),
            fires("CourseServerOOMKilled", "12m", course="intro-python"),
            silent("CourseServerOOMKilled", "30m"),  # the restart left the window
        ),
    )


def test_image_pull_back_off_fires_after_five_minutes(tmp_path: Path) -> None:
    pulling = [
        pod("jupyter-carol", "ml"),
        container(
            "kube_pod_container_status_waiting_reason",
            "jupyter-carol",
            "1x30",
            reason="ImagePullBackOff",
        ),
    ]
    assert_passes(
        tmp_path,
        case(
            HEALTHY + pulling,
            silent("CourseImagePullBackOff", "3m"),
            fires("CourseImagePullBackOff", "10m", course="ml", reason="ImagePullBackOff"),
        ),
    )


def test_unschedulable_pods_fire_after_ten_minutes(tmp_path: Path) -> None:
    waiting = [
        pod("jupyter-frank", "deep-learning"),
        pod_status("kube_pod_status_phase", "jupyter-frank", "1x60", phase="Pending"),
        pod_status("kube_pod_status_unschedulable", "jupyter-frank", "1x60"),
        # Pending while its image is pulled: scheduled, so not waiting for a node
        pod("jupyter-erin", "intro-python"),
        pod_status("kube_pod_status_phase", "jupyter-erin", "1x60", phase="Pending"),
    ]
    assert_passes(
        tmp_path,
        case(
            HEALTHY + waiting,
            silent("CourseServersUnschedulable", "8m"),
            fires("CourseServersUnschedulable", "12m", course="deep-learning"),
        ),
    )


OOM_WINDOW = "30m"


def oom_kills_panel_query() -> str:
    """The "OOM kills per course" panel's query, for every course, counting over OOM_WINDOW."""
    board = dashboards(make_catalog(), SETTINGS)["courses.json"]
    (expr,) = (e for title, _, e in expressions_of(board) if title == "OOM kills per course")
    return substitute(expr, {"course": ALL_COURSES, "__rate_interval": OOM_WINDOW})


def restarted(name: str, restarts: str, reason: str, reasons: str) -> list[dict[str, str]]:
    """A notebook container's restart counter and its last-terminated-reason gauge."""
    return [
        container("kube_pod_container_status_restarts_total", name, restarts),
        container("kube_pod_container_status_last_terminated_reason", name, reasons, reason=reason),
    ]


# Evaluated at 40m over the 30 minutes before: restarts at 13m and 23m are in the window.
@pytest.mark.parametrize(
    "series,expected",
    [
        pytest.param(
            restarted("jupyter-alice", "0x12 1x10 2x40", "OOMKilled", "_x12 1x50"),
            {"intro-python": 2},
            id="two OOM restarts count 2",
        ),
        pytest.param(
            restarted("jupyter-alice", "1x60", "OOMKilled", "1x60"),
            {},
            id="OOMKilled gauge but no restart in the window counts 0",
        ),
        pytest.param(
            restarted("jupyter-alice", "0x2 1x60", "OOMKilled", "_x2 1x60"),
            {},
            id="an OOM restart before the window counts 0",
        ),
        pytest.param(
            restarted("jupyter-alice", "0x12 1x50", "Error", "_x12 1x50"),
            {},
            id="a restart for another reason counts 0",
        ),
        pytest.param(
            restarted("jupyter-alice", "0x12 1x10 2x40", "OOMKilled", "_x12 1x50")
            + restarted("jupyter-bob", "1x60", "OOMKilled", "1x60")
            + restarted("jupyter-carol", "0x20 1x40", "OOMKilled", "_x20 1x40")
            + restarted("jupyter-dave", "1x60", "OOMKilled", "1x60"),
            {"intro-python": 3},
            id="per course: 2 + 0 + 1 + 0",
        ),
    ],
)
def test_oom_kills_panel_counts_kills_in_the_window(
    tmp_path: Path, series: list[dict[str, str]], expected: dict[str, int]
) -> None:
    courses = [
        pod("jupyter-alice", "intro-python"),
        pod("jupyter-bob", "intro-python"),
        pod("jupyter-carol", "intro-python"),
        pod("jupyter-dave", "intro-python"),
    ]
    samples = [{"labels": f'{{course="{c}"}}', "value": n} for c, n in expected.items()]
    check = {"expr": oom_kills_panel_query(), "eval_time": "40m", "exp_samples": samples}
    assert_passes(tmp_path, {**case(courses + series), "promql_expr_test": [check]})


def test_spawn_failure_ratio_over_the_threshold_fires(tmp_path: Path) -> None:
    failing = [
        spawns("success", "", "0+10x120"),
        spawns("failure", "", "0+5x120"),  # a third of the attempts
        HUB_UP,
    ]
    assert_passes(
        tmp_path,
        case(
            failing,
            silent("SpawnFailureRatioHigh", "3m"),
            fires("SpawnFailureRatioHigh", "15m"),
        ),
    )


def test_hub_down_fires_when_the_scrape_fails_or_disappears(tmp_path: Path) -> None:
    down = {**HUB_UP, "values": "1x10 0x110"}
    assert_passes(
        tmp_path,
        case(
            [down],
            silent("HubDown", "12m"),
            fires("HubDown", "20m", job="hub", namespace=NS, instance="hub:8081"),
        ),
        case([pod("jupyter-bob", "ml")], fires("HubDown", "10m", job="hub", namespace=NS)),
    )


def test_servers_past_the_maximum_age_fire_per_course(tmp_path: Path) -> None:
    old = [
        pod("jupyter-dave", "ml-advanced"),
        created("jupyter-dave", "0x120"),  # created at the start: 70 minutes old at 70m
    ]
    assert_passes(
        tmp_path,
        case(
            HEALTHY + old,
            silent("CourseServerPastMaxAge", "72m"),  # past 70 minutes, not yet for 5 minutes
            fires("CourseServerPastMaxAge", "80m", course="ml-advanced"),
        ),
    )


def test_healthy_series_fire_nothing(tmp_path: Path) -> None:
    assert_passes(
        tmp_path,
        case(
            HEALTHY, *(silent(alert, at) for alert in ALERTS for at in ("5m", "12m", "30m", "60m"))
        ),
    )


def test_promtool_reports_an_alert_that_did_not_fire(tmp_path: Path) -> None:
    """The cases above can fail: expecting an alert from healthy series is reported."""
    result = run_promtool(
        tmp_path, [case(HEALTHY, fires("CourseServerOOMKilled", "12m", course="x"))]
    )
    assert result.returncode != 0
    assert "CourseServerOOMKilled" in result.stdout + result.stderr


def test_kept_work_near_its_quota_fires_after_fifteen_minutes(tmp_path: Path) -> None:
    healthy = [series for series in HEALTHY if "kube_resourcequota" not in series["series"]]
    filling = [
        kept_quota("hard", f"{100 * GI}x120"),
        kept_quota("used", f"{70 * GI}x10 {85 * GI}x110"),
    ]
    resource = "efs-sc.storageclass.storage.k8s.io/requests.storage"
    assert_passes(
        tmp_path,
        case(
            healthy + filling,
            silent("KeptWorkNearQuota", "20m"),
            fires("KeptWorkNearQuota", "27m", resource=resource),
        ),
    )


def test_every_alert_has_a_case() -> None:
    tested = {
        "CourseServerOOMKilled",
        "CourseImagePullBackOff",
        "SpawnFailureRatioHigh",
        "HubDown",
        "KeptWorkNearQuota",
    }
    assert set(ALERTS) == tested | {"CourseServerPastMaxAge", "CourseServersUnschedulable"}
