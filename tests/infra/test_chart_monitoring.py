"""The monitoring releases, rendered by helm from the real charts with every stack's values:
kube-prometheus-stack 88.5.3 and dcgm-exporter 4.8.2 (`../shared/reference/`).

Built-in kinds are validated against the Kubernetes 1.31 schemas, custom resources
(Prometheus, ServiceMonitor, PrometheusRule) against the CRDs the chart ships. Then: the hub's
ServiceMonitor selects the Service the z2jh chart renders, on its port, with the token Secret;
Prometheus selects every ServiceMonitor and rule; the alert rules are the dashboards' rules with
the stack's settings; the DCGM exporter runs on GPU nodes only.

The reference copy of kube-prometheus-stack lacks its dependency charts (kube-state-metrics,
node exporters, Grafana) though its README says otherwise, so helm cannot render them: they are
dropped from a scratch copy of the chart and disabled. kube-state-metrics' label allowlist is
therefore checked as the value its chart reads (`kube-state-metrics.metricLabelsAllowlist`,
which it turns into `--metric-labels-allowlist`), not as a rendered Deployment.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalog import find_repo_root, load_catalog
from dashboards.alerts import rules_document
from hub.contract import PERSON_LABEL
from infra import monitoring
from infra.images import course_images, hub_image
from infra.stack_config import STACKS, StackConfig
from infra.values import RELEASE_NAME, helm_values
from tests.infra.chart import (
    DCGM_EXPORTER,
    KUBE_PROMETHEUS_STACK,
    Z2JH,
    chart,
    containers,
    crd_schemas,
    named,
    of_kind,
    pod_specs,
    template,
    validate,
)
from tests.infra.support import HUB_IMAGE, image_map_for

SUBCHARTS_OFF = {
    "kubeStateMetrics": {"enabled": False},
    "nodeExporter": {"enabled": False},
    "windowsMonitoring": {"enabled": False},
    "prometheus-node-exporter": {"enabled": False},
    "prometheus-windows-exporter": {"enabled": False},
}


@pytest.fixture(scope="module")
def kube_prometheus_stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch copy of the chart without the dependencies its reference copy lacks."""
    copy = tmp_path_factory.mktemp("charts") / "kube-prometheus-stack"
    shutil.copytree(chart(KUBE_PROMETHEUS_STACK), copy)
    for path in [copy, *copy.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    chart_file = copy / "Chart.yaml"
    meta = yaml.safe_load(chart_file.read_text())
    meta["dependencies"] = [
        d for d in meta["dependencies"] if (copy / "charts" / d["name"]).is_dir()
    ]
    chart_file.write_text(yaml.safe_dump(meta))
    return copy


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest, stacks: dict[str, StackConfig]) -> StackConfig:
    return stacks[request.param]


@pytest.fixture(scope="module")
def crds(kube_prometheus_stack: Path) -> dict[tuple[str, str], Any]:
    return crd_schemas(kube_prometheus_stack)


@pytest.fixture
def prometheus(
    stack: StackConfig,
    kube_prometheus_stack: Path,
    crds: dict[tuple[str, str], Any],
    tmp_path: Path,
) -> list[dict[str, Any]]:
    values = {**monitoring.prometheus_values(stack), **SUBCHARTS_OFF}
    objects = template(
        kube_prometheus_stack, monitoring.PROMETHEUS_RELEASE, monitoring.NAMESPACE, values, tmp_path
    )
    validate(objects, crds)
    return objects


def test_the_alert_rules_are_loaded_with_the_stacks_settings(
    stack: StackConfig, prometheus: list[dict[str, Any]]
) -> None:
    expected = rules_document(monitoring.dashboard_settings(stack))["groups"]
    ours = [
        group
        for rule in of_kind(prometheus, "PrometheusRule")
        for group in rule["spec"]["groups"]
        if group["name"] == expected[0]["name"]
    ]
    assert ours == expected
    text = yaml.safe_dump(ours)
    assert (
        str(stack.culling.max_age + monitoring.dashboard_settings(stack).culler_slack_seconds)
        in text
    )


def test_prometheus_selects_every_service_monitor_and_rule(
    prometheus: list[dict[str, Any]],
) -> None:
    (spec,) = (p["spec"] for p in of_kind(prometheus, "Prometheus"))
    assert spec["serviceMonitorSelector"] == {} and spec["ruleSelector"] == {}
    assert spec["serviceMonitorNamespaceSelector"] == {}


def test_the_hub_is_scraped_with_its_token_on_the_service_z2jh_renders(
    stack: StackConfig, crds: dict[tuple[str, str], Any], tmp_path: Path
) -> None:
    catalog = load_catalog(find_repo_root())
    images = course_images(catalog, image_map_for(catalog))
    hub_values = helm_values(stack, catalog, images, hub_image(HUB_IMAGE), "db.invalid")
    hub_objects = template(chart(Z2JH), RELEASE_NAME, stack.namespace, hub_values, tmp_path)
    service = named(hub_objects, "Service", "hub")
    assert service["metadata"]["name"] == monitoring.HUB_JOB  # the dashboards' job label

    monitor = monitoring.hub_service_monitor(stack)
    validate([monitor], crds)
    # The chart's objects carry no namespace: helm puts them in the release's, the stack's.
    assert monitor["metadata"]["namespace"] == stack.namespace
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = monitor["spec"]["endpoints"]
    ports = {p.get("name"): p["port"] for p in service["spec"]["ports"]}
    assert ports[endpoint["port"]] == monitoring.HUB_PORT
    assert endpoint["path"] == "/hub/metrics"
    # The token's Secret is the chart's, in the ServiceMonitor's namespace, with that key.
    reference = endpoint["authorization"]["credentials"]
    secret = named(hub_objects, "Secret", reference["name"])
    assert reference["key"] in secret["data"]


