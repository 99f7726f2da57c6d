"""The pictures run's pure parts (dashboards/pictures.py): the hub's scrape job made from infra's
ServiceMonitor, the load's learners, the recording's OpenMetrics text. The run itself is
`./pants run dashboards:pictures` (minutes); its recording is checked by test_dash_promql."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.learners import Visit
from dashboards import pictures
from infra.monitoring import hub_service_monitor
from infra.stack_config import load_stack_config
from tests.dashboards.support import make_catalog


@pytest.mark.parametrize("stack", ["dev", "stage", "prod"])
def test_the_hub_is_scraped_as_the_stacks_service_monitor_says(stack: str) -> None:
    infra = Path(__file__).resolve().parents[2] / "infra"  # infra:stack-config
    monitor = hub_service_monitor(load_stack_config(infra, stack))
    job = pictures.scrape_job(monitor, "127.0.0.1:8081", "t0ken", 5, {"namespace": "jupyterhub"})
    endpoint = monitor["spec"]["endpoints"][0]
    assert job == {
        "job_name": "hub",
        "metrics_path": endpoint["path"],
        "scrape_interval": "5s",
        "authorization": {"type": "Bearer", "credentials": "t0ken"},
        "static_configs": [{"targets": ["127.0.0.1:8081"], "labels": {"namespace": "jupyterhub"}}],
    }
    assert endpoint["path"] == "/hub/metrics"


LOAD = (pictures.Arrival(0, 3), pictures.Arrival(45, 1, fail=True), pictures.Arrival(90, 2))


def test_the_load_sends_the_failing_learner_alone_to_the_missing_course() -> None:
    catalog = make_catalog()
    learners = pictures.learners_of(LOAD, catalog, "ml")
    assert [(at, course) for at, course, _ in learners] == [
        (0, "intro-python"),
        (0, "deep-learning"),
        (0, "ml-advanced"),
        (45, "ml"),
        (90, "intro-python"),
        (90, "deep-learning"),
    ]
    assert all(notebook == "01.ipynb" for *_, notebook in learners)


@pytest.mark.parametrize(
    "statuses,text",
    [
        (["ok", "ok"], "2 launches (2 reached their notebook)"),
        (["ok", "failed"], "2 launches (1 reached their notebook, 1 failed: HTTP 500 at /x)"),
        ([], "0 launches (0 reached their notebook)"),
    ],
)
def test_describe_load(statuses: list[str], text: str) -> None:
    visits = [
        Visit("ml", None, status, 0, 1, "" if status == "ok" else "HTTP 500 at /x")
        for status in statuses
    ]
    assert pictures.describe_load(visits) == text


def test_the_recording_is_openmetrics_of_the_raw_samples() -> None:
    series = [
        {"metric": {"__name__": "up", "job": "hub"}, "values": [[100, "1"], [105.5, "0"]]},
        {
            "metric": {"__name__": "jupyterhub_running_servers", "path": 'a"b\\c'},
            "values": [[100, "3"]],
        },
    ]
    assert pictures.openmetrics(series) == (
        "# TYPE jupyterhub_running_servers unknown\n"
        'jupyterhub_running_servers{path="a\\"b\\\\c"} 3 100.000\n'
        "# TYPE up unknown\n"
        'up{job="hub"} 1 100.000\n'
        'up{job="hub"} 0 105.500\n'
        "# EOF\n"
    )


def test_sources_missing_names_each_source_once() -> None:
    needed = {"up", "kube_pod_labels", "kube_pod_created", "container_memory_working_set_bytes"}
    assert pictures.sources_missing({"up"}, needed) == [
        "cAdvisor's container metrics (the kubelet)",
        "kube-state-metrics (Kubernetes)",
    ]
