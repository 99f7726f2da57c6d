"""The quality gate in Pants: per-course `#check` and `#smoke-test` test targets.

Runs the real Pants (and the in-repo plugin) on a committed temporary copy of the repo: the
targets exist, `--changed-since` selects exactly the affected courses' tests, and `./pants test`
passes a freshly scaffolded course and fails a broken one with the precise message, leaving the
JSON results the publish gate reads.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import docker
import pytest

from catalog import load_catalog
from tools import new_course, publish_gate
from tools.junit_summary import Totals, totals_of
from tools.repo_copy import PantsFailed, git, run_pants

TEST_TYPES = "--filter-target-type=course_check,course_smoke_test"


def selected(repo: Path) -> set[str]:
    args = ["--changed-since=HEAD", "--changed-dependents=transitive", TEST_TYPES, "list"]
    return set(run_pants(repo, *args).split())


def restore(repo: Path) -> None:
    git(repo, "checkout", "--", ".")
    git(repo, "clean", "-fdq", "courses")


def test_every_course_has_a_check_and_a_smoke_test_on_its_image(repo: Path) -> None:
    catalog = load_catalog(repo)
    targets = set(run_pants(repo, TEST_TYPES, "list", "courses::").split())
    # a GPU course's CPU image has its own smoke test
    assert targets == {
        f"courses/{c.slug}#{kind}" for c in catalog for kind in ("check", "smoke-test")
    } | {f"courses/{c.slug}#smoke-test-cpu" for c in catalog if c.gpu}
    slug = catalog.slugs[0]
    dependencies = run_pants(repo, "dependencies", f"courses/{slug}#smoke-test").split()
    assert f"courses/{slug}#image" in dependencies
    gpu = next(c.slug for c in catalog if c.gpu)
    dependencies = run_pants(repo, "dependencies", f"courses/{gpu}#smoke-test-cpu").split()
    assert f"courses/{gpu}#image-cpu" in dependencies
    assert f"courses/{gpu}#image" not in dependencies


def test_changed_since_selects_exactly_the_affected_courses(repo: Path) -> None:
    catalog = load_catalog(repo)
    try:
        course = catalog.courses[0]
        notebook = repo / course.directory / course.notebooks[0]
        notebook.write_text(notebook.read_text().replace('"cells": [', '"cells": [ ', 1))
        assert selected(repo) == {
            f"courses/{course.slug}#check",
            f"courses/{course.slug}#smoke-test",
        }
        restore(repo)

        with (repo / "images/base/Dockerfile.tensorflow").open("a") as dockerfile:
            dockerfile.write("# a change\n")
        # the flavor's CPU courses, and its GPU courses' CPU images
        on_tensorflow = {
            f"courses/{c.slug}#smoke-test" + ("" if key == c.slug else "-cpu")
            for c in catalog
            for key in c.image_keys
            if c.base_image_of(key) == "images/base:tensorflow"
        }
        assert on_tensorflow and selected(repo) == on_tensorflow
    finally:
        restore(repo)


def test_pants_test_passes_a_new_course_and_fails_a_broken_one(repo: Path) -> None:
    """Judged by what the tests write for that purpose (their JUnit and JSON results under
    dist/test/<target>/) and Pants' exit code, never by its console text."""
    new_course.scaffold(repo, "fresh-course", "pytorch", False, description="A first lesson.")
    broken = repo / "courses/missing-dependency"
    shutil.copytree(Path("tests/fixtures/broken-courses/missing-dependency"), broken)
    (broken / "BUILD").write_text("course()\n")
    try:
        with pytest.raises(PantsFailed):
            run_pants(repo, "test", "courses/fresh-course::", "courses/missing-dependency::")
        results = repo / "dist/test"
        junit = {
            target: sum(
                (totals_of(p.read_text()) for p in (results / target).glob("*.xml")), Totals()
            )
            for target in (
                "courses.fresh-course@check",
                "courses.fresh-course@smoke-test",
                "courses.missing-dependency@check",
                "courses.missing-dependency@smoke-test",
            )
        }
        assert {target: (t.passed > 0, t.failed > 0) for target, t in junit.items()} == {
            "courses.fresh-course@check": (True, False),
            "courses.fresh-course@smoke-test": (True, False),
            "courses.missing-dependency@check": (True, True),
            "courses.missing-dependency@smoke-test": (False, True),
        }
        check = json.loads(
            (
                results / "courses.missing-dependency@check/missing-dependency.course-check.json"
            ).read_text()
        )
        assert [(f["check"], f["details"].get("module")) for f in check["findings"]] == [
            ("missing-dependency", "plotly")
        ]
        smoke = json.loads(
            (
                results / "courses.missing-dependency@smoke-test/missing-dependency.smoke-test.json"
            ).read_text()
        )
        notebook = smoke["notebooks"][0]
        assert smoke["passed"] is False
        assert (notebook["cell"], notebook["exception"]) == (3, "ModuleNotFoundError")
        assert notebook["message"].startswith("No module named 'plotly'"), notebook["message"]
        assert (results / "courses.fresh-course@smoke-test/fresh-course.smoke-test.xml").is_file()

        # The publish gate, on what Pants wrote: only the course that passed is published.
        image_map = {
            r["course"]: r["image"]
            for r in (json.loads(p.read_text()) for p in results.rglob("*.smoke-test.json"))
        }
        (repo / "map.json").write_text(json.dumps(image_map))
        targets = repo / "targets.txt"
        status = publish_gate.main(
            [
                "--results", str(results), "--image-map", str(repo / "map.json"),
                "--targets-out", str(targets), "--deploy-map-out", str(repo / "deploy.json"),
            ]  # fmt: skip
        )
        assert status == 0
        assert targets.read_text() == "courses/fresh-course#image\n"
        assert json.loads((repo / "deploy.json").read_text()) == {
            "fresh-course": image_map["fresh-course"]
        }
    finally:
        restore(repo)


