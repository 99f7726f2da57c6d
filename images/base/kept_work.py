#!/usr/bin/env python3
"""Kept work: a learner's copy of a course, brought up to date with a newer course image without
losing anything the learner wrote.

    kept_work.py sync COURSE_DIR WORK_DIR [--owner UID:GID]

runs where the learner's volume is mounted, before their server starts (in the course image, with
its Python: standard library only). COURSE_DIR is the image's pristine copy of the course, WORK_DIR
the learner's volume; run as root (a Docker volume is root's when new), `--owner` gives what it
writes, and the volume's top folder, to the learner. The volume remembers, in MANIFEST, the sha256 each course file had when it
was copied there; against it, `plan_sync` (pure: hashes in, actions out) decides per file:

- a course file the volume never had is copied;
- a file the learner never changed is updated to the course's version;
- a file the learner changed stays as it is; when the course changed it too, the course's version
  is put beside it as `<name>.course-<hash>.<ext>` (`beside_name`), once;
- a file the learner deleted stays deleted, unless the course changed it since;
- nothing is ever deleted: a file the course drops becomes the learner's.

To start a notebook over, the volume also holds the course's current version of every notebook,
read-only, under ORIGINALS (`course-original/<path>`): rewritten at each start, never the
learner's (copy one out of it to work on it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import posixpath
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: In the volume's top folder: course path -> sha256 of the course version last copied there.
MANIFEST = ".course-files.json"
#: In the volume's top folder: the course's notebooks as published, read-only, to start over.
ORIGINALS = "course-original"
#: How many hex digits of the course version's sha256 name a file put beside the learner's.
BESIDE_DIGITS = 8


@dataclass(frozen=True)
class SyncPlan:
    """What a sync does to the volume; `manifest` is what the volume remembers afterwards."""

    #: Course files written to their own path (new to the volume, or unchanged by the learner).
    copy: tuple[str, ...] = ()
    #: (course path, path beside the learner's changed file) for the course's new versions.
    beside: tuple[tuple[str, str], ...] = ()
    #: The learner's changed files, left as they are.
    kept: tuple[str, ...] = ()
    manifest: Mapping[str, str] = field(default_factory=dict)


def beside_name(path: str, sha256: str) -> str:
    """Where the course's version `sha256` of `path` goes when the learner changed `path`:
    `lectures/intro.ipynb` -> `lectures/intro.course-1a2b3c4d.ipynb`."""
    folder, name = posixpath.split(path)
    stem, dot, extension = name.rpartition(".")
    if not stem:  # no extension, or a dot file
        stem, dot, extension = name, "", ""
    return posixpath.join(folder, f"{stem}.course-{sha256[:BESIDE_DIGITS]}{dot}{extension}")


def plan_sync(
    course: Mapping[str, str], work: Mapping[str, str], copied: Mapping[str, str]
) -> SyncPlan:
    """course: the image's files (path -> sha256); work: the volume's files at those paths and at
    their beside names (path -> sha256); copied: the volume's manifest (path -> sha256 copied)."""
    copy: list[str] = []
    beside: list[tuple[str, str]] = []
    kept: list[str] = []
    manifest: dict[str, str] = {}
    for path, new in sorted(course.items()):
        have, was = work.get(path), copied.get(path)
        manifest[path] = new
        if have == new:
            continue
        if have is None:
            if was is None or was != new:  # new to the volume, or deleted and changed since
                copy.append(path)
            continue
        if have == was:  # the learner's copy is the course's older version, untouched
            copy.append(path)
            continue
        kept.append(path)  # changed by the learner (or theirs from the start)
        if was is not None and was == new:
            continue  # the course has not changed it since the copy
        target = beside_name(path, new)
        if target not in work:  # there already: put there before, and perhaps edited since
            beside.append((path, target))
    return SyncPlan(tuple(copy), tuple(beside), tuple(kept), manifest)


# --- Files -----------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def course_files(course_dir: Path) -> dict[str, str]:
    """Every regular file under the course folder (relative POSIX path -> sha256), less
    ORIGINALS (the volume's, not the course's)."""
    found = {}
    for path in sorted(course_dir.rglob("*")):
        relative = path.relative_to(course_dir).as_posix()
        if relative.split("/")[0] == ORIGINALS:
            continue
        if path.is_file() and not path.is_symlink():
            found[relative] = sha256_of(path)
    return found


