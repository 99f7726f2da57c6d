"""Shared pieces of the dashboards and alert rules: settings, the course join, panels, layout.

Everything here is pure: a dashboard is `f(catalog, settings)`, and so is the rules file.

How a series is tied to a course
--------------------------------
KubeSpawner labels every learner pod `course=<slug>`, and kube-state-metrics exports that label
as `kube_pod_labels{label_course="<slug>"}` (it must run with
`--metric-labels-allowlist=pods=[course]`). Every per-course query joins its series to that
metric on `(namespace, pod)` and copies the slug into a `course` label (see `by_course`).

We match on the pod label and not on the image tag (`image=~".*:<slug>(-.*)?"`) because slugs
may contain `-`: the tag `ml-advanced-1a2b` matches the pattern for course `ml` as well as for
`ml-advanced`. A label is exact, and survives an image being retagged or pinned by digest.

Grafana variables
-----------------
`$datasource` picks the Prometheus data source; `$course` (Courses dashboard) lists the
catalog's slugs, multi-select, with "All" meaning every pod that has a course label (so a
course removed from the catalog whose servers still run is not hidden). Alert rules use the
same query builders with a `Scope` of concrete values instead of variables.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

from grafanalib._gen import DashboardEncoder
from grafanalib.core import (
    Dashboard,
    GridPos,
    RowPanel,
    Target,
    Template,
    Templating,
    Time,
    TimeSeries,
)

from catalog import Catalog, Course
from hub import contract
from hub.settings import CullSettings

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24
PANEL_HEIGHT = 8
ROW_HEIGHT = 1
WHAT_TO_DO = "If it looks wrong:"
DASHBOARD_TAGS = ["course-notebooks"]
SCHEMA_VERSION = 37
ALL_COURSES = ".+"


@dataclass(frozen=True)
class Settings:
    """Deployment facts the dashboards and alerts depend on; the defaults match the hub's."""

    namespace: str = contract.NAMESPACE  # where the hub, the proxy and learner pods run
    notebook_container: str = contract.NOTEBOOK_CONTAINER  # the learner's in a `jupyter-<user>` pod
    course_label: str = contract.COURSE_LABEL  # pod label; kube-state-metrics: label_course
    hub_job: str = contract.HUB_JOB  # Prometheus job scraping the hub's /hub/metrics
    hub_container: str = contract.HUB_JOB
    proxy_container: str = contract.PROXY_CONTAINER
    culler_max_age_seconds: int = CullSettings().max_age  # the culler's --max-age; 0: none
    culler_slack_seconds: int = 30 * 60  # grace before an old server means the culler is stuck
    spawn_failure_ratio: float = 0.2  # share of spawns failing that pages someone
    kept_work_quota_share: float = 0.8  # share of the kept-work storage quota that warns
    alert_window: str = "15m"  # rate/increase window of the alert rules
    dcgm_pod_label: str = "pod"  # DCGM exporter's pod label ("exported_pod" without honor_labels)
    dcgm_namespace_label: str = "namespace"
    #: The deployment (stack) these dashboards show: one Grafana holds every stack's, each with
    #: its own thresholds, so its uid and title name it. "": no suffix.
    deployment: str = ""

    @property
    def course_label_name(self) -> str:
        """The kube-state-metrics label holding the pod's course label."""
        return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", self.course_label)

    @property
    def max_age_threshold_seconds(self) -> int:
        return self.culler_max_age_seconds + self.culler_slack_seconds


DEFAULTS = Settings()


@dataclass(frozen=True)
class Scope:
    """What a query is evaluated for: Grafana variables in dashboards, values in alert rules."""

    courses: str  # a regex of course slugs
    rate_interval: str  # the range of rate()/increase()


DASHBOARD_SCOPE = Scope(courses="$course", rate_interval="$__rate_interval")


def rules_scope(settings: Settings) -> Scope:
    return Scope(courses=ALL_COURSES, rate_interval=settings.alert_window)


def describe(shows: str, when_wrong: str) -> str:
    """A panel description: what the panel shows, then what to do when it looks wrong."""
    return f"{shows.strip()}\n\n{WHAT_TO_DO} {when_wrong.strip()}"


# --- PromQL -------------------------------------------------------------------------------


def selector(metric: str, **matchers: str) -> str:
    """`metric{a="x", b=~"y"}`; a matcher value starting with `~`, `!` or `!~` sets the operator."""
    parts = []
    for name, value in matchers.items():
        op = "="
        for prefix in ("!~", "~", "!"):
            if value.startswith(prefix):
                op, value = {"!~": "!~", "~": "=~", "!": "!="}[prefix], value[len(prefix) :]
                break
        parts.append(f'{name}{op}"{value}"')
    return f"{metric}{{{', '.join(parts)}}}"


def course_pods(scope: Scope, settings: Settings) -> str:
    """One series per learner pod of the selected courses, labelled with its course."""
    label = settings.course_label_name
    pods = selector("kube_pod_labels", namespace=settings.namespace, **{label: f"~{scope.courses}"})
    return f"max by (namespace, pod, {label}) ({pods})"