def test_a_course_as_real_material_is(repo: Path, client: docker.DockerClient) -> None:
    """tests/fixtures/real-course through `./pants test`: a lecture over 1 MB teaching a syntax
    error (tagged raises-exception) with a drifted output, an assignment with blanks recorded as
    expected, an unlisted notebook, a data file over 1 MB. Every notebook passes, the report says
    what drifted and which failures were expected, and every file lands in the home as authored:
    Pants materializes files of 512 KB and more read-only and executable whatever git says, so
    the image sets the modes itself, and the build's own files stay out."""
    directory = repo / "courses/real-course"
    shutil.copytree(Path("tests/fixtures/real-course"), directory)
    (directory / "BUILD").write_text("course()\n")
    # The modes a git checkout gives (this test's own sandbox has the large files as Pants
    # materializes them, read-only and executable): the script executable, nothing else.
    for path in directory.rglob("*"):
        path.chmod(0o755 if path.is_dir() or path.name == "setup.sh" else 0o644)
    image_id = None
    try:
        run_pants(repo, "test", "courses/real-course::")
        results = repo / "dist/test/courses.real-course@smoke-test/real-course.smoke-test.json"
        smoke = json.loads(results.read_text())
        run_pants(repo, "package", "courses/real-course#image")
        info = repo / "dist/courses.real-course/image.docker-info.json"
        image_id = json.loads(info.read_text())["image_id"]
        listing = client.containers.run(
            image_id,
            ["find", "/home/jovyan", "-mindepth", "1", "-not", "-path", "*/.*",
             "-printf", "%P\\t%m %u:%g\\n"],
            remove=True,
        ).decode()  # fmt: skip
    finally:
        if image_id:
            client.images.remove(image_id, force=True)
        restore(repo)
    notebooks = {n["path"]: n for n in smoke["notebooks"]}
    assert {path: n["status"] for path, n in notebooks.items()} == {
        "lectures/lecture.ipynb": "passed",
        "assignments/a1.ipynb": "passed",
        "extra/unlisted.ipynb": "passed",
    }
    assert notebooks["assignments/a1.ipynb"]["expected"] == [[3, "AssertionError"]]
    drift = notebooks["lectures/lecture.ipynb"]["drift"]
    assert [(cell, what, saved) for cell, what, saved, _ in drift] == [
        (5, "text", "mean above 0.9: 0.1")
    ]
    found = dict(line.split("\t") for line in listing.splitlines())
    assert found == {
        "lectures": "755 jovyan:users",
        "lectures/lecture.ipynb": "644 jovyan:users",
        "assignments": "755 jovyan:users",
        "assignments/a1.ipynb": "644 jovyan:users",
        "extra": "755 jovyan:users",
        "extra/unlisted.ipynb": "644 jovyan:users",
        "data": "755 jovyan:users",
        "data/measurements.csv": "644 jovyan:users",
        "bin": "755 jovyan:users",
        "bin/setup.sh": "755 jovyan:users",
    }


def test_imported_course_repositories_pass_or_name_what_is_left(repo: Path) -> None:
    """tools:import-course on three of the old system's repositories (tests/fixtures/course-repos),
    then the gate: `nested` (COPY lines rearranging folders) and `subfolder` (its Dockerfile in
    docker/, `pip install -r`, a notebook calling torchvision's compiled operators, which fail
    under a torch they were not built for) pass `./pants test` as imported; `tensorflow` names
    what a person must decide, its unpinned `pip install` line."""
    try:
        for name in ("nested", "tensorflow", "subfolder"):
            source = Path("tests/fixtures/course-repos") / name
            run_pants(repo, "run", "tools:import-course", "--", str(source.resolve()),
                      "--slug", f"imported-{name}", "--description", "Imported.")  # fmt: skip
        # As import-course says: the flavor's image first (subfolder's tabulate is resolved in it).
        run_pants(repo, "package", "images/base:pytorch")
        run_pants(
            repo, "run", "tools:pin-requirements", "--", "imported-nested", "imported-subfolder"
        )
        run_pants(repo, "test", "courses/imported-nested::", "courses/imported-subfolder::")
        passed = {}
        for name in ("nested", "subfolder"):
            results = repo / f"dist/test/courses.imported-{name}@smoke-test"
            smoke = json.loads((results / f"imported-{name}.smoke-test.json").read_text())
            passed[name] = [(n["path"], n["status"]) for n in smoke["notebooks"]]
        assert passed == {
            "nested": [
                ("labs/lab.ipynb", "passed"),
                ("lectures/01-intro/intro.ipynb", "passed"),
                ("lectures/02-more/more.ipynb", "passed"),
            ],
            "subfolder": [("notebooks/train.ipynb", "passed")],
        }
        with pytest.raises(PantsFailed) as failed:
            run_pants(repo, "test", "courses/imported-tensorflow#check")
        assert "'keras-tuner' is not pinned" in str(failed.value)
    finally:
        restore(repo)
