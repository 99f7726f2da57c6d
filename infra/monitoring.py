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

Alertmanager sends every alert (but the chart's always-firing Watchdog and InfoInhibitor) to the
stack's Slack channel; the webhook URL is the stack's secret, in the Secret `alert-receivers`
that Alertmanager mounts (`ALERT_RECEIVERS_SECRET`): never in the values. Prometheus keeps its
data on a volume, labels every series with its stack and cluster (`externalLabels`), and scrapes
no control-plane component EKS hides (scheduler, controller manager, etcd, kube-proxy's
loopback metrics), whose "down" alerts would otherwise fire forever.
"""

from __future__ import annotations

from typing import Any

from dashboards.alerts import GROUP, rules_document
from dashboards.common import Settings
from hub.contract import COURSE_LABEL, HUB_JOB, HUB_PORT, PERSON_LABEL
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
#: The Secret Alertmanager mounts at ALERTMANAGER_SECRETS/<name>/ (the operator's convention).
ALERT_RECEIVERS_SECRET = "alert-receivers"
SLACK_WEBHOOK_KEY = "slack-webhook-url"
ALERTMANAGER_SECRETS = "/etc/alertmanager/secrets"
TEAM_RECEIVER = "team"
#: The chart's alerts that fire by design: Watchdog (the pipeline is alive), InfoInhibitor.
ALWAYS_FIRING = ("Watchdog", "InfoInhibitor")
#: Control-plane components EKS runs out of the cluster's sight.
HIDDEN_CONTROL_PLANE = ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")
#: The labels the Prometheus operator gives Prometheus' pods.
PROMETHEUS_POD_LABELS = {"app.kubernetes.io/name": "prometheus"}


def dashboard_settings(stack: StackConfig) -> Settings:
    """The deployment facts the dashboards and alert rules depend on, for this stack."""
    return Settings(
        namespace=stack.namespace,
        hub_job=HUB_JOB,
        # No culler, no age limit to alert on.
        culler_max_age_seconds=stack.culling.max_age if stack.culling.enabled else 0,
        deployment=stack.name,
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


def alertmanager_config(stack: StackConfig) -> dict[str, Any]:
    """Alertmanager's routing: every alert to the stack's Slack channel, grouped per alert and
    namespace; the chart's always-firing alerts to no one."""
    webhook = f"{ALERTMANAGER_SECRETS}/{ALERT_RECEIVERS_SECRET}/{SLACK_WEBHOOK_KEY}"
    return {
        "route": {
            "receiver": TEAM_RECEIVER,
            "group_by": ["alertname", "namespace"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                {"receiver": "null", "matchers": [f'alertname = "{name}"']}
                for name in ALWAYS_FIRING
            ],
        },
        "receivers": [
            {"name": "null"},
            {
                "name": TEAM_RECEIVER,
                "slack_configs": [
                    {
                        "api_url_file": webhook,
                        "channel": stack.alerts.slack_channel,
                        "send_resolved": True,
                        "title": f"[{stack.name}] {{{{ .CommonLabels.alertname }}}}",
                        "text": (
                            "{{ range .Alerts }}{{ .Annotations.summary }}\n"
                            "{{ .Annotations.description }}\n{{ end }}"
                        ),
                    }
                ],
            },
        ],
    }


def prometheus_values(stack: StackConfig) -> dict[str, Any]:
    """Values of the kube-prometheus-stack release."""
    rules = rules_document(dashboard_settings(stack))
    settings = stack.monitoring
    values: dict[str, Any] = {
        "fullnameOverride": PROMETHEUS_RELEASE,
        # A chart upgrade upgrades its CRDs too (Helm itself never does).
        "crds": {"upgradeJob": {"enabled": True}},
        # Grafana runs outside the cluster; CI applies the dashboards to it.
        "grafana": {"enabled": False},
        "kube-state-metrics": {
            "metricLabelsAllowlist": [
                f"pods=[{COURSE_LABEL}]",
                f"persistentvolumeclaims=[{COURSE_LABEL},{PERSON_LABEL}]",
            ]
        },
        "alertmanager": {
            "config": alertmanager_config(stack),
            "alertmanagerSpec": {
                "secrets": [ALERT_RECEIVERS_SECRET],
                "resources": {
                    "requests": {"cpu": "50m", "memory": "128Mi"},
                    "limits": {"memory": "256Mi"},
                },
            },
        },
        "prometheus": {
            "prometheusSpec": {
                # Select the ServiceMonitors and rules of every release, not only this one's.
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "retention": settings.retention,
                # One Grafana reads every stack: each series says whose it is.
                "externalLabels": {"stack": stack.name, "cluster": stack.cluster_name},
                "resources": {
                    "requests": {"cpu": settings.cpu_request, "memory": settings.memory_request},
                    "limits": {"memory": settings.memory_limit},
                },
                "storageSpec": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": settings.storage}},
                        }
                    }
                },
            },
        },
        "additionalPrometheusRulesMap": {GROUP: {"groups": rules["groups"]}},
    }
    for component in HIDDEN_CONTROL_PLANE:
        values[component] = {"enabled": False}
    return values


def dcgm_values(stack: StackConfig) -> dict[str, Any]:
    """Values of the dcgm-exporter release: GPU nodes only; pod labels as the dashboards read."""
    gpu = stack.gpu
    return {
        "nodeSelector": {gpu.node_label_key: gpu.node_label_value},
        "tolerations": [gpu.taint.toleration()],
        # Keep the exporter's own `pod`/`namespace` labels (the GPU's pod), not the target's.
        "serviceMonitor": {"enabled": True, "honorLabels": True},
    }
