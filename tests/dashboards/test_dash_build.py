"""The build command's output files, and the layout pictures drawn from them."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

from dashboards import build, layout
from dashboards.common import panels_of
from dashboards.testing import COURSES, make_catalog

REPO = Path(__file__).resolve().parents[2]
PICTURES = REPO / "docs" / "dashboards"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A monorepo root with the example courses, as `load_catalog` reads it."""
    (tmp_path / "pants.toml").write_text("")
    for slug, text in COURSES.items():
        course = tmp_path / "courses" / slug
        course.mkdir(parents=True)
        (course / "course.toml").write_text(text)
        (course / "requirements.txt").write_text("")
        (course / "01.ipynb").write_text("{}")
    return tmp_path


def test_build_writes_every_dashboard_and_the_rules(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert build.main(["--root", str(repo), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["alert-rules.yaml", "courses.json", "hub.json"]
    assert capsys.readouterr().out.split() == [
        str(out / n) for n in sorted(p.name for p in out.iterdir())
    ]
    courses = json.loads((out / "courses.json").read_text())
    assert courses["uid"] == "ol-courses"
    assert [
        o["value"]
        for v in courses["templating"]["list"]
        if v["name"] == "course"
        for o in v["options"]
    ] == sorted(COURSES)
    rules = yaml.safe_load((out / "alert-rules.yaml").read_text())
    assert [r["alert"] for r in rules["groups"][0]["rules"]] == [
        "CourseServerOOMKilled",
        "SpawnFailureRatioHigh",
        "CourseImagePullBackOff",
        "HubDown",
        "CourseServerPastMaxAge",
    ]


def test_build_output_is_byte_for_byte_stable(repo: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    build.main(["--root", str(repo), "--out", str(first)])
    build.main(["--root", str(repo), "--out", str(second)])
    for path in first.iterdir():
        assert path.read_bytes() == (second / path.name).read_bytes(), path.name


def test_build_settings_flags(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build.main(
        ["--root", str(repo), "--out", str(out), "--culler-max-age", "3600", "--namespace", "hub2"]
    )
    rules = (out / "alert-rules.yaml").read_text()
    assert 'namespace="hub2"' in rules and "> 5400)" in rules  # 3600 s + 1800 s of slack


def test_layout_picture_shows_every_panel_where_grafana_puts_it() -> None:
    data = json.loads(build.build(make_catalog())["courses.json"])
    root = ElementTree.fromstring(layout.render_svg(data))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    rects = [(float(r.get("x", 0)), float(r.get("y", 0))) for r in root.iter(f"{SVG}rect")]
    for panel in data["panels"]:
        grid = panel["gridPos"]
        corner = (
            layout.MARGIN + grid["x"] * layout.COLUMN_PX,
            layout.HEADER_PX + grid["y"] * layout.UNIT_PX,
        )
        assert corner in rects, panel["title"]
        first_word = panel["title"].split()[0]
        assert any(first_word in (t or "") for t in texts), panel["title"]
    joined = " ".join(t or "" for t in texts)
    assert all(word in joined for p in panels_of(data) for word in p["title"].split())


def test_layout_command_writes_one_picture_per_dashboard(repo: Path, tmp_path: Path) -> None:
    build.main(["--root", str(repo), "--out", str(tmp_path / "dist")])
    assert layout.main(["--dir", str(tmp_path / "dist"), "--out", str(tmp_path / "pictures")]) == 0
    assert sorted(p.name for p in (tmp_path / "pictures").iterdir()) == ["courses.svg", "hub.svg"]


def test_readme_pictures_are_up_to_date(tmp_path: Path) -> None:
    """docs/dashboards/*.svg match the dashboards; if not, regenerate them (see the message)."""
    out = tmp_path / "dist"
    build.write(build.build(make_catalog()), out)
    for path in sorted(out.glob("*.json")):
        picture = PICTURES / (path.stem + ".svg")
        expected = layout.render_svg(json.loads(path.read_text()))
        assert (
            picture.is_file() and picture.read_text() == expected
        ), f"{picture} is stale: run `python -m dashboards.build && python -m dashboards.layout`"
