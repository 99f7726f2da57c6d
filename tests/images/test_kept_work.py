"""Kept work (images/base/kept_work.py): a learner's volume brought up to date with a newer
course image. `plan_sync` as a table of whole inputs -> whole plans, then `sync` on real folders
and the script as the image runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from images.base.kept_work import MANIFEST, ORIGINALS, SyncPlan, beside_name, plan_sync, sync

SCRIPT = Path("images/base/kept_work.py")
A, B, C, D = "a" * 64, "b" * 64, "c" * 64, "d" * 64


@pytest.mark.parametrize(
    ("course", "work", "copied", "expected"),
    [
        pytest.param(
            {"x.ipynb": A},
            {},
            {},
            SyncPlan(copy=("x.ipynb",), manifest={"x.ipynb": A}),
            id="first start: every course file copied",
        ),
        pytest.param(
            {"x.ipynb": A},
            {"x.ipynb": A},
            {"x.ipynb": A},
            SyncPlan(manifest={"x.ipynb": A}),
            id="nothing changed: nothing to do",
        ),
        pytest.param(
            {"x.ipynb": B},
            {"x.ipynb": A},
            {"x.ipynb": A},
            SyncPlan(copy=("x.ipynb",), manifest={"x.ipynb": B}),
            id="course changed, learner did not: updated",
        ),
        pytest.param(
            {"x.ipynb": A},
            {"x.ipynb": C},
            {"x.ipynb": A},
            SyncPlan(kept=("x.ipynb",), manifest={"x.ipynb": A}),
            id="learner changed, course did not: kept",
        ),
        pytest.param(
            {"x.ipynb": B},
            {"x.ipynb": C},
            {"x.ipynb": A},
            SyncPlan(
                beside=(("x.ipynb", "x.course-bbbbbbbb.ipynb"),),
                kept=("x.ipynb",),
                manifest={"x.ipynb": B},
            ),
            id="both changed: learner's kept, course's beside it",
        ),
        pytest.param(
            {"x.ipynb": B},
            {"x.ipynb": C, "x.course-bbbbbbbb.ipynb": D},
            {"x.ipynb": B},
            SyncPlan(kept=("x.ipynb",), manifest={"x.ipynb": B}),
            id="the version beside was put there before (and edited since): left alone",
        ),
        pytest.param(
            {"x.ipynb": B},
            {"x.ipynb": C, "x.course-bbbbbbbb.ipynb": D},
            {"x.ipynb": A},
            SyncPlan(kept=("x.ipynb",), manifest={"x.ipynb": B}),
            id="a file of the beside name is there already: never overwritten",
        ),
        pytest.param(
            {"x.ipynb": B},
            {"x.ipynb": B},
            {"x.ipynb": A},
            SyncPlan(manifest={"x.ipynb": B}),
            id="learner made the course's new version themselves: nothing to do",
        ),
        pytest.param(
            {"x.ipynb": A},
            {},
            {"x.ipynb": A},
            SyncPlan(manifest={"x.ipynb": A}),
            id="learner deleted it, course unchanged: stays deleted",
        ),
        pytest.param(
            {"x.ipynb": B},
            {},
            {"x.ipynb": A},
            SyncPlan(copy=("x.ipynb",), manifest={"x.ipynb": B}),
            id="learner deleted it, course changed it since: the new version comes",
        ),
        pytest.param(
            {"x.ipynb": A},
            {"x.ipynb": C},
            {},
            SyncPlan(
                beside=(("x.ipynb", "x.course-aaaaaaaa.ipynb"),),
                kept=("x.ipynb",),
                manifest={"x.ipynb": A},
            ),
            id="a new course file where the learner has one of their own: theirs kept",
        ),
        pytest.param(
            {"y.ipynb": A},
            {"x.ipynb": C},
            {"x.ipynb": C, "y.ipynb": A},
            SyncPlan(manifest={"y.ipynb": A}),
            id="course dropped a file: the learner's stays, forgotten by the manifest",
        ),
        pytest.param(
            {"a/1.ipynb": A, "a/2.csv": B, "b/3.py": C},
            {"a/1.ipynb": A, "a/2.csv": D},
            {"a/1.ipynb": A, "a/2.csv": A},
            SyncPlan(
                copy=("b/3.py",),
                beside=(("a/2.csv", "a/2.course-bbbbbbbb.csv"),),
                kept=("a/2.csv",),
                manifest={"a/1.ipynb": A, "a/2.csv": B, "b/3.py": C},
            ),
            id="several files, each by its own rule",
        ),
    ],
)
def test_plan_sync(
    course: dict[str, str], work: dict[str, str], copied: dict[str, str], expected: SyncPlan
) -> None:
    assert plan_sync(course, work, copied) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("intro.ipynb", "intro.course-aaaaaaaa.ipynb"),
        ("lectures/1/intro.ipynb", "lectures/1/intro.course-aaaaaaaa.ipynb"),
        ("data/table.tar.gz", "data/table.tar.course-aaaaaaaa.gz"),
        ("Makefile", "Makefile.course-aaaaaaaa"),
        (".env", ".env.course-aaaaaaaa"),
    ],
)
def test_beside_name(path: str, expected: str) -> None:
    assert beside_name(path, A) == expected


def _write(folder: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)


def _read(folder: Path, originals: bool = False) -> dict[str, str]:
    """The files (or with `originals`, only those under ORIGINALS), less the manifest."""
    found = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and path.name != MANIFEST:
            if relative.startswith(f"{ORIGINALS}/") == originals:
                found[relative.removeprefix(f"{ORIGINALS}/")] = path.read_text()
    return found


def test_a_course_update_on_real_folders_keeps_every_edit(tmp_path: Path) -> None:
    """First start, the learner's edits, a newer course image, a second start, a third."""
    v1, v2, work = tmp_path / "v1", tmp_path / "v2", tmp_path / "work"
    _write(v1, {"edited.ipynb": "1", "untouched.ipynb": "1", "deleted.ipynb": "1"})
    work.mkdir()
    sync(v1, work)
    assert _read(work) == {"edited.ipynb": "1", "untouched.ipynb": "1", "deleted.ipynb": "1"}
    _write(work, {"edited.ipynb": "mine", "notes.txt": "mine"})
    (work / "deleted.ipynb").unlink()
    _write(v2, {"edited.ipynb": "2", "untouched.ipynb": "2", "deleted.ipynb": "1", "new.py": "2"})
    plan = sync(v2, work)
    (beside,) = (target for _, target in plan.beside)
    assert _read(work) == {
        "edited.ipynb": "mine",
        beside: "2",
        "untouched.ipynb": "2",
        "new.py": "2",
        "notes.txt": "mine",
    }
    # The originals: the course's current notebooks, read-only, whatever the learner did.
    assert _read(work, originals=True) == {
        "edited.ipynb": "2",
        "untouched.ipynb": "2",
        "deleted.ipynb": "1",
    }
    assert not (work / ORIGINALS / "edited.ipynb").stat().st_mode & 0o222
    _write(work, {beside: "mine too"})
    (work / ORIGINALS / "edited.ipynb").chmod(0o644)
    _write(work, {f"{ORIGINALS}/edited.ipynb": "scribbled"})
    assert sync(v2, work).copy == () and _read(work)[beside] == "mine too"
    assert _read(work, originals=True)["edited.ipynb"] == "2"
    manifest = json.loads((work / MANIFEST).read_text())
    assert sorted(manifest) == ["deleted.ipynb", "edited.ipynb", "new.py", "untouched.ipynb"]


def test_the_script_runs_with_the_standard_library_only(tmp_path: Path) -> None:
    """As the course image runs it: `python3 -I kept_work.py sync COURSE WORK` (isolated mode:
    no site-packages of this test's environment, no current folder on sys.path)."""
    course, work = tmp_path / "course", tmp_path / "work"
    _write(course, {"lectures/intro.ipynb": "{}"})
    work.mkdir()
    command = [sys.executable, "-I", "-S", str(SCRIPT.resolve()), "sync", str(course), str(work)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 course file(s) copied" in done.stderr
    assert _read(work) == {"lectures/intro.ipynb": "{}"}


def test_a_folder_the_learner_linked_elsewhere_is_not_written_through(tmp_path: Path) -> None:
    course, work, elsewhere = tmp_path / "course", tmp_path / "work", tmp_path / "elsewhere"
    _write(course, {"lectures/intro.ipynb": "{}", "top.ipynb": "{}"})
    elsewhere.mkdir()
    work.mkdir()
    (work / "lectures").symlink_to(elsewhere)
    sync(course, work)
    assert list(elsewhere.iterdir()) == []
    assert (work / "top.ipynb").read_text() == "{}"
