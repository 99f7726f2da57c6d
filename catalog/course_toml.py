"""The one writer of course.toml (catalog.course is its one reader).

A new course (tools:new-course), an imported one (tools:import-course) and the benchmark's
generated ones are all written here from a `CourseDraft`, with the same defaults: the flavor's
resources (catalog/flavors.py), the smoke test's defaults (catalog.course.SmokeTest), a
description to fill in. Every field is written, with a comment saying what it is, so a course
author sees what they can change. Pure: text out.

It must import on Python 3.9 (Pants' own interpreter) as well as 3.11.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from catalog.course import KeptWork, SmokeTest, default_resources, format_memory
from catalog.flavors import FLAVORS

TODO_DESCRIPTION = "TODO: one or two sentences that tell learners what this course is about."
TODO_URL = "TODO: the https:// address this file is published at"


@dataclass(frozen=True)
class DataDraft:
    """A `[[data]]` entry: a file too large for the repository, fetched while the image builds."""

    path: str
    sha256: str
    url: str = TODO_URL
    #: A comment for the person who publishes it (its size, where it came from).
    note: str = ""


@dataclass(frozen=True)
class CourseDraft:
    title: str
    flavor: str
    notebooks: tuple[str, ...]
    gpu: bool = False
    description: str = TODO_DESCRIPTION
    data: tuple[DataDraft, ...] = ()
    #: Comment lines at the top of the file (where it came from, what is left to decide).
    header: tuple[str, ...] = ()


def _string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, and TOML also wants DEL escaped."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _comment(text: str) -> str:
    """`text` as one comment line: line breaks and the other control characters TOML refuses
    in a comment become spaces."""
    return "".join(" " if (ord(c) < 0x20 and c != "\t") or c == "\x7f" else c for c in text)


def render_course_toml(draft: CourseDraft) -> str:
    """course.toml's text for `draft`; catalog.course reads it back to the same course."""
    resources = default_resources(draft.flavor, draft.gpu)
    smoke = SmokeTest()
    kept = KeptWork()
    lines = [f"# {_comment(line)}" if line else "#" for line in draft.header]
    notebooks = ["notebooks = ["] + [f"    {_string(n)}," for n in draft.notebooks] + ["]"]
    lines += [
        f"title = {_string(draft.title.strip())}",
        f"description = {_string(draft.description)}",
        f"flavor = {_string(draft.flavor)}       # base image: {' or '.join(FLAVORS)}",
        f"gpu = {'true' if draft.gpu else 'false'}",
        "# The notebooks learners get launch links for, relative to this directory (any folder",
        "# layout). Every other *.ipynb here ships too, and is checked and smoke-tested like these.",
        *notebooks,
        "",
        "[resources]               # what each learner's server gets (production limits)",
        f'memory_limit = "{format_memory(resources.memory_limit)}"',
        f'memory_guarantee = "{format_memory(resources.memory_guarantee)}"',
        f"cpu_limit = {resources.cpu_limit}",
        f"cpu_guarantee = {resources.cpu_guarantee}",
        "",
        "[smoke_test]              # every notebook runs in the image before it is published",
        f"timeout_seconds = {smoke.timeout_seconds}     # per notebook",
        'network = false           # true, or the notebooks that must download: ["data/get.ipynb"]',
        '# skip = { "path/to.ipynb" = "why it cannot run here" }   # left out, reason in every report',
        "",
        "[kept_work]               # a learner's work kept between servers, where the hub keeps it",
        "enabled = true            # false: every server starts from the course as published",
        f'size = "{format_memory(kept.size)}"              # each learner\'s storage for this course',
    ]
    for entry in draft.data:
        lines += [
            "",
            "[[data]]" + (f"  # {_comment(entry.note)}" if entry.note else ""),
            f"path = {_string(entry.path)}",
            f"url = {_string(entry.url)}",
            f'sha256 = "{entry.sha256}"',
        ]
    return "\n".join(lines) + "\n"
