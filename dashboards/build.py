"""Writes every dashboard's JSON and the alert rules file: `python -m dashboards.build [--out DIR]`.

Output (stable names; the dashboards' uids are fixed in their modules):
`<out>/courses.json`, `<out>/hub.json`, `<out>/alert-rules.yaml`. Default `<out>`: dist/dashboards.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from catalog import Catalog, load_catalog
from dashboards.alerts import rules_yaml
from dashboards.common import Settings, to_json_data
from dashboards.courses import courses_dashboard
from dashboards.hub import hub_dashboard

RULES_FILE = "alert-rules.yaml"
DEFAULT_OUT = Path("dist/dashboards")


def dashboards(catalog: Catalog, settings: Settings) -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON data, for every dashboard; a deployment's (`settings.
    deployment`) with a uid and title of its own, so that every stack's fit in one Grafana."""
    boards = {
        "courses.json": to_json_data(courses_dashboard(catalog, settings)),
        "hub.json": to_json_data(hub_dashboard(settings)),
    }
    if settings.deployment:
        for board in boards.values():
            board["uid"] = f"{board['uid']}-{settings.deployment}"
            board["title"] = f"{board['title']} ({settings.deployment})"
    return boards


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build(catalog: Catalog, settings: Settings) -> dict[str, str]:
    """File name -> file text, for every output file of one deployment. Pure: the same input,
    the same bytes. No default settings, so that a deployment cannot get the defaults' culler
    max age or namespace by leaving them out."""
    files = {name: render_json(data) for name, data in dashboards(catalog, settings).items()}
    files[RULES_FILE] = rules_yaml(settings)
    return files


def write(files: dict[str, str], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in sorted(files.items()):
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def settings_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line flags for the settings that differ between deployments."""
    d = Settings()
    parser.add_argument("--namespace", default=d.namespace, help="the hub's namespace")
    parser.add_argument("--hub-job", default=d.hub_job, help="Prometheus job of the hub")
    parser.add_argument(
        "--culler-max-age",
        type=int,
        default=d.culler_max_age_seconds,
        help="the idle culler's --max-age in seconds (default %(default)s)",
    )
    parser.add_argument(
        "--spawn-failure-ratio",
        type=float,
        default=d.spawn_failure_ratio,
        help="share of failed spawns that fires an alert (default %(default)s)",
    )


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        namespace=args.namespace,
        hub_job=args.hub_job,
        culler_max_age_seconds=args.culler_max_age,
        spawn_failure_ratio=args.spawn_failure_ratio,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.build", description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: %(default)s")
    parser.add_argument(
        "--root", type=Path, default=None, help="monorepo root (default: found from the cwd)"
    )
    settings_arguments(parser)
    args = parser.parse_args(argv)
    files = build(load_catalog(args.root), settings_from(args))
    for path in write(files, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
