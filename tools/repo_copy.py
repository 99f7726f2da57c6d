"""A throwaway copy of the monorepo as a git repository, and Pants run inside it.

Tests and benchmarks that exercise Pants itself (changed-only selection, publishing, build
timings) cannot run Pants on the checkout that is running them (Pants holds that build root), so
they copy the checkout's files (tracked, and untracked but not ignored) to a temporary git
repository and run `./pants` there, as people do: with Pants' daemon, started by the first run
(about 15 s of loading the plugins and every BUILD file), which later runs reuse (about 1 s).
`stop_pantsd` stops it: whoever made the copy calls it when done (a daemon also stops by itself
a few seconds after its build root is deleted).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path


class PantsFailed(RuntimeError):
    """A `./pants` run that exited non-zero, with everything it printed: never a tail, since how
    much Pants prints (first builds, "Long running tasks" lines) depends on the machine's load.
    Tests judge a run by what the tools write for that purpose (`dist/test/`), or by all of it."""

    def __init__(self, args: tuple[str, ...], returncode: int, stdout: str, stderr: str) -> None:
        super().__init__(f"./pants {' '.join(args)} failed ({returncode}):\n{stdout}\n{stderr}")
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


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
    """Runs `./pants ARGS` in `repo`; returns stdout, raises PantsFailed with all it printed."""
    result = subprocess.run(
        ["./pants", "--pantsd", "--no-dynamic-ui", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        # Not the outer checkout's MONOREPO_ROOT (set for tests by pants.toml): the copy's tools
        # must find the copy as their repository root.
        env={**{k: v for k, v in os.environ.items() if k != "MONOREPO_ROOT"}, **(env or {})},
        timeout=1800,
    )
    if result.returncode != 0:
        raise PantsFailed(args, result.returncode, result.stdout, result.stderr)
    return result.stdout


def stop_pantsd(repo: Path, timeout: float = 30) -> None:
    """Stops the Pants daemon of `repo`, if one runs (its pid file is under `.pids/`)."""
    for pid_file in repo.glob(".pids/*/pantsd/pid"):
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, signal.SIGTERM)
        except (ValueError, OSError):  # no such process: stopped already
            continue
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.1)
