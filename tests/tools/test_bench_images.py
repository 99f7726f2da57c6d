"""The build benchmark's verdict: a no-op rebuild that runs a docker build or gives any image a
new id fails it."""

from __future__ import annotations

from tools.bench_images import Build, Scenario

TAG = "bench.localhost/ol-course-notebooks:intro-ml-" + "a" * 64


def build(
    new_tags: tuple[str, ...] = (),
    new_ids: tuple[str, ...] = (),
    moved: tuple[str, ...] = (),
    docker_builds: int | None = None,
) -> Build:
    builds = len(new_ids) if docker_builds is None else docker_builds
    return Build(1.0, builds, new_tags, new_ids, moved, content_tagged_ids=3)


def test_a_no_op_rebuild_with_no_new_image_id_passes() -> None:
    assert Scenario("no-op rebuild", build(), 0, 0).failures() == []


def test_a_no_op_rebuild_with_a_new_image_id_fails() -> None:
    scenario = Scenario("no-op rebuild", build(new_ids=("sha256:" + "b" * 64,)), 0, 0)
    assert scenario.failures() == [
        "1 new image ids, expected 0",
        "1 docker builds ran, expected none",
    ]


def test_a_no_op_rebuild_that_runs_a_docker_build_fails() -> None:
    """Even a build that BuildKit answers from its cache, giving the same image id."""
    scenario = Scenario("no-op rebuild", build(docker_builds=2), 0, 0)
    assert scenario.failures() == ["2 docker builds ran, expected none"]


def test_a_content_tag_moved_to_another_image_id_fails() -> None:
    scenario = Scenario("no-op rebuild", build(new_ids=("sha256:1",), moved=(TAG,)), 0, 0)
    assert scenario.failures() == [
        "1 new image ids, expected 0",
        f"content tags moved to another image id: {TAG}",
        "1 docker builds ran, expected none",
    ]


def test_a_one_course_change_builds_one_image() -> None:
    assert Scenario("change", build((TAG,), ("sha256:1",)), 1, 1).failures() == []
    assert Scenario("change", build((TAG,), ("sha256:1", "sha256:2")), 1, 1).failures() == [
        "2 new image ids, expected 1"
    ]