def originals(course: Mapping[str, str]) -> dict[str, str]:
    """Course path -> where its read-only original goes in the volume: every notebook's."""
    return {
        path: posixpath.join(ORIGINALS, path) for path in sorted(course) if path.endswith(".ipynb")
    }


def read_manifest(work_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((work_dir / MANIFEST).read_text())
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ValueError(f"{work_dir / MANIFEST} is not a path -> sha256 table")
    return data


Owner = tuple[int, int]


def _make_folders(work_dir: Path, folder: Path, owner: Owner | None) -> None:
    missing = []
    while folder != work_dir and not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        created.mkdir()
        if owner:
            os.chown(created, *owner)


def _inside(work_dir: Path, target: Path) -> bool:
    """Whether `target`'s folder is really in the volume: a folder the learner made a symbolic
    link (to anywhere) is not written through."""
    folder = target.parent
    while folder != work_dir and not folder.exists():
        folder = folder.parent
    return os.path.realpath(folder).startswith(os.path.realpath(work_dir))


def _write_atomically(
    source: Path, target: Path, work_dir: Path, owner: Owner | None, mode: int | None = None
) -> None:
    """`source`'s bytes and mode (or `mode`) at `target`, which is never seen half written."""
    if not _inside(work_dir, target):
        print(f"kept-work: {target}: not written, its folder leaves the volume", file=sys.stderr)
        return
    _make_folders(work_dir, target.parent, owner)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".kept-work-")
    os.close(handle)
    try:
        shutil.copyfile(source, temporary)
        if mode is None:
            shutil.copymode(source, temporary)
        else:
            os.chmod(temporary, mode)
        if owner:
            os.chown(temporary, *owner)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def sync(course_dir: Path, work_dir: Path, owner: Owner | None = None) -> SyncPlan:
    """Brings the volume up to date with the course (`plan_sync`), then records the manifest."""
    if owner:
        os.chown(work_dir, *owner)
    course = course_files(course_dir)
    work = {}
    for path, sha256 in course.items():
        for candidate in (path, beside_name(path, sha256)):
            file = work_dir / candidate
            if file.is_file() and not file.is_symlink():
                work[candidate] = sha256_of(file)
    plan = plan_sync(course, work, read_manifest(work_dir))
    for path in plan.copy:
        _write_atomically(course_dir / path, work_dir / path, work_dir, owner)
    for path, target in plan.beside:
        _write_atomically(course_dir / path, work_dir / target, work_dir, owner)
    for path, target in originals(course).items():
        original = work_dir / target
        if original.is_dir() and not original.is_symlink():
            print(f"kept-work: {target}: a folder of yours is there, left alone", file=sys.stderr)
        elif original.is_symlink() or not original.is_file() or sha256_of(original) != course[path]:
            original.unlink(missing_ok=True)  # read-only, and ours: replaced, never edited
            _write_atomically(course_dir / path, original, work_dir, owner, mode=0o444)
    manifest = work_dir / MANIFEST
    temporary = manifest.with_name(manifest.name + ".new")
    temporary.write_text(json.dumps(dict(plan.manifest), indent=1, sort_keys=True) + "\n")
    if owner:
        os.chown(temporary, *owner)
    os.replace(temporary, manifest)
    return plan


def _owner(text: str) -> Owner:
    uid, _, gid = text.partition(":")
    if not (uid.isdigit() and gid.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not UID:GID")
    return int(uid), int(gid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("sync", help="bring WORK_DIR up to date with COURSE_DIR")
    run.add_argument("course_dir", type=Path)
    run.add_argument("work_dir", type=Path)
    run.add_argument("--owner", type=_owner, help="UID:GID of what it writes (run as root)")
    args = parser.parse_args(argv)
    plan = sync(args.course_dir, args.work_dir, args.owner)
    print(
        f"kept-work: {len(plan.copy)} course file(s) copied, {len(plan.kept)} of yours kept, "
        f"{len(plan.beside)} new course version(s) put beside yours",
        file=sys.stderr,
    )
    for path, target in plan.beside:
        print(
            f"kept-work: {path}: yours kept, the course's new version is {target}", file=sys.stderr
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
