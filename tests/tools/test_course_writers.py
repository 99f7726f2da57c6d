"""One writer of course.toml (catalog/course_toml.py) for every tool that makes a course: a new
course (tools:new-course), an imported one (tools:import-course) and the build benchmark's
generated ones get the same defaults, read back by the catalog's one reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog import Course, SmokeTest, read_course
from catalog.course import default_resources, parse_course
from catalog.course_toml import CourseDraft, DataDraft, render_course_toml
from tools import import_course, new_course
from tools.bench_images import add_generated_courses

REPOS = Path("tests/fixtures/course-repos")


def defaults_of(course: Course) -> tuple[object, ...]:
    """What the writer chose rather than the author: resources, smoke test, description."""
    return (course.resources, course.smoke_test, course.description)


def expected_defaults(flavor: str, gpu: bool) -> tuple[object, ...]:
    return (
        default_resources(flavor, gpu),
        SmokeTest(),
        "TODO: one or two sentences that tell learners what this course is about.",
    )


@pytest.mark.parametrize(
    "draft",
    [
        CourseDraft("Intro", "pytorch", ("a.ipynb",)),
        CourseDraft('Quotes "and" ü\\', "tensorflow", ("x/y z.ipynb", "b.ipynb"), gpu=True),
        CourseDraft(
            "Data",
            "pytorch",
            ("a.ipynb",),
            data=(DataDraft("data/big.bin", "ab" * 32, url="https://example.org/big.bin"),),
            header=("Imported from somewhere.", "", "  two lines"),
        ),
        CourseDraft(
            "  Control \x7f characters\t ",
            "pytorch",
            ("a.ipynb",),
            data=(DataDraft("d.bin", "cd" * 32, "https://example.org/d", note="two\nlines"),),
            header=("a header\nwith a newline\x01 and \x7f",),
        ),
    ],
    ids=["plain", "gpu-tensorflow-quoting", "data-and-header", "control-characters-newlines"],
)
def test_what_is_written_reads_back(draft: CourseDraft) -> None:
    files = {"requirements.txt": "", **{n: "{}" for n in draft.notebooks}}
    course = parse_course("c", render_course_toml(draft), files)
    assert (course.title, course.flavor, course.gpu, course.notebooks) == (
        draft.title.strip(),
        draft.flavor,
        draft.gpu,
        draft.notebooks,
    )
    assert [(d.path, d.url, d.sha256) for d in course.data] == [
        (d.path, d.url, d.sha256) for d in draft.data
    ]
    assert defaults_of(course) == expected_defaults(draft.flavor, draft.gpu)


def test_new_imported_and_generated_courses_get_the_same_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_course.scaffold(tmp_path, "new-one", "pytorch", gpu=False)
    monkeypatch.setattr(import_course, "MAX_REPO_FILE_BYTES", 10**12)  # nothing over the limit
    assert (
        import_course.main([str(REPOS / "nested"), "--root", str(tmp_path), "--slug", "imported"])
        == 0
    )
    add_generated_courses(tmp_path, 1)
    courses = {
        slug: read_course(tmp_path / "courses" / slug)
        for slug in ("new-one", "imported", "generated-00")
    }
    for slug, course in courses.items():
        assert defaults_of(course) == expected_defaults(course.flavor, course.gpu), slug