def test_kube_state_metrics_exports_the_course_and_person_labels(stack: StackConfig) -> None:
    """Pods' course label (every per-course panel), and kept-work claims' course and person
    labels (the Kept work panels; hub/spawner.py labels the claims)."""
    settings = monitoring.dashboard_settings(stack)
    allow = monitoring.prometheus_values(stack)["kube-state-metrics"]["metricLabelsAllowlist"]
    assert allow == [
        f"pods=[{settings.course_label}]",
        f"persistentvolumeclaims=[{settings.course_label},{PERSON_LABEL}]",
    ]
    assert settings.course_label_name == "label_course"


def test_gpu_metrics_come_from_gpu_nodes_only(
    stack: StackConfig, crds: dict[tuple[str, str], Any], tmp_path: Path
) -> None:
    objects = template(
        chart(DCGM_EXPORTER),
        monitoring.DCGM_RELEASE,
        monitoring.NAMESPACE,
        monitoring.dcgm_values(stack),
        tmp_path,
        api_versions=["monitoring.coreos.com/v1"],
    )
    validate(objects, crds)
    ((daemonset, pod),) = ((o, p) for o, p in pod_specs(objects) if o["kind"] == "DaemonSet")
    gpu = stack.gpu
    assert pod["nodeSelector"] == {gpu.node_label_key: gpu.node_label_value}
    assert gpu.taint.toleration() in pod["tolerations"]
    assert containers(pod)[0]["image"].startswith("nvcr.io/nvidia/k8s/dcgm-exporter:")
    (monitor,) = of_kind(objects, "ServiceMonitor")
    assert all(e["honorLabels"] is True for e in monitor["spec"]["endpoints"])


def alertmanager_configuration(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The alertmanager.yaml the chart renders into its Secret (what Alertmanager loads)."""
    (secret,) = (o for o in of_kind(objects, "Secret") if "alertmanager.yaml" in o.get("data", {}))
    return dict(yaml.safe_load(base64.b64decode(secret["data"]["alertmanager.yaml"])))


def test_alerts_reach_the_stacks_channel(
    stack: StackConfig, prometheus: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Issue 26, finding 3: the chart routes every alert to `null`. Ours go to the stack's Slack
    channel through a webhook Alertmanager reads from the Secret it mounts; Debian's amtool
    (Alertmanager's own checker) accepts the rendered configuration."""
    config = alertmanager_configuration(prometheus)
    receivers = {r["name"]: r for r in config["receivers"]}
    route = config["route"]
    assert route["receiver"] == monitoring.TEAM_RECEIVER
    (slack,) = receivers[route["receiver"]]["slack_configs"]
    assert slack["channel"] == stack.alerts.slack_channel
    assert slack["api_url_file"] == (
        f"/etc/alertmanager/secrets/{monitoring.ALERT_RECEIVERS_SECRET}/"
        f"{monitoring.SLACK_WEBHOOK_KEY}"
    )
    assert "api_url" not in slack  # the URL is a secret: never in the values
    (alertmanager,) = of_kind(prometheus, "Alertmanager")
    assert alertmanager["spec"]["secrets"] == [monitoring.ALERT_RECEIVERS_SECRET]
    # Only the alerts that always fire by design go nowhere.
    quiet = {m for r in route["routes"] if r["receiver"] == "null" for m in r["matchers"]}
    assert quiet == {f'alertname = "{name}"' for name in monitoring.ALWAYS_FIRING}

    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("no `amtool`: install Debian's `prometheus-alertmanager` (CI does)")
    webhook = tmp_path / "webhook"
    webhook.write_text("https://hooks.slack.invalid/x\n")
    slack["api_url_file"] = str(webhook)
    config_file = tmp_path / "alertmanager.yaml"
    config_file.write_text(yaml.safe_dump(config))
    checked = subprocess.run(
        [amtool, "check-config", str(config_file)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_prometheus_keeps_its_data_and_says_whose_it_is(
    stack: StackConfig, prometheus: list[dict[str, Any]]
) -> None:
    (spec,) = (p["spec"] for p in of_kind(prometheus, "Prometheus"))
    claim = spec["storage"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"] == stack.monitoring.storage
    assert spec["retention"] == stack.monitoring.retention
    assert spec["externalLabels"] == {"stack": stack.name, "cluster": stack.cluster_name}
    assert spec["resources"]["requests"]["memory"] == stack.monitoring.memory_request
    assert spec["resources"]["limits"]["memory"] == stack.monitoring.memory_limit


def test_no_alert_waits_on_what_eks_hides(prometheus: list[dict[str, Any]]) -> None:
    """EKS runs the scheduler, controller manager and etcd out of the cluster's sight: scraping
    them (the chart's default) makes their "down" alerts fire forever."""
    monitors = {m["metadata"]["name"] for m in of_kind(prometheus, "ServiceMonitor")}
    assert not {m for m in monitors if any(p in m for p in ("scheduler", "controller", "etcd"))}
    alerts = {
        rule.get("alert")
        for o in of_kind(prometheus, "PrometheusRule")
        for group in o["spec"]["groups"]
        for rule in group["rules"]
    }
    assert alerts, "no alert rules rendered"
    assert not alerts & {
        "KubeSchedulerDown",
        "KubeControllerManagerDown",
        "etcdMembersDown",
        "KubeProxyDown",
    }


def test_the_charts_crds_are_upgraded_with_it(prometheus: list[dict[str, Any]]) -> None:
    """Helm installs CRDs once and never upgrades them; the chart's upgrade Job does."""
    jobs = [j for j in of_kind(prometheus, "Job") if "crd" in j["metadata"]["name"]]
    assert jobs, [o["metadata"]["name"] for o in of_kind(prometheus, "Job")]
