"""Draws a dashboard view (the JSON `dashboards.views.dashboard_view` makes) as a PNG with
matplotlib: `python -m dashboards.draw VIEW.json OUT.png`.

Only drawing happens here: every decision (series, names, colours, units, ticks, thresholds,
legends, the "no data here" sentences) is already in the view. Grafana's light theme and grid:
24 columns, 30 px per height unit, panels where their gridPos puts them. This module runs in
the `pictures` resolve (matplotlib) and imports nothing of the project.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

WIDTH_PX = 1600
MARGIN_PX = 12
UNIT_PX = 30  # Grafana's grid row height
GAP_PX = 8
HEADER_PX = 64
DPI = 100
BACKGROUND = "#F4F5F5"
PANEL = "#FFFFFF"
BORDER = "#DCE0E6"
TEXT = "#24292E"
WEAK = "#6E7782"
GRID = "#E6E8EB"
LEGEND_ROW_PX = 15
MAX_LEGEND_ROWS = 4


class Canvas:
    """Pixel coordinates (from the top left) on a figure."""

    def __init__(self, height_units: int) -> None:
        self.height = HEADER_PX + height_units * UNIT_PX + MARGIN_PX
        self.figure: Figure = plt.figure(
            figsize=(WIDTH_PX / DPI, self.height / DPI), dpi=DPI, facecolor=BACKGROUND
        )
        self.column = (WIDTH_PX - 2 * MARGIN_PX) / 24

    def box(self, grid: dict[str, int]) -> tuple[float, float, float, float]:
        """A panel's (left, top, width, height) in pixels."""
        left = MARGIN_PX + grid["x"] * self.column
        top = HEADER_PX + grid["y"] * UNIT_PX
        return left, top, grid["w"] * self.column - GAP_PX, grid["h"] * UNIT_PX - GAP_PX

    def text(self, x: float, y: float, content: str, **style: Any) -> None:
        style.setdefault("color", TEXT)
        style.setdefault("va", "top")
        self.figure.text(x / WIDTH_PX, 1 - y / self.height, content, **style)

    def axes(self, left: float, top: float, width: float, height: float) -> Any:
        return self.figure.add_axes(
            (
                left / WIDTH_PX,
                1 - (top + height) / self.height,
                width / WIDTH_PX,
                height / self.height,
            )
        )

    def rectangle(self, left: float, top: float, width: float, height: float, **style: Any) -> None:
        patch = FancyBboxPatch(
            (left / WIDTH_PX, 1 - (top + height) / self.height),
            width / WIDTH_PX,
            height / self.height,
            boxstyle="round,pad=0,rounding_size=0.002",
            transform=self.figure.transFigure,
            **style,
        )
        self.figure.patches.append(patch)


def _fit(text: str, width_px: float, size: float) -> str:
    """`text`, cut to what fits `width_px` at `size` points (DejaVu Sans: ~0.58 em a char)."""
    limit = max(8, int(width_px / (size * DPI / 72 * 0.58)))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def draw_row(canvas: Canvas, view: dict[str, Any]) -> None:
    left, top, width, _ = canvas.box(view["grid"])
    canvas.text(left, top + 4, "⌄ " + view["title"], fontsize=12, fontweight="bold")


def draw_message(
    canvas: Canvas, left: float, top: float, width: float, height: float, text: str
) -> None:
    wrapped = "\n".join(textwrap.wrap(text, max(20, int(width / 7.5))))
    canvas.text(
        left + width / 2,
        top + height / 2,
        wrapped,
        fontsize=10.5,
        color=WEAK,
        ha="center",
        va="center",
        style="italic",
    )


def draw_legend(
    canvas: Canvas, legend: dict[str, Any], left: float, top: float, width: float
) -> None:
    columns = legend["columns"]
    value_width = 78
    label_width = width - value_width * (len(columns) - 1) - 18
    for index, name in enumerate(columns[1:]):
        x = left + label_width + 18 + value_width * (index + 1)
        canvas.text(x, top, name, fontsize=8.5, color=WEAK, ha="right", fontweight="bold")
    rows = legend["rows"]
    shown = rows[:MAX_LEGEND_ROWS] if len(rows) > MAX_LEGEND_ROWS + 1 else rows
    for row_index, (shade, label, *values) in enumerate(shown):
        y = top + LEGEND_ROW_PX * (row_index + 1)
        canvas.rectangle(left, y + 5, 12, 3, facecolor=shade, edgecolor="none")
        canvas.text(left + 18, y, _fit(label, label_width, 8.5), fontsize=8.5)
        for index, value in enumerate(values):
            x = left + label_width + 18 + value_width * (index + 1)
            canvas.text(x, y, value, fontsize=8.5, ha="right")
    if len(shown) < len(rows):
        y = top + LEGEND_ROW_PX * (len(shown) + 1)
        canvas.text(
            left + 18, y, f"+ {len(rows) - len(shown)} more series", fontsize=8.5, color=WEAK
        )


def legend_height(legend: dict[str, Any]) -> float:
    rows = len(legend["rows"])
    shown = MAX_LEGEND_ROWS + 1 if rows > MAX_LEGEND_ROWS + 1 else rows
    return LEGEND_ROW_PX * (shown + 1) + 4


