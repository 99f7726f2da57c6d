"""A throwaway copy of the monorepo as a git repository, and Pants run inside it.

Tests and benchmarks that exercise Pants itself (changed-only selection, publishing, build
timings) cannot run Pants on the checkout that is running them (Pants holds that build root), so
they copy the checkout's files (tracked, and untracked but not ignored) to a temporary git
repository and run `./pants` there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


class PantsFailed(RuntimeError):
    pass


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=tools", "-c", "user.email=tools@localhost", "commit", "-qm", message)


def copy_repo(source: Path, destination: Path, *, committed_only: bool = False) -> Path:
    """Copies the checkout at `source` to `destination`, committed there; returns it.

    By default the working tree as it is (so tests see uncommitted work); with `committed_only`,
    the files of source's HEAD commit.
    """
    if committed_only:
        archive = subprocess.run(
            ["git", "-C", str(source), "archive", "HEAD"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(destination)], input=archive, check=True)
    else:
        files = git(source, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
        for name in filter(None, files.split("\0")):
            if (source / name).is_file():
                (destination / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / name, destination / name)
    git(destination, "init", "-q", "-b", "main")
    commit_all(destination, "copy of the monorepo")
    return destination


def run_pants(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Runs `./pants --no-pantsd ARGS` in `repo`; returns stdout, raises PantsFailed with the log."""
    result = subprocess.run(
        ["./pants", "--no-pantsd", "--no-dynamic-ui", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        # Not the outer checkout's MONOREPO_ROOT (set for tests by pants.toml): the copy's tools
        # must find the copy as their repository root.
        env={**{k: v for k, v in os.environ.items() if k != "MONOREPO_ROOT"}, **(env or {})},
        timeout=1800,
    )
    if result.returncode != 0:
        raise PantsFailed(
            f"./pants {' '.join(args)} failed:\n{result.stdout}\n{result.stderr[-5000:]}"
        )
    return result.stdout