def by_course(expr: str, scope: Scope, settings: Settings) -> str:
    """`expr` (with `namespace` and `pod` labels) restricted to course pods, with `course` added."""
    label = settings.course_label_name
    joined = f"({expr}) * on (namespace, pod) group_left ({label}) {course_pods(scope, settings)}"
    return f'label_replace({joined}, "course", "$1", "{label}", "(.+)")'


def catalog_constant(catalog: Catalog, value: Callable[[Course], float]) -> str:
    """One constant series per catalog course, labelled `course`: e.g. its memory limit."""
    series = [
        f'label_replace(vector({_number(value(course))}), "course", "{course.slug}", "", "")'
        for course in catalog
    ]
    return " or ".join(series) if series else "(vector(0) unless on () vector(0))"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# --- Panels and layout --------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class PanelSpec:
    """A panel before layout: its grafanalib object and its width in grid columns."""

    panel: Any
    width: int = 12


def timeseries(
    title: str,
    description: str,
    queries: Sequence[Query],
    unit: str = "short",
    width: int = 12,
    threshold: float | None = None,
    stacked: bool = False,
) -> PanelSpec:
    """A time series panel on the `$datasource` Prometheus, one target per query."""
    targets = [
        Target(
            expr=query.expr,
            legendFormat=query.legend,
            refId=chr(ord("A") + index),
            datasource=DATASOURCE,
        )
        for index, query in enumerate(queries)
    ]
    extra: dict[str, Any] = {}
    if threshold is not None:
        extra = dict(
            thresholds=[
                {"color": "green", "value": None},
                {"color": "red", "value": threshold},
            ],
            thresholdsStyleMode="line",
        )
    panel = TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets,
        unit=unit,
        valueMin=0,
        legendDisplayMode="table",
        legendPlacement="right" if width >= 16 else "bottom",
        legendCalcs=["lastNotNull", "max"],
        tooltipMode="multi",
        tooltipSort="desc",
        stacking={"mode": "normal", "group": "A"} if stacked else {},
        fillOpacity=30 if stacked else 0,
        **extra,
    )
    return PanelSpec(panel, width)


@dataclass(frozen=True)
class Section:
    """A titled row of panels; panels wrap onto a new line past 24 columns."""

    title: str
    panels: Sequence[PanelSpec]


def layout(sections: Sequence[Section]) -> list[Any]:
    """Row panels and panels with grid positions, top to bottom, and ids in reading order."""
    placed: list[Any] = []
    y = 0
    for section in sections:
        placed.append(RowPanel(title=section.title, gridPos=GridPos(h=ROW_HEIGHT, w=24, x=0, y=y)))
        y += ROW_HEIGHT
        x = 0
        for spec in section.panels:
            if not 0 < spec.width <= GRID_WIDTH:
                raise ValueError(f"panel {spec.panel.title!r}: width must be 1..{GRID_WIDTH}")
            if x + spec.width > GRID_WIDTH:
                x, y = 0, y + PANEL_HEIGHT
            position = GridPos(h=PANEL_HEIGHT, w=spec.width, x=x, y=y)
            placed.append(_with(spec.panel, gridPos=position))
            x += spec.width
        y += PANEL_HEIGHT if section.panels else 0
    return [_with(panel, id=index) for index, panel in enumerate(placed, start=1)]


def _with(panel: Any, **changes: Any) -> Any:
    """A copy of a grafanalib panel with some attributes changed; the original is untouched."""
    changed = copy.copy(panel)
    for name, value in changes.items():
        setattr(changed, name, value)
    return changed


def datasource_variable() -> Template:
    return Template(
        name="datasource",
        label="Data source",
        query="prometheus",
        type="datasource",
        default="Prometheus",
    )


def course_variable(catalog: Catalog) -> Template:
    """`$course`: the catalog's slugs, multi-select; "All" is every pod with a course label."""
    slugs = list(catalog.slugs)
    variable = Template(
        name="course",
        label="Course",
        type="custom",
        query=",".join(slugs),
        includeAll=True,
        allValue=ALL_COURSES,
        multi=True,
    )
    # Set after construction: grafanalib would turn an empty query into one empty option.
    variable.options = [{"selected": False, "text": slug, "value": slug} for slug in slugs]
    variable._current = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return variable


def dashboard(
    title: str,
    uid: str,
    description: str,
    sections: Sequence[Section],
    variables: Sequence[Template] = (),
    time_from: str = "now-6h",
) -> Dashboard:
    return Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=list(DASHBOARD_TAGS),
        panels=layout(sections),
        templating=Templating(list=[datasource_variable(), *variables]),
        time=Time(time_from, "now"),
        refresh="1m",
        timezone="browser",
        schemaVersion=SCHEMA_VERSION,
        graphTooltip=1,
        editable=True,
    )


def to_json_data(board: Dashboard) -> dict[str, Any]:
    """The dashboard as plain JSON data (what Grafana's API takes as `dashboard`)."""
    data: dict[str, Any] = json.loads(json.dumps(board.to_json_data(), cls=DashboardEncoder))
    return data
