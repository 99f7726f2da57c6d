"""Uploads the dashboards to Grafana: `python -m dashboards.apply --url URL [--folder NAME]`.

Also `./pants run dashboards:apply -- --url URL [--folder NAME] [--dry-run] [--dir DIR]`.
The API token comes from `GRAFANA_TOKEN` (a service account token with Editor rights).

Steps, using Grafana's HTTP API (a thin adapter over the standard library's `urllib`):
1. the folder: `GET /api/folders/<uid>`; missing: `POST /api/folders`; renamed:
   `PUT /api/folders/<uid>`. Its uid is derived from its name, so it is stable.
2. each dashboard: `POST /api/dashboards/db` with `overwrite: true` into that folder.

Without `--dir` the dashboards are built in memory from the catalog (same as
`python -m dashboards.build`, with the same deployment flags: `--culler-max-age`, `--namespace`,
...); with it, the `*.json` files of that folder are uploaded as they are.
Any answer other than 2xx is an error naming the folder or dashboard; the exit status is then
1 (2 for bad usage). `--dry-run` prints what would be sent and sends nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from catalog import load_catalog
from dashboards.build import dashboards, settings_arguments, settings_from
from dashboards.common import Settings

TOKEN_VARIABLE = "GRAFANA_TOKEN"
DEFAULT_FOLDER = "Course notebooks"
TIMEOUT_SECONDS = 30.0


class GrafanaError(Exception):
    """Grafana refused a request, or could not be reached; the message says which and why."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


@dataclass(frozen=True)
class Grafana:
    url: str
    token: str
    timeout: float = TIMEOUT_SECONDS

    def request(self, method: str, path: str, body: Any = None) -> Answer:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            self.url.rstrip("/") + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return Answer(response.status, _json(response.read()))
        except urllib.error.HTTPError as error:
            return Answer(error.code, _json(error.read()))
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise GrafanaError(f"cannot reach Grafana at {self.url}: {reason}") from None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return raw.decode("utf-8", "replace")[:500]


def _explain(answer: Answer) -> str:
    body = answer.body
    if isinstance(body, dict):
        message = str(body.get("message") or body.get("error") or "")
        status = body.get("status")
        detail = f"{message} ({status})" if status and message else message or json.dumps(body)
    else:
        detail = str(body or "")
    return f"Grafana answered {answer.status}" + (f": {detail}" if detail else "")


def _ok(answer: Answer) -> bool:
    return 200 <= answer.status < 300


def folder_uid(name: str) -> str:
    """A stable folder uid from its name: `Course notebooks` -> `course-notebooks`."""
    uid = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    if not uid:
        raise ValueError(f"folder name {name!r} has no letters or digits")
    return uid


def ensure_folder(grafana: Grafana, name: str) -> tuple[str, str]:
    """Creates the folder or renames it to `name`; returns (uid, what was done)."""
    uid = folder_uid(name)
    where = f'folder "{name}" (uid {uid})'
    found = grafana.request("GET", f"/api/folders/{uid}")
    if found.status == 404:
        created = grafana.request("POST", "/api/folders", {"uid": uid, "title": name})
        if not _ok(created):
            raise GrafanaError(f"{where}: creating it failed: {_explain(created)}")
        return uid, "created"
    if not _ok(found):
        raise GrafanaError(f"{where}: reading it failed: {_explain(found)}")
    if isinstance(found.body, dict) and found.body.get("title") == name:
        return uid, "unchanged"
    body = {"title": name, "version": _version(found.body), "overwrite": True}
    updated = grafana.request("PUT", f"/api/folders/{uid}", body)
    if not _ok(updated):
        raise GrafanaError(f"{where}: renaming it failed: {_explain(updated)}")
    return uid, "renamed"


def _version(body: Any) -> Any:
    return body.get("version") if isinstance(body, dict) else None


