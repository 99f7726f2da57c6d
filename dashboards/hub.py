"""The "Hub" dashboard: users, spawns, the hub's HTTP traffic, and hub and proxy resources.

JupyterHub's own metrics (`/hub/metrics`) are selected by `hub_selector`: the Prometheus job that
scrapes the hub and the hub's namespace. Hub and proxy resources come from cAdvisor.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from dashboards.common import (
    DASHBOARD_SCOPE,
    DEFAULTS,
    PanelSpec,
    Query,
    Scope,
    Section,
    Settings,
    dashboard,
    describe,
    selector,
    timeseries,
)

UID = "ol-hub"
TITLE = "Hub"
SPAWN = "jupyterhub_server_spawn_duration_seconds"
REQUESTS = "jupyterhub_request_duration_seconds"
# `already-pending` (a status before JupyterHub 5, a reason since) is a duplicate click, not a
# failed spawn; every other status but success is one.
FAILED = {"status": "!~success|already-pending", "reason": "!already-pending"}
ATTEMPTED = {"status": "!already-pending", "reason": "!already-pending"}


def hub_metric(metric: str, settings: Settings, **matchers: str) -> str:
    return selector(metric, job=settings.hub_job, namespace=settings.namespace, **matchers)


# --- Queries ------------------------------------------------------------------------------


def active_users(settings: Settings) -> str:
    return hub_metric("jupyterhub_active_users", settings)


def running_servers(settings: Settings) -> str:
    return hub_metric("jupyterhub_running_servers", settings)


def spawn_duration_quantile(quantile: float, scope: Scope, settings: Settings) -> str:
    buckets = hub_metric(f"{SPAWN}_bucket", settings, status="success")
    return f"histogram_quantile({quantile}, sum by (le) (rate({buckets}[{scope.rate_interval}])))"


def spawn_failures(scope: Scope, settings: Settings) -> str:
    failed = hub_metric(f"{SPAWN}_count", settings, **FAILED)
    return f"sum by (status, reason) (increase({failed}[{scope.rate_interval}]))"


def spawn_failure_ratio(window: str, settings: Settings) -> str:
    failed = hub_metric(f"{SPAWN}_count", settings, **FAILED)
    attempted = hub_metric(f"{SPAWN}_count", settings, **ATTEMPTED)
    return f"sum(rate({failed}[{window}])) / sum(rate({attempted}[{window}]))"


def request_latency_quantile(quantile: float, scope: Scope, settings: Settings) -> str:
    buckets = hub_metric(f"{REQUESTS}_bucket", settings)
    return f"histogram_quantile({quantile}, sum by (le) (rate({buckets}[{scope.rate_interval}])))"


def requests_by_code(scope: Scope, settings: Settings) -> str:
    count = hub_metric(f"{REQUESTS}_count", settings)
    return f"sum by (code) (rate({count}[{scope.rate_interval}]))"


def hub_up(settings: Settings) -> str:
    return hub_metric("up", settings)


def container_cpu(container: str, scope: Scope, settings: Settings) -> str:
    usage = selector(
        "container_cpu_usage_seconds_total", namespace=settings.namespace, container=container
    )
    return f"sum by (pod) (rate({usage}[{scope.rate_interval}]))"


def container_memory(container: str, settings: Settings) -> str:
    working_set = selector(
        "container_memory_working_set_bytes", namespace=settings.namespace, container=container
    )
    return f"sum by (pod) ({working_set})"


# --- Panels -------------------------------------------------------------------------------


def user_panels(settings: Settings) -> list[PanelSpec]:
    s = settings
    return [
        timeseries(
            "Active users",
            describe(
                "Users active in the last 24 hours, 7 days and 30 days, as the hub counts them "
                "(jupyterhub_active_users).",
                "A sudden drop to zero while the hub is up: the hub's activity tracking or the "
                "metrics scrape broke; check the 'Hub up' line and the hub's logs.",
            ),
            [Query(active_users(s), "{{period}}")],
            width=12,
        ),
        timeseries(
            "Running servers and hub up",
            describe(
                "Learner servers the hub believes are running (jupyterhub_running_servers) and "
                "whether Prometheus can scrape the hub (up: 1 is up).",
                "'Hub up' at 0 or missing: the hub pod is down or not scraped; look at the hub "
                "pod's events and logs. Running servers far from the Courses dashboard's count: "
                "the hub's state and Kubernetes disagree; restart the hub to reconcile.",
            ),
            [Query(running_servers(s), "running servers"), Query(hub_up(s), "hub up")],
            width=12,
        ),
    ]


def spawn_panels(settings: Settings) -> list[PanelSpec]:
    s, scope = settings, DASHBOARD_SCOPE
    return [
        timeseries(
            "Spawn duration (successful spawns)",
            describe(
                "Median and 95th percentile time from a learner clicking start to their server "
                "answering (jupyterhub_server_spawn_duration_seconds, status success).",
                "p95 rising: course images are being pulled on new nodes (see 'Pods waiting on "
                "image pulls' on the Courses dashboard) or the cluster is scaling up; pre-pull "
                "images or keep spare nodes during classes.",
            ),
            [
                Query(spawn_duration_quantile(0.5, scope, s), "p50"),
                Query(spawn_duration_quantile(0.95, scope, s), "p95"),
            ],
            unit="s",
            width=12,
        ),
        timeseries(
            "Spawn failures",
            describe(
                "Failed spawns per interval, by status and reason (timeouts, errors, throttling, "
                "too many users); duplicate clicks (already-pending) are left out.",
                "Failures rising: read the hub's log around the failures (KubeSpawner reports "
                "the pod's events); common causes are image pull errors, no node with room for "
                "the course's memory guarantee, or the hub's concurrent spawn limit.",
            ),
            [Query(spawn_failures(scope, s), "{{status}} {{reason}}")],
            width=6,
        ),
        timeseries(
            "Spawn failure ratio",
            describe(
                "Share of spawn attempts that failed; the red line is the alert threshold "
                f"({s.spawn_failure_ratio:.0%}), evaluated by the alert over {s.alert_window}.",
                "Above the line: learners cannot start servers; see 'Spawn failures' for the "
                "reason and the Courses dashboard for image pulls of the affected course.",
            ),
            [Query(spawn_failure_ratio(scope.rate_interval, s), "failure ratio")],
            unit="percentunit",
            width=6,
            threshold=s.spawn_failure_ratio,
        ),
    ]


def request_panels(settings: Settings) -> list[PanelSpec]:
    s, scope = settings, DASHBOARD_SCOPE
    return [
        timeseries(
            "Hub request latency",
            describe(
                "Median, 95th and 99th percentile time the hub takes to answer HTTP requests "
                "(jupyterhub_request_duration_seconds), all handlers.",
                "p95 above a second: the hub is overloaded (CPU panel below) or its database is "
                "slow; check the hub's CPU, the database, and heavy API clients such as the "
                "culler's polling.",
            ),
            [
                Query(request_latency_quantile(q, scope, s), f"p{round(q * 100)}")
                for q in (0.5, 0.95, 0.99)
            ],
            unit="s",
            width=12,
        ),
        timeseries(
            "Hub requests by status code",
            describe(
                "Requests per second the hub answers, by HTTP status code.",
                "5xx codes: read the hub's log for tracebacks. Many 403/401: a token or OAuth "
                "problem (for example after rotating the hub's secrets). Many 429: spawn "
                "throttling, see 'Spawn failures'.",
            ),
            [Query(requests_by_code(scope, s), "{{code}}")],
            unit="reqps",
            width=12,
            stacked=True,
        ),
    ]


def resource_panels(settings: Settings) -> list[PanelSpec]:
    s, scope = settings, DASHBOARD_SCOPE
    return [
        timeseries(
            "Hub and proxy CPU",
            describe(
                "CPU cores used by the hub container and the proxy (configurable-http-proxy) "
                "container (cAdvisor).",
                "The hub is single-threaded: near 1 core it slows every spawn and login; reduce "
                "API polling (culler interval) or the number of users per hub. A busy proxy "
                "means heavy traffic or websocket storms.",
            ),
            [
                Query(container_cpu(s.hub_container, scope, s), "hub {{pod}}"),
                Query(container_cpu(s.proxy_container, scope, s), "proxy {{pod}}"),
            ],
            width=12,
        ),
        timeseries(
            "Hub and proxy memory",
            describe(
                "Memory working set of the hub and proxy containers (cAdvisor).",
                "Steady growth until a restart: a leak; note the version and restart the pod in "
                "a quiet hour. Near the pod's memory limit: raise it in the hub's Helm values.",
            ),
            [
                Query(container_memory(s.hub_container, s), "hub {{pod}}"),
                Query(container_memory(s.proxy_container, s), "proxy {{pod}}"),
            ],
            unit="bytes",
            width=12,
        ),
    ]


def hub_dashboard(settings: Settings = DEFAULTS) -> Dashboard:
    return dashboard(
        title=TITLE,
        uid=UID,
        description="The JupyterHub in front of the course servers: users, spawns and traffic.",
        sections=[
            Section("Users", user_panels(settings)),
            Section("Spawns", spawn_panels(settings)),
            Section("Requests", request_panels(settings)),
            Section("Hub and proxy resources", resource_panels(settings)),
        ],
    )
