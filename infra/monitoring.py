"""Monitoring deployed with the hub, by the same Pulumi program. Pure: data in, data out.

Two Helm releases in the namespace `monitoring`, both existing charts:

- **kube-prometheus-stack**: the Prometheus operator and Prometheus (Grafana stays outside the
  cluster; CI applies the dashboards to it), with kube-state-metrics exporting the learner
  pods' `course` label (`label_course`, which every per-course panel and alert joins on) and
  the alert rules of `dashboards.alerts`, built with this stack's settings, as a PrometheusRule;
- **dcgm-exporter** (NVIDIA): GPU metrics, on GPU nodes only (their label and taint).

Beside the hub, a ServiceMonitor (`hub_service_monitor`) has Prometheus scrape `/hub/metrics`
(job `hub`) with the API token of the hub service `prometheus` (role `read:metrics`), which the
chart generates and keeps in its own Secret: the hub serves metrics to no one else, and its
NetworkPolicy lets Prometheus' pods in. No token is generated, stored or passed by us.

The dashboards are built with the same settings (`dashboard_settings`), so their thresholds are
the stack's (the culler's maximum age, the namespace).
"""

from __future__ import annotations

from typing import Any

from dashboards.alerts import GROUP, rules_document
from dashboards.common import Settings
from hub.contract import COURSE_LABEL, HUB_JOB, HUB_PORT
from infra.stack_config import StackConfig

NAMESPACE = "monitoring"
PROMETHEUS_RELEASE = "monitoring"
PROMETHEUS_CHART = {
    "name": "kube-prometheus-stack",
    "version": "88.5.3",
    "repository": "https://prometheus-community.github.io/helm-charts",
}
DCGM_RELEASE = "dcgm-exporter"
DCGM_CHART = {
    "name": "dcgm-exporter",
    "version": "4.8.2",
    "repository": "https://nvidia.github.io/dcgm-exporter/helm-charts",
}
#: The hub service whose API token Prometheus scrapes /hub/metrics with.
METRICS_SERVICE = "prometheus"
#: The chart's Secret, where it keeps every hub service's API token "for external services
#: running in the k8s cluster" (its words), under this key.
CHART_SECRET = "hub"
METRICS_TOKEN_KEY = f"hub.services.{METRICS_SERVICE}.apiToken"
HUB_SERVICE_MONITOR = "jupyterhub-hub"
#: The labels the Prometheus operator gives Prometheus' pods.
PROMETHEUS_POD_LABELS = {"app.kubernetes.io/name": "prometheus"}


def dashboard_settings(stack: StackConfig) -> Settings:
    """The deployment facts the dashboards and alert rules depend on, for this stack."""
    return Settings(
        namespace=stack.namespace,
        hub_job=HUB_JOB,
        # No culler, no age limit to alert on.
        culler_max_age_seconds=stack.culling.max_age if stack.culling.enabled else 0,
    )


def prometheus_ingress_rule() -> dict[str, Any]:
    """The hub NetworkPolicy rule (`hub.networkPolicy.ingress`) that lets Prometheus scrape."""
    return {
        "from": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
                "podSelector": {"matchLabels": dict(PROMETHEUS_POD_LABELS)},
            }
        ],
        "ports": [{"port": HUB_PORT, "protocol": "TCP"}],
    }


def hub_service_monitor(stack: StackConfig) -> dict[str, Any]:
    """The ServiceMonitor of the hub's /hub/metrics, beside the hub (it reads the token from the
    chart's Secret, which is in the hub's namespace)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {
            "name": HUB_SERVICE_MONITOR,
            "namespace": stack.namespace,
            "labels": {"app.kubernetes.io/part-of": "jupyterhub"},
        },
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/component": "hub"}},
            "endpoints": [
                {
                    "port": "hub",
                    "path": "/hub/metrics",
                    "interval": "30s",
                    "authorization": {
                        "type": "Bearer",
                        "credentials": {"name": CHART_SECRET, "key": METRICS_TOKEN_KEY},
                    },
                }
            ],
        },
    }


def prometheus_values(stack: StackConfig) -> dict[str, Any]:
    """Values of the kube-prometheus-stack release."""
    rules = rules_document(dashboard_settings(stack))
    return {
        "fullnameOverride": PROMETHEUS_RELEASE,
        # Grafana runs outside the cluster; CI applies the dashboards to it.
        "grafana": {"enabled": False},
        "kube-state-metrics": {"metricLabelsAllowlist": [f"pods=[{COURSE_LABEL}]"]},
        "prometheus": {
            "prometheusSpec": {
                # Select the ServiceMonitors and rules of every release, not only this one's.
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "retention": "15d",
            },
        },
        "additionalPrometheusRulesMap": {GROUP: {"groups": rules["groups"]}},
    }


def dcgm_values(stack: StackConfig) -> dict[str, Any]:
    """Values of the dcgm-exporter release: GPU nodes only; pod labels as the dashboards read."""
    gpu = stack.gpu
    return {
        "nodeSelector": {gpu.node_label_key: gpu.node_label_value},
        "tolerations": [gpu.taint.toleration()],
        # Keep the exporter's own `pod`/`namespace` labels (the GPU's pod), not the target's.
        "serviceMonitor": {"enabled": True, "honorLabels": True},
    }