def upload_request(dashboard: dict[str, Any], folder: str) -> dict[str, Any]:
    """The body of `POST /api/dashboards/db` for one dashboard."""
    return {
        "dashboard": {**dashboard, "id": None},
        "folderUid": folder,
        "overwrite": True,
        "message": "Applied by dashboards.apply from the course-notebooks repository",
    }


def upload(grafana: Grafana, dashboard: dict[str, Any], folder: str) -> dict[str, Any]:
    answer = grafana.request("POST", "/api/dashboards/db", upload_request(dashboard, folder))
    if not _ok(answer):
        raise GrafanaError(f"{_name(dashboard)}: upload failed: {_explain(answer)}")
    return answer.body if isinstance(answer.body, dict) else {}


def _name(dashboard: dict[str, Any]) -> str:
    return f'dashboard "{dashboard.get("title")}" (uid {dashboard.get("uid")})'


def load_dashboards(
    directory: Path | None, settings: Settings, root: Path | None = None
) -> list[dict[str, Any]]:
    """The dashboards to upload: `*.json` under `directory`, or built from the catalog (under
    `root`, default: the monorepo's) with the deployment's `settings`."""
    if directory is None:
        return list(dashboards(load_catalog(root), settings).values())
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise GrafanaError(f"no dashboard JSON files in {directory}; run dashboards.build first")
    loaded = []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise GrafanaError(f"{path}: not JSON: {error}") from None
        if not isinstance(data, dict) or not data.get("uid") or not data.get("title"):
            raise GrafanaError(f"{path}: not a dashboard with a uid and a title")
        loaded.append(data)
    return loaded


def apply(
    grafana: Grafana, folder_name: str, boards: Sequence[dict[str, Any]], out: TextIO
) -> list[str]:
    """Creates or updates the folder, then uploads every dashboard; returns the errors."""
    uid, done = ensure_folder(grafana, folder_name)
    print(f'folder "{folder_name}" (uid {uid}): {done}', file=out)
    errors = []
    for board in boards:
        try:
            result = upload(grafana, board, uid)
        except GrafanaError as error:
            errors.append(str(error))
            continue
        print(f"{_name(board)}: version {result.get('version')} at {result.get('url')}", file=out)
    return errors


def dry_run(url: str, folder_name: str, boards: Sequence[dict[str, Any]], out: TextIO) -> None:
    uid = folder_uid(folder_name)
    print(f"dry run: nothing is sent to {url}", file=out)
    print(f'would create or update folder "{folder_name}" (uid {uid})', file=out)
    for board in boards:
        panels = len([p for p in board.get("panels", []) if p.get("type") != "row"])
        print(f"would POST /api/dashboards/db {_name(board)}, {panels} panels", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dashboards.apply", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="Grafana's base URL, http(s)://...")
    parser.add_argument("--folder", default=DEFAULT_FOLDER, help="default: %(default)s")
    parser.add_argument("--dry-run", action="store_true", help="print, send nothing")
    parser.add_argument("--dir", type=Path, default=None, help="upload these *.json files")
    parser.add_argument(
        "--root", type=Path, default=None, help="monorepo root (default: found from the cwd)"
    )
    settings_arguments(parser)  # used when building in memory (no --dir)
    args = parser.parse_args(argv)
    if not re.match(r"^https?://[^/\s]+", args.url):
        parser.error(f"--url {args.url!r} is not an http:// or https:// URL")
    token = os.environ.get(TOKEN_VARIABLE, "")
    if not token and not args.dry_run:
        parser.error(f"{TOKEN_VARIABLE} is not set: export a Grafana service account token")
    try:
        folder_uid(args.folder)
        boards = load_dashboards(args.dir, settings_from(args), args.root)
        if args.dry_run:
            dry_run(args.url, args.folder, boards, sys.stdout)
            return 0
        errors = apply(Grafana(args.url, token), args.folder, boards, sys.stdout)
    except (GrafanaError, ValueError) as error:
        errors = [str(error)]
    for message in errors:
        print(f"error: {message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
