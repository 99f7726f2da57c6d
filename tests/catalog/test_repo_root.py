"""The one repo-root finder (`catalog.find_repo_root`): $MONOREPO_ROOT, else the nearest folder
at or above the working directory (or a given start) with pants.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog import find_repo_root

# Folders under tmp_path: repo/ holds pants.toml, repo/a/b is inside it, outside/ has none.
LAYOUT = ("repo/pants.toml", "repo/a/b/", "repo/courses/", "outside/courses/")


@pytest.mark.parametrize(
    "env, cwd, start, expected",
    [
        pytest.param(None, "repo", None, "repo", id="at-the-root"),
        pytest.param(None, "repo/a/b", None, "repo", id="below-the-root"),
        pytest.param("repo/a", "outside", None, "repo/a", id="monorepo-root-wins"),
        pytest.param("outside", "repo", "repo/a/b", "repo", id="an-explicit-start-wins"),
        pytest.param(None, "outside", "repo/a", "repo", id="from-the-start"),
        pytest.param(None, "outside", None, FileNotFoundError, id="courses-alone-is-no-root"),
    ],
)
def test_find_repo_root(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: str | None,
    cwd: str,
    start: str | None,
    expected: object,
) -> None:
    for entry in LAYOUT:
        path = tmp_path / entry
        if entry.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")
    if env is None:
        monkeypatch.delenv("MONOREPO_ROOT", raising=False)
    else:
        monkeypatch.setenv("MONOREPO_ROOT", str(tmp_path / env))
    monkeypatch.chdir(tmp_path / cwd)
    given = tmp_path / start if start else None
    if expected is FileNotFoundError:
        with pytest.raises(FileNotFoundError) as raised:
            find_repo_root(given)
        assert str(raised.value) == (
            f"no pants.toml at or above {(tmp_path / cwd).resolve()}: run this from the "
            "repository or set MONOREPO_ROOT"
        )
    else:
        assert find_repo_root(given) == (tmp_path / str(expected)).resolve()
