"""The drawing program (dashboards/draw.py, matplotlib in the `pictures` resolve), packaged by
Pants as `dashboards:pictures-draw` and run on a view of the real Hub dashboard: it writes a
PNG of the dashboard's grid size, for panels with data, panels without and rows alike."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dashboards import views
from dashboards.build import dashboards
from dashboards.common import DEFAULTS
from tests.dashboards.support import make_catalog, panels_of
from tests.dashboards.test_dash_build import png_size

DRAW = Path("dashboards/pictures-draw.pex")
START = 1_800_000_000


def ramp(labels: dict[str, str], scale: float) -> dict[str, Any]:
    return {
        "metric": labels,
        "values": [[START + 10 * i, str(scale * (i % 7))] for i in range(61)],
    }


def test_draw_writes_the_dashboard_as_a_png(tmp_path: Path) -> None:
    if not DRAW.is_file():
        pytest.skip(f"{DRAW} is not here: run this test with ./pants test (it packages it)")
    board = dashboards(make_catalog(), DEFAULTS)["hub.json"]
    results: dict[int, dict[str, list[Any]]] = {}
    for index, panel in enumerate(panels_of(board)):
        if panel["title"].startswith("Hub and proxy"):
            continue  # no data: they say why
        results[panel["id"]] = {
            t["refId"]: [ramp({"code": "200", "period": "24h"}, 0.1 * (index + 1))]
            for t in panel["targets"]
        }
    view = views.dashboard_view(board, results, {"up"}, START, START + 600, "a test")
    assert sum("message" in p for p in view["panels"]) == 2
    source = tmp_path / "hub.json"
    source.write_text(json.dumps(view))
    out = tmp_path / "hub.png"
    done = subprocess.run(
        [str(DRAW.resolve()), str(source), str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl")},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert png_size(out) == (1600, 64 + view["height"] * 30 + 12)
    assert out.stat().st_size > 30_000  # lines, text and legends, not an empty grid


def test_draw_refuses_a_wrong_call(tmp_path: Path) -> None:
    if not DRAW.is_file():
        pytest.skip(f"{DRAW} is not here: run this test with ./pants test (it packages it)")
    done = subprocess.run([str(DRAW.resolve())], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "usage" in done.stderr