def draw_timeseries(
    canvas: Canvas, view: dict[str, Any], left: float, top: float, width: float, height: float
) -> None:
    legend = view["legend"]
    if legend["placement"] == "right":
        legend_width = min(360.0, width * 0.42)
        plot = (left + 58, top + 6, width - legend_width - 76, height - 28)
        draw_legend(canvas, legend, left + width - legend_width, top + 4, legend_width - 8)
    else:
        below = min(legend_height(legend), height * 0.45)
        plot = (left + 58, top + 6, width - 70, height - below - 26)
        draw_legend(canvas, legend, left + 8, top + height - below + 2, width - 16)
    axes = canvas.axes(*plot)
    axes.set_facecolor(PANEL)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    axes.spines["bottom"].set_color(BORDER)
    axes.tick_params(colors=WEAK, labelsize=8, length=0)
    axes.grid(True, color=GRID, linewidth=0.8)
    axes.set_axisbelow(True)
    start, end = view["xrange"]
    axes.set_xlim(start, end)
    axes.set_ylim(0, view["ymax"])
    axes.set_yticks([tick for tick, _ in view["yticks"]], [label for _, label in view["yticks"]])
    axes.set_xticks([tick for tick, _ in view["xticks"]], [label for _, label in view["xticks"]])
    base: dict[float, float] = {}
    for series in view["series"]:
        times = series["times"]
        values = [float("nan") if v is None else v for v in series["values"]]
        if view["stacked"]:
            lower = [base.get(t, 0.0) for t in times]
            upper = [lo + (0.0 if v != v else v) for lo, v in zip(lower, values)]
            for t, u in zip(times, upper):
                base[t] = u
            axes.fill_between(
                times, lower, upper, color=series["color"], alpha=view["fill"] or 0.3, linewidth=0
            )
            axes.plot(times, upper, color=series["color"], linewidth=1.2)
            drawn = upper
        else:
            if view["fill"]:
                axes.fill_between(
                    times, 0, values, color=series["color"], alpha=view["fill"], linewidth=0
                )
            axes.plot(times, values, color=series["color"], linewidth=1.4)
            drawn = values
        # A value between two gaps draws no line: Grafana shows such points (showPoints auto).
        alone = isolated(values)
        if alone:
            axes.plot(
                [times[i] for i in alone],
                [drawn[i] for i in alone],
                linestyle="none",
                marker="o",
                markersize=3.5,
                color=series["color"],
            )
    for threshold in view["thresholds"]:
        axes.axhline(
            threshold["value"], color=threshold["color"], linestyle=(0, (6, 4)), linewidth=1.2
        )


def isolated(values: Sequence[float]) -> list[int]:
    """Indexes of values with no value on either side (NaN is a gap)."""
    present = [v == v for v in values]  # NaN != NaN
    return [
        i
        for i, here in enumerate(present)
        if here and (i == 0 or not present[i - 1]) and (i == len(present) - 1 or not present[i + 1])
    ]


def draw_stat(
    canvas: Canvas, view: dict[str, Any], left: float, top: float, width: float, height: float
) -> None:
    canvas.text(
        left + width / 2,
        top + height / 2,
        view["value"],
        fontsize=28,
        fontweight="bold",
        color=view["color"],
        ha="center",
        va="center",
    )
    if view.get("label"):
        canvas.text(
            left + width / 2, top + height - 18, view["label"], fontsize=9, color=WEAK, ha="center"
        )


def draw_table(
    canvas: Canvas, view: dict[str, Any], left: float, top: float, width: float, height: float
) -> None:
    for index, name in enumerate(view["columns"]):
        x = left + 8 if index == 0 else left + width - 8
        canvas.text(
            x, top, name, fontsize=9, fontweight="bold", ha="left" if index == 0 else "right"
        )
    for row_index, row in enumerate(view["rows"][: int(height // 18) - 1]):
        y = top + 18 * (row_index + 1)
        canvas.text(left + 8, y, _fit(row[0], width - 100, 9), fontsize=9)
        canvas.text(left + width - 8, y, row[-1], fontsize=9, ha="right")


def draw_panel(canvas: Canvas, view: dict[str, Any]) -> None:
    left, top, width, height = canvas.box(view["grid"])
    # Below the plot's axes, which the figure draws at zorder 0.
    canvas.rectangle(
        left, top, width, height, facecolor=PANEL, edgecolor=BORDER, linewidth=1, zorder=-1
    )
    canvas.text(
        left + 10, top + 8, _fit(view["title"], width - 20, 10.5), fontsize=10.5, fontweight="bold"
    )
    inner = (left + 6, top + 30, width - 12, height - 36)
    if view.get("message"):
        draw_message(canvas, *inner, view["message"])
    elif view["type"] == "stat":
        draw_stat(canvas, view, *inner)
    elif view["type"] == "table":
        draw_table(canvas, view, *inner)
    else:
        draw_timeseries(canvas, view, *inner)


def draw(view: dict[str, Any], out: Path) -> None:
    canvas = Canvas(int(view["height"]))
    canvas.text(MARGIN_PX, 12, view["title"], fontsize=17, fontweight="bold")
    canvas.text(MARGIN_PX, 40, view["subtitle"], fontsize=9.5, color=WEAK)
    for panel in view["panels"]:
        if panel["type"] == "row":
            draw_row(canvas, panel)
        else:
            draw_panel(canvas, panel)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.figure.savefig(out, dpi=DPI, facecolor=BACKGROUND, metadata={"Software": None})
    plt.close(canvas.figure)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m dashboards.draw VIEW.json OUT.png", file=sys.stderr)
        return 2
    draw(json.loads(Path(args[0]).read_text(encoding="utf-8")), Path(args[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
