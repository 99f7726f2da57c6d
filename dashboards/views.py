"""What a dashboard's picture shows, decided from the dashboard's JSON and Prometheus' answers:
the pure half of `dashboards.pictures` (`dashboards.draw` only draws what this decides).

Everything here is plain data in and out, no I/O:

- Grafana's query variables for a time range (`grafana_intervals`, `variables`);
- where a query's series come from (`metric_names`, `source_of`) and why a panel has no data
  here (`no_data_reason`);
- Grafana's units (`format_value`), threshold colours (`threshold_color`), legends
  (`legend_label`, `legend_row`), axis ticks (`value_ticks`, `time_ticks`);
- a dashboard's view (`dashboard_view`): every panel in its grid place with its series, or the
  sentence that says why it has none. The view is JSON, the input of `dashboards.draw`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: Grafana's named colours (its light theme's shades) for thresholds.
NAMED_COLORS = {
    "green": "#56A64B",
    "red": "#E02F44",
    "yellow": "#F2CC0C",
    "orange": "#FF780A",
    "blue": "#3274D9",
    "purple": "#A352CC",
    "text": "#464C54",
}
#: Grafana's classic palette (`color.mode: palette-classic`): series colours in query order.
PALETTE = (
    "#7EB26D",
    "#EAB839",
    "#6ED0E0",
    "#EF843C",
    "#E24D42",
    "#1F78C1",
    "#BA43A9",
    "#705DA0",
    "#508642",
    "#CCA300",
)
#: Where a metric comes from, by its name's prefix, first match wins (one place for the
#: pictures' "needs ..." sentences and the recording test's sources).
SOURCES: tuple[tuple[str, str], ...] = (
    ("jupyterhub_", "the hub's /hub/metrics"),
    ("up", "the hub's /hub/metrics"),
    ("kube_", "kube-state-metrics (Kubernetes)"),
    ("container_", "cAdvisor's container metrics (the kubelet)"),
    ("DCGM_", "the DCGM exporter (NVIDIA GPUs)"),
    ("kubelet_", "the kubelet's volume stats (Kubernetes)"),
    ("node_", "a node exporter"),
)
NO_DATA = "no data here"
LEGEND_CALCS = {"lastNotNull": "Last *", "last": "Last", "max": "Max", "min": "Min", "mean": "Mean"}

Series = Mapping[str, Any]  # Prometheus' matrix entry: {"metric": {...}, "values": [[t, "v"]...]}


# --- Queries ------------------------------------------------------------------------------


def grafana_intervals(
    range_seconds: float, max_data_points: int, scrape_seconds: float, interval_factor: int = 1
) -> tuple[int, int, int]:
    """(`$__interval`, the query step, `$__rate_interval`) in seconds, as Grafana computes them
    for a Prometheus panel: the range over the panel's maximum data points, never below the
    scrape interval (the data source's minimum interval); the step is that times the target's
    interval factor; the rate interval is the larger of interval + scrape and 4 scrapes."""
    interval = max(math.ceil(scrape_seconds), math.ceil(range_seconds / max(1, max_data_points)))
    step = interval * max(1, interval_factor)
    rate = max(interval + math.ceil(scrape_seconds), 4 * math.ceil(scrape_seconds))
    return interval, step, rate


def variables(interval: int, rate_interval: int, range_seconds: float) -> dict[str, str]:
    """Grafana's values of the variables the dashboards use, every course selected."""
    return {
        "course": ".+",
        "__interval": f"{interval}s",
        "__rate_interval": f"{rate_interval}s",
        "__range": f"{round(range_seconds)}s",
    }


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replaces Grafana variables (`$name`, `${name}`) that are in `values`; others stay."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)


KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or"}
KEYWORDS |= {"unless", "offset", "inf", "nan", "atan2"}
#: Aggregation operators, which may stand before `by (...)` rather than their `(`.
KEYWORDS |= {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"}
KEYWORDS |= {"bottomk", "topk", "quantile"}


def metric_names(expr: str) -> set[str]:
    """The metrics a query reads: its names that are neither functions, keywords, label names
    (matchers, `by (...)` lists) nor in strings or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "{}", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1 ()", text)
    names = re.findall(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)\b(?!\s*\()", text)
    return {name for name in names if name.lower() not in KEYWORDS}


def source_of(metric: str) -> str:
    for prefix, source in SOURCES:
        if metric == prefix or (prefix.endswith("_") and metric.startswith(prefix)):
            return source
    return f"an exporter of {metric}"


def no_data_reason(needed: Iterable[str], present: Iterable[str]) -> str:
    """Why a panel whose queries read `needed` metrics returned nothing, where Prometheus had
    the `present` ones: the sources of the missing metrics, else that none matched."""
    have = set(present)
    missing = sorted(set(needed) - have)
    if missing:
        sources = list(dict.fromkeys(source_of(metric) for metric in missing))
        return f"{NO_DATA}: needs {' and '.join(sources)}"
    return f"{NO_DATA}: its series exist, but none matched during the run"


def recording_gaps(needed: Iterable[str], recorded: Iterable[str]) -> list[str]:
    """The metrics a query reads that a recording lacks although it has their source: a metric
    renamed in the dashboards (or by its exporter) since the recording was made."""
    have = set(recorded)
    sources = {source_of(metric) for metric in have}
    return sorted(m for m in set(needed) - have if source_of(m) in sources)


# --- Units, colours, legends ----------------------------------------------------------------


def _trim(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _decimals(value: float) -> int:
    """Grafana-like automatic decimals: about three significant digits, at most two after the
    point."""
    size = abs(value)
    if size == 0 or size >= 100:
        return 0
    if size >= 10:
        return 1
    return 2


def _scaled(value: float, base: float, suffixes: Sequence[str], join: str = " ") -> str:
    index = 0
    while abs(value) >= base and index < len(suffixes) - 1:
        value /= base
        index += 1
    suffix = suffixes[index]
    number = _trim(value, _decimals(value))
    return f"{number}{join}{suffix}" if suffix else number


def _duration(seconds: float) -> str:
    size = abs(seconds)
    if size == 0:
        return "0 s"
    if size < 1e-3:
        return f"{_trim(seconds * 1e6, _decimals(seconds * 1e6))} µs"
    if size < 1:
        return f"{_trim(seconds * 1e3, _decimals(seconds * 1e3))} ms"
    for limit, divisor, name in (
        (60, 1, "s"),
        (3600, 60, "min"),
        (86400, 3600, "hour"),
        (604800, 86400, "day"),
        (float("inf"), 604800, "week"),
    ):
        if size < limit:
            value = seconds / divisor
            return f"{_trim(value, _decimals(value))} {name}"
    raise AssertionError("unreachable")


def format_value(value: float | None, unit: str) -> str:
    """A value as Grafana shows it in `unit` (the units the dashboards use; another unit is
    written after the number)."""
    if value is None:
        return "-"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if unit in ("", "short", "none"):
        return _scaled(value, 1000, ["", "K", "Mil", "Bil", "Tri"])
    if unit == "s":
        return _duration(value)
    if unit == "percentunit":
        return f"{_trim(value * 100, _decimals(value * 100))}%"
    if unit == "percent":
        return f"{_trim(value, _decimals(value))}%"
    if unit == "bytes":
        return _scaled(value, 1024, ["B", "KiB", "MiB", "GiB", "TiB", "PiB"])
    if unit == "mbytes":
        return _scaled(value, 1024, ["MiB", "GiB", "TiB", "PiB"])
    if unit == "decmbytes":
        return _scaled(value, 1000, ["MB", "GB", "TB", "PB"])
    if unit == "reqps":
        return f"{_scaled(value, 1000, ['', 'K', 'Mil'])} req/s"
    return f"{_trim(value, _decimals(value))} {unit}"


def color(name: str) -> str:
    """A Grafana colour name (or a `#rrggbb` as it is) as `#rrggbb`."""
    return NAMED_COLORS.get(name, name)


def threshold_steps(panel: Mapping[str, Any]) -> list[tuple[float | None, str]]:
    """(from value, colour) of the panel's absolute thresholds; the first has no value."""
    steps = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps")
    return [(step.get("value"), color(step.get("color", "green"))) for step in steps or []]


def threshold_color(value: float | None, steps: Sequence[tuple[float | None, str]]) -> str:
    """The colour Grafana gives a value: that of the last step whose value it reaches (the base
    step's without one); text colour without thresholds or value."""
    chosen = NAMED_COLORS["text"]
    if value is None or math.isnan(value):
        return chosen
    for start, shade in steps:
        if start is None or value >= start:
            chosen = shade
    return chosen


def legend_label(legend_format: str, labels: Mapping[str, str]) -> str:
    """Grafana's series name: the legend format with `{{label}}` filled in (a missing label is
    empty); without a format, `metric{label="value", ...}`."""
    if legend_format:
        text = re.sub(
            r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}",
            lambda m: labels.get(m.group(1), ""),
            legend_format,
        )
        return " ".join(text.split())
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name


def values_of(series: Series) -> list[tuple[float, float | None]]:
    return [(float(t), _number(v)) for t, v in series.get("values", [])]


def _number(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def reduce(points: Sequence[float | None], calc: str) -> float | None:
    """A legend calculation over a series' values (NaN and absent values left out)."""
    real = [p for p in points if p is not None and not math.isnan(p)]
    if not real:
        return None
    if calc in ("lastNotNull", "last"):
        return real[-1]
    if calc == "max":
        return max(real)
    if calc == "min":
        return min(real)
    if calc == "mean":
        return sum(real) / len(real)
    raise ValueError(f"unknown legend calculation {calc!r}")


def legend_row(
    label: str, points: Sequence[float | None], calcs: Sequence[str], unit: str
) -> list[str]:
    return [label, *(format_value(reduce(points, calc), unit) for calc in calcs)]


# --- Axes ---------------------------------------------------------------------------------


def nice_step(span: float, count: int = 4) -> float:
    """A step of 1, 2 or 5 times a power of ten that cuts `span` into about `count` parts."""
    if span <= 0:
        return 1.0
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power * 1.0000001:
            return factor * power
    return 10 * power


def value_ticks(top: float, unit: str, count: int = 4) -> tuple[float, list[tuple[float, str]]]:
    """The y axis from 0 (every panel's minimum) to a round top above `top`, and its ticks."""
    if not top or top <= 0 or math.isnan(top):
        top = 1.0
    step = nice_step(top, count)
    ticks = [step * i for i in range(int(math.ceil(top / step - 1e-9)) + 1)]
    return ticks[-1], [(tick, format_value(tick, unit)) for tick in ticks]


TIME_STEPS = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def time_ticks(start: float, end: float, count: int = 6) -> list[tuple[float, str]]:
    """Round UTC times between `start` and `end`, about `count` of them, as `HH:MM`."""
    span = max(1.0, end - start)
    step = next((s for s in TIME_STEPS if span / s <= count), TIME_STEPS[-1])
    first = math.ceil(start / step) * step
    ticks = []
    tick = first
    while tick <= end:
        ticks.append((float(tick), time.strftime("%H:%M", time.gmtime(tick))))
        tick += step
    return ticks


# --- Panels and dashboards ------------------------------------------------------------------


def panel_unit(panel: Mapping[str, Any]) -> str:
    return str(panel.get("fieldConfig", {}).get("defaults", {}).get("unit") or "short")


def _stacked(panel: Mapping[str, Any]) -> bool:
    custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
    return (custom.get("stacking") or {}).get("mode") == "normal"


def _threshold_lines(panel: Mapping[str, Any]) -> bool:
    custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
    return (custom.get("thresholdsStyle") or {}).get("mode") in ("line", "line+area", "dashed")


def _series_of(
    panel: Mapping[str, Any], results: Mapping[str, Sequence[Series]]
) -> list[dict[str, Any]]:
    """Every returned series of the panel's targets, named and coloured in query order."""
    named = []
    for target in panel.get("targets", []):
        for series in results.get(target["refId"], []):
            points = values_of(series)
            named.append(
                {
                    "label": legend_label(target.get("legendFormat", ""), series["metric"]),
                    "times": [t for t, _ in points],
                    "values": [v for _, v in points],
                }
            )
    for index, one in enumerate(named):
        one["color"] = PALETTE[index % len(PALETTE)]
    return named


def _top(series: Sequence[Mapping[str, Any]], stacked: bool) -> float:
    if stacked:
        totals: dict[float, float] = {}
        for one in series:
            for t, v in zip(one["times"], one["values"]):
                if v is not None and not math.isnan(v):
                    totals[t] = totals.get(t, 0.0) + v
        return max(totals.values(), default=0.0)
    return max(
        (v for one in series for v in one["values"] if v is not None and not math.isnan(v)),
        default=0.0,
    )


def panel_view(
    panel: Mapping[str, Any],
    results: Mapping[str, Sequence[Series]],
    present: Iterable[str],
    start: float,
    end: float,
) -> dict[str, Any]:
    """What one panel shows: `results` are Prometheus' range results per refId over
    [start, end]; `present` the metrics Prometheus had in that time."""
    view: dict[str, Any] = {
        "title": panel.get("title", ""),
        "type": panel.get("type", ""),
        "grid": dict(panel["gridPos"]),
    }
    if view["type"] == "row":
        return view
    unit = panel_unit(panel)
    steps = threshold_steps(panel)
    series = _series_of(panel, results)
    view["unit"] = unit
    if not series:
        needed: set[str] = set()
        for target in panel.get("targets", []):
            needed |= metric_names(target.get("expr", ""))
        view["message"] = no_data_reason(needed, present)
        return view
    calcs = list(panel.get("options", {}).get("legend", {}).get("calcs") or ["lastNotNull"])
    if view["type"] == "stat":
        calc = (panel.get("options", {}).get("reduceOptions", {}).get("calcs") or ["lastNotNull"])[
            0
        ]
        value = reduce(series[0]["values"], calc)
        view["value"] = format_value(value, unit)
        view["color"] = threshold_color(value, steps)
        view["label"] = series[0]["label"] if len(series) > 1 else ""
        return view
    if view["type"] == "table":
        view["columns"] = ["Series", "Last *"]
        view["rows"] = [legend_row(s["label"], s["values"], ["lastNotNull"], unit) for s in series]
        return view
    if view["type"] != "timeseries":
        view["message"] = f"panel type {view['type']!r} is not drawn here"
        return view
    stacked = _stacked(panel)
    top, ticks = value_ticks(_top(series, stacked), unit)
    legend = panel.get("options", {}).get("legend", {})
    custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
    view.update(
        series=series,
        stacked=stacked,
        fill=float(custom.get("fillOpacity") or 0) / 100,
        thresholds=[
            {"value": value, "color": shade}
            for value, shade in steps
            if value is not None and _threshold_lines(panel)
        ],
        ymax=top,
        yticks=ticks,
        xrange=[start, end],
        xticks=time_ticks(start, end),
        legend={
            "placement": legend.get("placement", "bottom"),
            "columns": ["", *(LEGEND_CALCS.get(calc, calc) for calc in calcs)],
            "rows": [
                [s["color"], *legend_row(s["label"], s["values"], calcs, unit)] for s in series
            ],
        },
    )
    return view


def dashboard_view(
    data: Mapping[str, Any],
    results: Mapping[int, Mapping[str, Sequence[Series]]],
    present: Iterable[str],
    start: float,
    end: float,
    note: str = "",
) -> dict[str, Any]:
    """A dashboard's picture: its title, a line about the data, and every panel's view in its
    grid place; `results` are per panel id, then refId."""
    have = set(present)
    panels = [
        panel_view(panel, results.get(panel["id"], {}), have, start, end)
        for panel in data.get("panels", [])
    ]
    bottom = max((p["grid"]["y"] + p["grid"]["h"] for p in panels), default=0)
    span = time.strftime("%Y-%m-%d %H:%M", time.gmtime(start))
    span += time.strftime("–%H:%M UTC", time.gmtime(end))
    return {
        "title": data.get("title", ""),
        "subtitle": f"{span}. {note}".strip(),
        "height": bottom,
        "panels": panels,
    }
