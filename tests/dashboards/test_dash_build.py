"""The build command's output files, and the README's pictures of the dashboards."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from dashboards import alerts, build
from dashboards.common import DEFAULTS, Settings
from tests.dashboards.support import COURSES, expressions_of, make_catalog, make_repo, panels_of

REPO = Path(__file__).resolve().parents[2]
PICTURES = REPO / "docs" / "dashboards"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A monorepo root with the example courses, as `load_catalog` reads it."""
    return make_repo(tmp_path)


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
        "CourseServersUnschedulable",
        "KeptWorkNearQuota",
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


def thresholds(files: dict[str, str]) -> dict[tuple[str, str], list[float | None]]:
    """(dashboard file, panel title) -> the panel's threshold values, for panels that have any."""
    return {
        (name, panel["title"]): [step["value"] for step in steps]
        for name, text in files.items()
        if name.endswith(".json")
        for panel in panels_of(json.loads(text))
        if (steps := panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps"))
    }


def test_one_deployment_s_settings_reach_every_output() -> None:
    """What infra calls for a stack: every max-age threshold follows the stack's culler, and
    nothing keeps the default 8 h (28800 s, 30600 s with the slack) or namespace."""
    custom = Settings(culler_max_age_seconds=43200, namespace="x")
    default_files, files = build.build(make_catalog(), DEFAULTS), build.build(
        make_catalog(), custom
    )
    assert set(files) == {"courses.json", "hub.json", build.RULES_FILE}
    for name, text in files.items():
        assert not re.search(r"\b(28800|30600)\b|\b8h\b", text), name
        # `namespace=\"x\"` in JSON, `namespace="x"` in YAML
        assert re.search(r'namespace=\\?"x\\?"', text), name
        assert not re.search(r'namespace=\\?"jupyterhub', text), name
    moved = {
        key: [43200 if v == 28800 else v for v in values]
        for key, values in thresholds(default_files).items()
    }
    assert thresholds(files) == moved != thresholds(default_files)
    assert thresholds(files)[("courses.json", "Oldest server per course")] == [None, 43200]
    courses = {t: e for t, _, e in expressions_of(json.loads(files["courses.json"]))}
    assert courses["Servers older than the culler's maximum age"].endswith("> 43200)")
    document = alerts.rules_document(custom)
    assert yaml.safe_load(files[build.RULES_FILE]) == document
    rules = {rule["alert"]: rule for rule in document["groups"][0]["rules"]}
    assert rules["CourseServerPastMaxAge"]["expr"].endswith("> 45000) > 0")  # + 30 min slack
    assert "(43200 s)" in rules["CourseServerPastMaxAge"]["annotations"]["description"]


def test_a_culler_without_maximum_age_gets_no_age_threshold_panel_or_alert() -> None:
    """`culling.maxAge: 0` (no age limit) must not flag every server older than the slack."""
    files = build.build(make_catalog(), Settings(culler_max_age_seconds=0))
    assert [key for key in thresholds(files) if key[0] == "courses.json"] == [
        ("courses.json", "Memory: largest server as a share of the course limit"),
        ("courses.json", "CPU: busiest server as a share of the course limit"),
        ("courses.json", "Kept work storage against its quota"),
    ]
    titles = [panel["title"] for panel in panels_of(json.loads(files["courses.json"]))]
    assert "Oldest server per course" in titles
    assert "Servers older than the culler's maximum age" not in titles
    rules = yaml.safe_load(files[build.RULES_FILE])["groups"][0]["rules"]
    assert "CourseServerPastMaxAge" not in [rule["alert"] for rule in rules]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_readme_shows_a_picture_of_every_dashboard() -> None:
    """One docs/dashboards/<name>.png per dashboard (`./pants run dashboards:pictures` draws
    them from real data), each shown in the README, and no other picture of the dashboards."""
    names = sorted(Path(name).stem for name in build.dashboards(make_catalog(), DEFAULTS))
    assert sorted(p.stem for p in PICTURES.glob("*.png")) == names
    assert not list(PICTURES.glob("*.svg")), "the layout wireframes are gone"
    readme = (REPO / "README.md").read_text()
    shown = re.findall(r"!\[[^\]]*\]\((docs/dashboards/[^)]+)\)", readme)
    assert shown == [f"docs/dashboards/{name}.png" for name in ("courses", "hub")]
    for name in names:
        width, height = png_size(PICTURES / f"{name}.png")
        assert width == 1600 and height > 600, (name, width, height)
