"""Pictures of the dashboards' layout: panel titles in their grid positions, as SVG.

`python -m dashboards.layout [--dir dist/dashboards] [--out docs/dashboards]` reads every
dashboard JSON written by `dashboards.build` and writes `<name>.svg` beside the README's other
pictures. Pure Python, so the same JSON always gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

COLUMN_PX = 40  # 24 columns -> 960 px
UNIT_PX = 20  # one grid height unit
MARGIN = 8
HEADER_PX = 64
FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
CHAR_PX = 7.2  # average advance of a 12 px character


def _wrap(text: str, width_px: float, max_lines: int) -> list[str]:
    limit = max(4, int(width_px / CHAR_PX))
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= limit:
            lines[-1] += " " + word
        else:
            lines.append(word)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: limit - 1] + "…"
    return lines


def _text(x: float, y: float, content: str, size: int, **attrs: str) -> str:
    extra = "".join(f' {key.replace("_", "-")}="{value}"' for key, value in attrs.items())
    return f'<text x="{x:g}" y="{y:g}" font-size="{size}"{extra}>{escape(content)}</text>'


def _box(panel: Mapping[str, Any]) -> tuple[float, float, float, float]:
    grid = panel["gridPos"]
    x = MARGIN + grid["x"] * COLUMN_PX
    y = HEADER_PX + grid["y"] * UNIT_PX
    return x, y, grid["w"] * COLUMN_PX - 4, grid["h"] * UNIT_PX - 4


def _row(panel: Mapping[str, Any]) -> list[str]:
    x, y, w, h = _box(panel)
    return [
        f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" fill="#dde3ea"/>',
        _text(x + 8, y + h - 5, "▾ " + panel.get("title", ""), 12, font_weight="bold"),
    ]


def _panel(panel: Mapping[str, Any]) -> list[str]:
    x, y, w, h = _box(panel)
    parts = [
        f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" rx="4" '
        'fill="#ffffff" stroke="#9aa5b1"/>'
    ]
    for index, line in enumerate(_wrap(panel.get("title", ""), w - 16, 3)):
        parts.append(_text(x + 8, y + 20 + 16 * index, line, 12, font_weight="bold"))
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit") or "short"
    queries = len(panel.get("targets", []))
    caption = f"{panel.get('type', 'panel')} · {queries} quer{'y' if queries == 1 else 'ies'}"
    parts.append(_text(x + 8, y + h - 10, f"{caption} · {unit}", 10, fill="#52606d"))
    parts.append(_sparkline(x + 8, y + 76, w - 16, h - 100))
    return parts


def _sparkline(x: float, y: float, w: float, h: float) -> str:
    """A neutral wave so a reader sees a graph area; it carries no data."""
    if h < 8 or w < 16:
        return ""
    steps = 12
    points = " ".join(
        f"{x + w * i / steps:.1f},{y + h * (0.5 + 0.35 * ((-1) ** i) * (i % 3) / 2):.1f}"
        for i in range(steps + 1)
    )
    return f'<polyline points="{points}" fill="none" stroke="#7eb26d" stroke-width="1.5"/>'


def _variables(data: Mapping[str, Any]) -> str:
    names = [v.get("label") or v.get("name") for v in data.get("templating", {}).get("list", [])]
    return "   ".join(f"{name} ▾" for name in names if name)


def render_svg(data: Mapping[str, Any]) -> str:
    """The dashboard's layout: its title, variables, rows and panel titles where Grafana puts them."""
    panels = data.get("panels", [])
    bottom = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels), default=0)
    width = 24 * COLUMN_PX + 2 * MARGIN
    height = HEADER_PX + bottom * UNIT_PX + MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{FONT}">',
        f'<rect width="{width}" height="{height}" fill="#f4f5f5"/>',
        _text(MARGIN, 26, data.get("title", ""), 18, font_weight="bold"),
        _text(MARGIN, 48, _variables(data), 12, fill="#52606d"),
    ]
    for panel in panels:
        parts.extend(_row(panel) if panel.get("type") == "row" else _panel(panel))
    parts.append("</svg>")
    return "\n".join(part for part in parts if part) + "\n"


def render_directory(source: Path, out: Path) -> list[Path]:
    paths = sorted(source.glob("*.json"))
    if not paths:
        raise FileNotFoundError(f"no dashboard JSON in {source}; run dashboards.build first")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        target = out / (path.stem + ".svg")
        target.write_text(render_svg(json.loads(path.read_text(encoding="utf-8"))), "utf-8")
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.layout", description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("dist/dashboards"))
    parser.add_argument("--out", type=Path, default=Path("docs/dashboards"))
    args = parser.parse_args(argv)
    for path in render_directory(args.dir, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
