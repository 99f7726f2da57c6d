"""The smoke test catches every way a course breaks, with a precise message (real images).

Each fixture under tests/fixtures/broken-courses/ is built into an image the way Pants builds a
course (the shared template images/course/Dockerfile, FROM the real `images/base:pytorch`), but
by this test and under a fixture-only name, so it never enters the catalog. Then the smoke test
runs it in a container exactly as it runs real courses.
"""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tools.course_check import smoke, smoke_cli
from tools.course_check.expected import EXPECTED_FILE, load_expected
from tools.course_check.model import SmokeResult, Status
from tools.course_check.report import smoke_summary
from tools.course_check.smoke import CONTAINER_LABEL, read_course_for_smoke_test, smoke_test_course
from tools.links import check_links, course_links
from tools.new_course import scaffold

FIXTURES = Path("tests/fixtures/broken-courses")
TEMPLATE = Path("images/course/Dockerfile")
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
REPOSITORY = f"ol-course-fixture-{uuid.uuid4().hex[:8]}"


def build(client: docker.DockerClient, directory: Path, base: str, tag: str) -> str:
    reference = f"{REPOSITORY}:{tag}"
    client.images.build(
        path=str(directory),
        dockerfile=str(TEMPLATE.resolve()),
        buildargs={"BASE_IMAGE": base},
        tag=reference,
        network_mode="none",
        rm=True,
    )
    return reference


def smoke_fixture(client: docker.DockerClient, case: str, image: str) -> SmokeResult:
    course = read_course_for_smoke_test(FIXTURES / case)
    expected = load_expected(FIXTURES / case, course.all_notebooks)
    return smoke_test_course(client, course, image, expected=expected)


@pytest.fixture(scope="module")
def results(client: docker.DockerClient, base_images: dict[str, str]) -> Iterator[dict]:
    images = {case: build(client, FIXTURES / case, base_images["pytorch"], case) for case in CASES}
    try:
        yield {case: smoke_fixture(client, case, image) for case, image in images.items()}
    finally:
        for image in images.values():
            client.images.remove(image, force=True)


def only(result: SmokeResult):
    assert not result.passed and len(result.notebooks) == 1, result
    return result.notebooks[0]


def test_every_fixture_is_covered(results: dict) -> None:
    assert set(results) == {
        "missing-dependency",
        "missing-data",
        "memory-hog",
        "moved-notebook",
        "syntax-error",
        "hangs",
        "unlisted-notebook",
        "needs-network",
        "assignment-blanks",
        "drifted-output",
    }


def test_missing_dependency(results: dict) -> None:
    n = only(results["missing-dependency"])
    assert (n.path, n.status, n.cell, n.exception) == (
        "notebooks/plots.ipynb",
        Status.FAILED,
        3,
        "ModuleNotFoundError",
    )
    assert n.message.startswith("No module named 'plotly'")
    assert "`plotly==<version>` to requirements.txt" in n.message


def test_missing_data_file(results: dict) -> None:
    n = only(results["missing-data"])
    assert (n.status, n.cell, n.exception) == (Status.FAILED, 4, "FileNotFoundError")
    assert "'../data/prices.csv'" in n.message


def test_memory_over_the_limit(results: dict) -> None:
    result = results["memory-hog"]
    n = only(result)
    assert (n.status, n.cell) == (Status.OUT_OF_MEMORY, 3)
    assert "memory limit of 384M" in n.message
    assert result.memory_limit_bytes == 384_000_000
    assert n.peak_memory_bytes is not None and n.peak_memory_bytes >= 300_000_000


def test_notebook_moved_away_from_the_catalog_path(results: dict) -> None:
    result = results["moved-notebook"]
    # Where it moved to, it is an unlisted notebook, run like every other one.
    assert [(n.path, n.status) for n in result.notebooks] == [
        ("notebooks/intro.ipynb", Status.MISSING),
        ("lectures/intro.ipynb", Status.PASSED),
    ]
    n = result.notebooks[0]
    assert "/home/jovyan/notebooks/intro.ipynb" in n.message
    assert "notebooks there: lectures/intro.ipynb" in n.message


def test_syntax_error(results: dict) -> None:
    n = only(results["syntax-error"])
    assert (n.status, n.cell, n.exception) == (Status.FAILED, 3, "SyntaxError")


def test_a_notebook_that_hangs(results: dict) -> None:
    result = results["hangs"]
    n = only(result)
    assert (n.status, n.cell) == (Status.TIMED_OUT, 3)
    assert "still running after 15 s in cell 3" in n.message
    assert 15 <= n.duration_seconds < 45


def test_an_assignment_with_blanks_passes_with_its_recorded_failures(results: dict) -> None:
    result = results["assignment-blanks"]
    assert result.passed, result
    (n,) = result.notebooks
    assert n.summary() == (
        "passed (expected failures: cell 5 AssertionError, cell 9 NotImplementedError)"
    )


