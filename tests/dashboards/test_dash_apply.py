"""`dashboards.apply` against a local HTTP server that stands in for Grafana.

`StandInGrafana` follows Grafana's documented folder and dashboard HTTP API for the calls the
client makes (GET/POST/PUT /api/folders, POST /api/dashboards/db, GET /api/dashboards/uid):
bearer-token auth (401), 404 for a missing folder, 412 `version-mismatch` when a dashboard's
version is stale and `overwrite` is false, and it can be told to answer any status instead.
It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dashboards import apply
from dashboards.build import build, write
from dashboards.common import DEFAULTS
from tests.dashboards.support import free_port, make_catalog, make_repo, panels_of

TOKEN = "glsa_test_token"


@dataclass
class GrafanaState:
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    # dashboard uid -> (status, body) to answer to its POST /api/dashboards/db
    answers: dict[str, tuple[int, Any]] = field(default_factory=dict)
    next_id: int = 1


class StandInGrafana(BaseHTTPRequestHandler):
    state: GrafanaState  # set on a subclass per server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: Any) -> None:
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body: Any = json.loads(self.rfile.read(length)) if length else {}
        self.state.requests.append((method, self.path, body))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._send(401, {"message": "Unauthorized"})
        route = (method, self.path.split("/")[2] if self.path.count("/") >= 2 else "")
        if route == ("GET", "folders"):
            return self._get_folder(self.path.rsplit("/", 1)[1])
        if route == ("POST", "folders"):
            return self._create_folder(body)
        if route == ("PUT", "folders"):
            return self._update_folder(self.path.rsplit("/", 1)[1], body)
        if (method, self.path) == ("POST", "/api/dashboards/db"):
            return self._save_dashboard(body)
        if method == "GET" and self.path.startswith("/api/dashboards/uid/"):
            found = self.state.dashboards.get(self.path.rsplit("/", 1)[1])
            return (
                self._send(200, found)
                if found
                else self._send(404, {"message": "Dashboard not found"})
            )
        return self._send(404, {"message": "Not found"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _get_folder(self, uid: str) -> None:
        folder = self.state.folders.get(uid)
        if folder is None:
            return self._send(404, {"message": "folder not found", "status": "not-found"})
        self._send(200, folder)

    def _create_folder(self, body: dict[str, Any]) -> None:
        uid = str(body.get("uid"))
        if uid in self.state.folders:
            return self._send(409, {"message": "a folder with the same uid already exists"})
        folder = {"id": self._id(), "uid": uid, "title": body["title"], "version": 1}
        self.state.folders[uid] = folder
        self._send(200, folder)

    def _update_folder(self, uid: str, body: dict[str, Any]) -> None:
        folder = self.state.folders.get(uid)
        if folder is None:
            return self._send(404, {"message": "folder not found", "status": "not-found"})
        if not body.get("overwrite") and body.get("version") != folder["version"]:
            return self._send(412, {"message": "the folder has been changed by someone else"})
        folder.update(title=body["title"], version=folder["version"] + 1)
        self._send(200, folder)

    def _save_dashboard(self, body: dict[str, Any]) -> None:
        board: dict[str, Any] = body.get("dashboard") or {}
        uid = str(board.get("uid"))
        if uid in self.state.answers:
            return self._send(*self.state.answers[uid])
        if not board.get("title"):
            return self._send(400, {"message": "Dashboard title cannot be empty"})
        if body.get("folderUid") not in self.state.folders:
            return self._send(400, {"message": "folder not found", "status": "not-found"})
        stored = self.state.dashboards.get(uid)
        version = stored["dashboard"]["version"] if stored else 0
        if stored and not body.get("overwrite") and board.get("version") != version:
            return self._send(
                412,
                {
                    "message": "The dashboard has been changed by someone else",
                    "status": "version-mismatch",
                },
            )
        saved = {
            **board,
            "version": version + 1,
            "id": stored["dashboard"]["id"] if stored else self._id(),
        }
        self.state.dashboards[uid] = {"dashboard": saved, "meta": {"folderUid": body["folderUid"]}}
        slug = board["title"].lower().replace(" ", "-")
        self._send(
            200,
            {
                "id": saved["id"],
                "uid": uid,
                "url": f"/d/{uid}/{slug}",
                "status": "success",
                "version": saved["version"],
                "slug": slug,
            },
        )

    def _id(self) -> int:
        self.state.next_id += 1
        return self.state.next_id


@dataclass
class Grafana:
    url: str
    state: GrafanaState


@pytest.fixture
def grafana() -> Iterator[Grafana]:
    state = GrafanaState()
    handler = type("Handler", (StandInGrafana,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Grafana(f"http://127.0.0.1:{server.server_address[1]}", state)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def built(tmp_path: Path) -> Path:
    out = tmp_path / "dist"
    write(build(make_catalog(), DEFAULTS), out)
    return out


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(apply.TOKEN_VARIABLE, TOKEN)


def run(url: str, built: Path, *extra: str) -> int:
    return apply.main(["--url", url, "--dir", str(built), *extra])


def test_creates_the_folder_and_every_dashboard(
    grafana: Grafana, built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(grafana.url, built, "--folder", "Course notebooks") == 0
    assert grafana.state.folders["course-notebooks"]["title"] == "Course notebooks"
    assert set(grafana.state.dashboards) == {"ol-courses", "ol-hub"}
    for saved in grafana.state.dashboards.values():
        assert saved["meta"]["folderUid"] == "course-notebooks"
    posts = [body for method, path, body in grafana.state.requests if path == "/api/dashboards/db"]
    assert [p["overwrite"] for p in posts] == [True, True]
    assert all(p["dashboard"]["id"] is None for p in posts)
    out = capsys.readouterr().out
    assert "created" in out and 'dashboard "Courses" (uid ol-courses): version 1' in out


def test_builds_in_memory_with_the_deployment_s_settings(grafana: Grafana, tmp_path: Path) -> None:
    """Without --dir, the uploaded dashboards follow the stack's culler and namespace."""
    repo = make_repo(tmp_path / "repo")
    settings = ["--culler-max-age", "43200", "--namespace", "x"]
    assert apply.main(["--url", grafana.url, "--root", str(repo), *settings]) == 0
    courses = grafana.state.dashboards["ol-courses"]["dashboard"]
    oldest = next(p for p in panels_of(courses) if p["title"] == "Oldest server per course")
    assert oldest["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 43200
    assert all('namespace="x"' in t["expr"] for p in panels_of(courses) for t in p["targets"])


def test_a_second_run_updates_in_place(grafana: Grafana, built: Path) -> None:
    assert run(grafana.url, built) == 0
    assert run(grafana.url, built) == 0
    assert {uid: d["dashboard"]["version"] for uid, d in grafana.state.dashboards.items()} == {
        "ol-courses": 2,
        "ol-hub": 2,
    }
    assert len(grafana.state.folders) == 1
    folder_posts = [r for r in grafana.state.requests if r[:2] == ("POST", "/api/folders")]
    assert len(folder_posts) == 1


def test_overwrites_a_dashboard_edited_in_grafana(grafana: Grafana, built: Path) -> None:
    """Someone saved the dashboard in Grafana's UI (version 7): the code's version wins."""
    assert run(grafana.url, built) == 0
    grafana.state.dashboards["ol-hub"]["dashboard"].update(version=7, title="Hub (edited)")
    assert run(grafana.url, built) == 0
    assert grafana.state.dashboards["ol-hub"]["dashboard"]["title"] == "Hub"
    assert grafana.state.dashboards["ol-hub"]["dashboard"]["version"] == 8


def test_renames_an_existing_folder(grafana: Grafana, built: Path) -> None:
    grafana.state.folders["course-notebooks"] = {
        "id": 1,
        "uid": "course-notebooks",
        "title": "Course  Notebooks",
        "version": 3,
    }
    assert run(grafana.url, built, "--folder", "Course notebooks") == 0
    assert grafana.state.folders["course-notebooks"]["title"] == "Course notebooks"
    assert ("PUT", "/api/folders/course-notebooks") in [
        (m, p) for m, p, _ in grafana.state.requests
    ]


def test_a_wrong_token_is_a_clear_error(
    grafana: Grafana,
    built: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(apply.TOKEN_VARIABLE, "wrong")
    assert run(grafana.url, built) == 1
    err = capsys.readouterr().err
    assert 'folder "Course notebooks"' in err and "Grafana answered 401: Unauthorized" in err
    assert grafana.state.dashboards == {}


@pytest.mark.parametrize(
    "status,body,shown",
    [
        (401, {"message": "Unauthorized"}, "401: Unauthorized"),
        (403, {"message": "Access denied to save dashboard"}, "403: Access denied"),
        (
            412,
            {
                "message": "The dashboard has been changed by someone else",
                "status": "version-mismatch",
            },
            "412: The dashboard has been changed by someone else (version-mismatch)",
        ),
        (500, {"message": "Failed to save dashboard"}, "500: Failed to save dashboard"),
        (502, "<html>Bad Gateway</html>", "502: <html>Bad Gateway</html>"),
    ],
)
def test_a_refused_dashboard_is_named_and_fails_the_run(
    grafana: Grafana,
    built: Path,
    capsys: pytest.CaptureFixture[str],
    status: int,
    body: Any,
    shown: str,
) -> None:
    grafana.state.answers["ol-courses"] = (status, body)
    assert run(grafana.url, built) == 1
    err = capsys.readouterr().err
    assert (
        f'error: dashboard "Courses" (uid ol-courses): upload failed: Grafana answered {shown}'
        in err
    )
    assert set(grafana.state.dashboards) == {"ol-hub"}  # the others are still applied


def test_dry_run_sends_nothing(
    grafana: Grafana,
    built: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(apply.TOKEN_VARIABLE)
    assert run(grafana.url, built, "--dry-run", "--folder", "Teaching") == 0
    assert grafana.state.requests == []
    out = capsys.readouterr().out
    assert 'would create or update folder "Teaching" (uid teaching)' in out
    assert 'would POST /api/dashboards/db dashboard "Hub" (uid ol-hub)' in out


def test_a_missing_token_is_refused_before_anything_is_sent(
    grafana: Grafana,
    built: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(apply.TOKEN_VARIABLE)
    with pytest.raises(SystemExit) as exit_info:
        run(grafana.url, built)
    assert exit_info.value.code == 2
    assert "GRAFANA_TOKEN is not set" in capsys.readouterr().err
    assert grafana.state.requests == []


def test_an_unreachable_grafana_is_a_clear_error(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert run(url, built) == 1
    assert f"cannot reach Grafana at {url}" in capsys.readouterr().err


def test_an_empty_dashboard_folder_is_an_error(
    grafana: Grafana, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(grafana.url, tmp_path) == 1
    assert "no dashboard JSON files" in capsys.readouterr().err
    assert grafana.state.requests == []


def test_folder_uid_is_stable_and_safe() -> None:
    assert apply.folder_uid("Course notebooks") == "course-notebooks"
    assert apply.folder_uid("  Ops / Teaching 2025 ") == "ops-teaching-2025"
    assert len(apply.folder_uid("x" * 100)) == 40
    with pytest.raises(ValueError):
        apply.folder_uid("///")