def test_every_failing_cell_is_reported_and_accepting_records_them(
    tmp_path: Path, client: docker.DockerClient, base_images: dict[str, str]
) -> None:
    """Without its record the assignment fails at every blank, not only the first (the cell
    tagged raises-exception is not one); --accept-failures writes the record it has."""
    directory = tmp_path / "assignment-blanks"
    shutil.copytree(FIXTURES / "assignment-blanks", directory)
    (directory / EXPECTED_FILE).unlink()
    image = build(client, directory, base_images["pytorch"], "accept")
    try:
        unrecorded = smoke_test_course(client, read_course_for_smoke_test(directory), image)
        status = smoke_cli.main(
            [str(directory), "--image", image, "--accept-failures",
             "--output-dir", str(tmp_path / "out")]
        )  # fmt: skip
    finally:
        client.images.remove(image, force=True)
    (n,) = unrecorded.notebooks
    assert (n.status, n.cell, n.exception) == (Status.FAILED, 5, "AssertionError")
    assert n.failures == ((5, "AssertionError"), (9, "NotImplementedError"))
    assert n.summary().endswith("(also failing: cell 9 NotImplementedError)")
    assert status == 0
    recorded = (directory / EXPECTED_FILE).read_text()
    assert recorded == (FIXTURES / "assignment-blanks" / EXPECTED_FILE).read_text()


def test_output_drift_is_a_warning_and_strict_makes_it_a_failure(
    results: dict, client: docker.DockerClient, base_images: dict[str, str]
) -> None:
    result = results["drifted-output"]
    (n,) = result.notebooks
    assert n.passed and n.drift == ((3, "text", "model accuracy: 0.93", "model accuracy: 0.41"),)
    summary = smoke_summary([result])
    assert "results.ipynb: outputs that differ from the saved ones:" in summary
    assert "model accuracy: 0.93  model accuracy: 0.41" in summary

    course = read_course_for_smoke_test(FIXTURES / "drifted-output")
    strict = dataclasses.replace(
        course, smoke_test=dataclasses.replace(course.smoke_test, outputs="strict")
    )
    image = build(client, FIXTURES / "drifted-output", base_images["pytorch"], "strict")
    try:
        (failed,) = smoke_test_course(client, strict, image).notebooks
    finally:
        client.images.remove(image, force=True)
    assert (failed.status, failed.cell) == (Status.FAILED, 3)
    assert "the outputs of cell(s) 3 differ from those saved in the notebook" in failed.message


def test_a_download_without_network_is_a_network_failure(results: dict) -> None:
    n = only(results["needs-network"])
    assert (n.path, n.status, n.cell, n.exception) == (
        "notebooks/download.ipynb",
        Status.NETWORK,
        2,
        "URLError",
    )
    assert "list it in course.toml's smoke_test.network" in n.message


def test_an_unlisted_notebook_is_run_and_a_skipped_one_is_reported(results: dict) -> None:
    result = results["unlisted-notebook"]
    assert [(n.path, n.status, n.exception) for n in result.notebooks] == [
        ("notebooks/lesson.ipynb", Status.PASSED, None),
        ("notebooks/extra.ipynb", Status.FAILED, "ModuleNotFoundError"),
    ]
    assert result.skipped == (
        ("notebooks/slow.ipynb", "trains for an hour: run by hand before each term"),
    )
    assert "notebooks/slow.ipynb: not run (course.toml smoke_test.skip: trains for an hour" in (
        smoke_summary([result])
    )


def test_durations_and_peak_memory_are_measured(results: dict) -> None:
    for result in results.values():
        for n in result.notebooks:
            assert n.duration_seconds > 0
            if n.status in (Status.FAILED, Status.PASSED):
                assert n.peak_memory_bytes and n.peak_memory_bytes > 10_000_000


def test_containers_are_removed(results: dict, client: docker.DockerClient) -> None:
    for slug in results:
        labelled = {"label": f"{CONTAINER_LABEL}={slug}"}
        assert client.containers.list(all=True, filters=labelled) == []


def test_links_flag_a_notebook_missing_from_the_image(
    client: docker.DockerClient, base_images: dict[str, str]
) -> None:
    course = read_course_for_smoke_test(FIXTURES / "moved-notebook")
    image = build(client, FIXTURES / "moved-notebook", base_images["pytorch"], "links")
    try:
        checked, problems = check_links(
            course_links(course, "https://h"), {course.slug: image}, client
        )
    finally:
        client.images.remove(image, force=True)
    assert problems == [] and [link.in_image for link in checked] == [False]


def test_a_scaffolded_course_passes_its_smoke_test(
    tmp_path: Path, client: docker.DockerClient, base_images: dict[str, str]
) -> None:
    directory = scaffold(tmp_path, "fresh-course", "pytorch", True, description="A lesson.")
    image = build(client, directory, base_images["pytorch"], "fresh-course")
    try:
        course = read_course_for_smoke_test(directory)
        result = smoke_test_course(client, course, image)
        # The GPU path (docker run --gpus all): on this machine Docker has no GPU to give, an
        # error that says so, never a pass on the CPU.
        on_gpus = smoke_test_course(client, course, image, gpus=True)
    finally:
        client.images.remove(image, force=True)
    assert result.passed, result
    assert course.gpu and result.accelerator.startswith("GPU course smoke-tested on CPU")
    assert not on_gpus.passed and on_gpus.notebooks == ()
    assert on_gpus.error.startswith("--gpus: "), on_gpus.error


def test_the_container_stops_itself_at_its_deadline(
    client: docker.DockerClient, base_images: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the smoke test die while a notebook hangs, the container does not run forever."""
    monkeypatch.setattr(smoke, "DEADLINE_MARGIN", -90)  # deadline: 100 - 90 = 10 s
    image = build(client, FIXTURES / "hangs", base_images["pytorch"], "deadline")
    try:
        outcome = smoke.run_container(
            client,
            image,
            "notebooks/wait.ipynb",
            memory_limit=2**30,
            timeout_seconds=100,
            network=False,
            label="deadline-test",
        )
    finally:
        client.images.remove(image, force=True)
    assert not outcome.timed_out and outcome.exit_code == 124
    assert 10 <= outcome.duration_seconds < 60
