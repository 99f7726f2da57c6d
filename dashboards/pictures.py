"""The dashboards' pictures, drawn from real data: `./pants run dashboards:pictures`.

1. Starts, on 127.0.0.1: the local hub with cheap learner servers (`local_hub.LocalHub` with
   `benchmarks.cheap_spawner`: production's hub configuration, the server farm instead of
   containers), its proxy with its metrics port, and Prometheus (Debian's `prometheus`) scraping
   the hub's `/hub/metrics` as production does: infra's ServiceMonitor
   (`infra.monitoring.hub_service_monitor`: job `hub`, its path, a bearer token; here the local
   hub's own token, which has `read:metrics`) with the labels Kubernetes would give the target
   (namespace), every SCRAPE_SECONDS instead of 30 s so that a run of minutes has points; plus
   the proxy's metrics and a node exporter when one is on PATH.
2. Drives a short load (`LOAD`): learners following launch links (`benchmarks.learners`), one
   of them to a course whose image the farm is told is missing (a failed spawn); the idle
   culler (timeout CULL_IDLE_SECONDS) stops every server once its learner has gone.
3. Evaluates every panel's PromQL from `dashboards.build` (the dashboards of the default
   settings) over the run with `query_range`, as Grafana would (`dashboards.views`), and writes
   one view JSON per dashboard, the recording of the series the panels read
   (`tests/dashboards/recording/`, OpenMetrics, for tests/dashboards/test_dash_promql.py) and
   what had no source.
4. Runs the drawing program (`dashboards.draw`, matplotlib, from a resolve of its own) on the
   views: `docs/dashboards/<dashboard>.png`.

Progress goes to stdout. `--views-only` stops after step 3.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from benchmarks.capacity_lab import ServerFarm, cheap_image_map
from benchmarks.cheap_spawner import farm_params
from benchmarks.learners import Visit, learner_links, visit
from catalog import Catalog, find_repo_root, load_catalog
from dashboards.build import dashboards
from dashboards.common import DEFAULTS, Settings
from dashboards.views import (
    dashboard_view,
    grafana_intervals,
    metric_names,
    source_of,
    substitute,
    variables,
)
from hub.contract import HUB_JOB
from hub.launch import LaunchSettings
from hub.settings import CullSettings, HubSettings
from infra.monitoring import hub_service_monitor
from infra.stack_config import load_stack_config
from local_hub.processes import LocalHub, Started, free_port, stop_process, tail_of

SCRAPE_SECONDS = 5
CULL_IDLE_SECONDS = 120
CULL_EVERY_SECONDS = 30
#: Seconds of data before the first learner and after the last event.
LEAD_SECONDS = 30
TAIL_SECONDS = 30
DEFAULT_OUT = Path("docs/dashboards")
DEFAULT_VIEWS = Path("dist/dashboards/pictures")
DEFAULT_RECORDING = Path("tests/dashboards/recording")
RECORDING_FILE = "series.om.gz"
RECORDING_FACTS = "facts.json"
DRAW_PROGRAM = "pictures-draw"
#: The stack whose ServiceMonitor (infra.monitoring) the hub's scrape copies.
PRODUCTION_STACK = "prod"


@dataclass(frozen=True)
class Arrival:
    """Learners opening launch links `at` seconds after the load starts; `fail`: to the course
    whose image is missing."""

    at: float
    learners: int
    fail: bool = False


#: The load: two waves of learners and one failed launch between them.
LOAD = (Arrival(0, 3), Arrival(45, 1, fail=True), Arrival(90, 3))


# --- Prometheus -----------------------------------------------------------------------------


def scrape_job(
    monitor: Mapping[str, Any],
    target: str,
    token: str,
    interval_seconds: int,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """A Prometheus scrape config doing what a ServiceMonitor's (first) endpoint does, for one
    target: its path and authorization (the credentials given here, not a Secret's), the job
    `hub.contract.HUB_JOB` and the labels Kubernetes' discovery would give the target."""
    endpoint = monitor["spec"]["endpoints"][0]
    return {
        "job_name": HUB_JOB,
        "metrics_path": endpoint["path"],
        "scrape_interval": f"{interval_seconds}s",
        "authorization": {"type": endpoint["authorization"]["type"], "credentials": token},
        "static_configs": [{"targets": [target], "labels": dict(labels)}],
    }


def plain_job(name: str, target: str, interval_seconds: int) -> dict[str, Any]:
    return {
        "job_name": name,
        "scrape_interval": f"{interval_seconds}s",
        "static_configs": [{"targets": [target]}],
    }


class Prometheus(Started):
    """Debian's `prometheus` on a free 127.0.0.1 port with `jobs`, data in `state_dir`."""

    def __init__(self, state_dir: Path, jobs: Sequence[Mapping[str, Any]]) -> None:
        self.state_dir = Path(state_dir)
        self.jobs = list(jobs)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.state_dir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("`prometheus` is not on PATH: apt-get install prometheus")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        config = self.state_dir / "prometheus.yml"
        config.write_text(yaml.safe_dump({"scrape_configs": self.jobs}, sort_keys=False))
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.state_dir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {tail_of(self.log, 20)}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"prometheus was not ready in 60 s: {tail_of(self.log, 20)}")

    def stop(self) -> None:
        stop_process(self.process)

    def api(self, path: str, **params: Any) -> Any:
        response = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=60)
        answer = response.json()
        if answer.get("status") != "success":
            raise RuntimeError(f"Prometheus: {answer.get('error')} ({params})")
        return answer["data"]

    def targets(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.api("targets")["activeTargets"]
        return data

    def metric_names(self, start: float, end: float) -> set[str]:
        return set(self.api("label/__name__/values", start=f"{start:.0f}", end=f"{end:.0f}"))


# --- The load -----------------------------------------------------------------------------


def learners_of(
    load: Sequence[Arrival], catalog: Catalog, failing: str
) -> list[tuple[float, str, str | None]]:
    """(seconds after the start, course, notebook) of every learner of the load: the failing
    ones to course `failing`, the others spread over the other courses."""
    others = Catalog(tuple(course for course in catalog if course.slug != failing))
    links = iter(learner_links(others, sum(a.learners for a in load if not a.fail)))
    failing_notebooks = catalog[failing].notebooks
    learners = []
    for arrival in load:
        for _ in range(arrival.learners):
            if arrival.fail:
                notebook = failing_notebooks[0] if failing_notebooks else None
                learners.append((arrival.at, failing, notebook))
            else:
                course, notebook = next(links)
                learners.append((arrival.at, course, notebook))
    return learners


def run_load(
    hub_url: str,
    learners: Sequence[tuple[float, str, str | None]],
    progress: Callable[[str], None],
) -> list[Visit]:
    origin = time.perf_counter()
    with ThreadPoolExecutor(max(1, len(learners))) as pool:
        futures = []
        for at, course, notebook in learners:
            wait = origin + at - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            progress(f"  {time.perf_counter() - origin:5.0f} s  a learner opens {course}")
            futures.append(pool.submit(visit, hub_url, course, notebook, 60, origin))
        visits = [future.result() for future in futures]
    for one in visits:
        progress(f"  {one.course}: {one.status} {one.reason}".rstrip())
    return visits


def wait_until(
    condition: Callable[[], bool], timeout: float, progress: Callable[[str], None], what: str
) -> bool:
    deadline = time.monotonic() + timeout
    next_report = time.monotonic()
    while time.monotonic() < deadline:
        if condition():
            return True
        if time.monotonic() >= next_report:
            progress(f"  waiting for {what} ({deadline - time.monotonic():.0f} s left)")
            next_report += 30
        time.sleep(2)
    return False


def running_servers(hub: LocalHub) -> int:
    response = hub.api("GET", "/users")
    response.raise_for_status()
    return sum(bool(user.get("servers")) for user in response.json())


# --- Queries, the recording ---------------------------------------------------------------


def evaluate(
    prometheus: Prometheus, board: Mapping[str, Any], start: float, end: float
) -> dict[int, dict[str, list[Any]]]:
    """Every target of every panel over [start, end], with Grafana's variables and step."""
    results: dict[int, dict[str, list[Any]]] = {}
    for panel in board.get("panels", []):
        for target in panel.get("targets", []):
            interval, step, rate = grafana_intervals(
                end - start,
                int(panel.get("maxDataPoints") or 100),
                SCRAPE_SECONDS,
                int(target.get("intervalFactor") or 1),
            )
            expr = substitute(target["expr"], variables(interval, rate, end - start))
            data = prometheus.api(
                "query_range", query=expr, start=f"{start:.0f}", end=f"{end:.0f}", step=step
            )
            results.setdefault(panel["id"], {})[target["refId"]] = data["result"]
    return results


def panel_metrics(boards: Iterable[Mapping[str, Any]]) -> set[str]:
    return {
        name
        for board in boards
        for panel in board.get("panels", [])
        for target in panel.get("targets", [])
        for name in metric_names(target.get("expr", ""))
    }


def openmetrics(series: Sequence[Mapping[str, Any]]) -> str:
    """Prometheus' raw samples (range vector results) as OpenMetrics text, for `promtool tsdb
    create-blocks-from openmetrics`."""
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for one in series:
        by_name.setdefault(one["metric"]["__name__"], []).append(one)
    lines = []
    for name in sorted(by_name):
        lines.append(f"# TYPE {name} unknown")
        for one in sorted(by_name[name], key=lambda s: sorted(s["metric"].items())):
            labels = ",".join(
                f'{key}="{_escape(value)}"'
                for key, value in sorted(one["metric"].items())
                if key != "__name__"
            )
            for stamp, value in one["values"]:
                lines.append(f"{name}{{{labels}}} {value} {float(stamp):.3f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def record(
    prometheus: Prometheus, names: Iterable[str], start: float, end: float
) -> tuple[str, set[str]]:
    """The raw samples of the metrics `names` that Prometheus has over [start, end] as
    OpenMetrics, and which of them it had."""
    wanted = sorted(names)
    pattern = "|".join(wanted)
    data = prometheus.api(
        "query", query=f'{{__name__=~"{pattern}"}}[{round(end - start)}s]', time=f"{end:.3f}"
    )
    series = data["result"]
    return openmetrics(series), {one["metric"]["__name__"] for one in series}


# --- The command --------------------------------------------------------------------------


def describe_load(visits: Sequence[Visit]) -> str:
    ok = sum(v.status == "ok" for v in visits)
    failed = [v for v in visits if v.status != "ok"]
    text = f"{len(visits)} launches ({ok} reached their notebook"
    if failed:
        text += f", {len(failed)} failed: {failed[0].reason}"
    return text + ")"


def sources_missing(present: set[str], needed: set[str]) -> list[str]:
    """The sources of the panels' metrics that Prometheus did not have (`dashboards.views`)."""
    return sorted({source_of(name) for name in needed - present})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.pictures", description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: %(default)s")
    parser.add_argument("--views", type=Path, default=DEFAULT_VIEWS, help="default: %(default)s")
    parser.add_argument(
        "--recording", type=Path, default=DEFAULT_RECORDING, help="default: %(default)s"
    )
    parser.add_argument("--state", type=Path, default=Path("dist/dashboards/pictures-run"))
    parser.add_argument("--root", type=Path, default=None, help="monorepo root")
    parser.add_argument(
        "--draw", default=DRAW_PROGRAM, help="the drawing program (default: %(default)s on PATH)"
    )
    parser.add_argument("--views-only", action="store_true", help="no drawing")
    args = parser.parse_args(argv)

    def progress(line: str) -> None:
        print(line, flush=True)

    draw = shutil.which(args.draw) if not args.views_only else None
    if not args.views_only and draw is None:
        print(f"the drawing program {args.draw} is not on PATH (./pants run dashboards:pictures)")
        return 2
    root = args.root or find_repo_root()
    catalog = load_catalog(root)
    settings: Settings = DEFAULTS
    boards = dashboards(catalog, settings)
    images = cheap_image_map(catalog)
    failing = next(course.slug for course in reversed(list(catalog)) if not course.gpu)
    culling = CullSettings(idle_timeout=CULL_IDLE_SECONDS, every=CULL_EVERY_SECONDS)
    hub_settings = HubSettings(catalog, images, LaunchSettings(), culling)
    if args.state.exists():
        shutil.rmtree(args.state)
    args.state.mkdir(parents=True)
    learners = learners_of(LOAD, catalog, failing)

    progress(f"Pictures: the local hub with cheap servers; {images[failing]} is 'missing'")
    with ServerFarm(args.state / "farm", missing_images=[images[failing]]) as farm, LocalHub(
        hub_settings,
        args.state / "hub",
        configuration="benchmarks.cheap_spawner:configure_cheap",
        params=farm_params(farm.url, farm.token),
        learner_network=False,
        proxy_metrics=True,
        log_level="INFO",
    ) as hub:
        monitor = hub_service_monitor(load_stack_config(root / "infra", PRODUCTION_STACK))
        jobs = [
            scrape_job(
                monitor,
                f"127.0.0.1:{hub.hub_port}",
                hub.api_token,
                SCRAPE_SECONDS,
                {"namespace": settings.namespace, "pod": "hub-local", "service": HUB_JOB},
            ),
            plain_job("proxy", f"127.0.0.1:{hub.proxy_metrics_port}", SCRAPE_SECONDS),
        ]
        node_exporter = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
        node_process = None
        if node_exporter:
            node_port = free_port()
            node_process = subprocess.Popen(
                [node_exporter, f"--web.listen-address=127.0.0.1:{node_port}"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            jobs.append(plain_job("node", f"127.0.0.1:{node_port}", SCRAPE_SECONDS))
        try:
            with Prometheus(args.state / "prometheus", jobs) as prometheus:
                progress(
                    f"Pictures: Prometheus at {prometheus.url} scrapes every {SCRAPE_SECONDS} s"
                )
                start = time.time()
                time.sleep(LEAD_SECONDS)
                for target in prometheus.targets():
                    progress(
                        f"  target {target['labels'].get('job')}: {target['health']} "
                        f"{target.get('lastError', '')}".rstrip()
                    )
                progress(f"Pictures: the load: {len(learners)} learners")
                visits = run_load(hub.url, learners, progress)
                progress(f"Pictures: waiting for the culler (idle {CULL_IDLE_SECONDS} s)")
                wait_until(
                    lambda: running_servers(hub) == 0,
                    CULL_IDLE_SECONDS + 3 * CULL_EVERY_SECONDS + 60,
                    progress,
                    "the culler to stop every server",
                )
                time.sleep(TAIL_SECONDS)
                end = time.time()
                progress("Pictures: evaluating every panel's queries over the run")
                present = prometheus.metric_names(start, end)
                needed = panel_metrics(boards.values())
                recording, recorded = record(prometheus, needed & present, start, end)
                views = {}
                missing = sources_missing(present, needed)
                note = (
                    f"Local hub, cheap learner servers: {describe_load(visits)}; "
                    f"idle culler at {CULL_IDLE_SECONDS} s; scraped every {SCRAPE_SECONDS} s."
                )
                for name, board in boards.items():
                    results = evaluate(prometheus, board, start, end)
                    views[Path(name).stem] = dashboard_view(
                        board, results, present, start, end, note
                    )
        finally:
            stop_process(node_process)

    args.views.mkdir(parents=True, exist_ok=True)
    for stem, view in views.items():
        (args.views / f"{stem}.json").write_text(json.dumps(view, indent=1) + "\n")
    args.recording.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(args.recording / RECORDING_FILE, "wb", mtime=0) as out:
        out.write(recording.encode())
    facts = {
        "made": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(end)),
        "start": start,
        "end": end,
        "scrape_seconds": SCRAPE_SECONDS,
        "load": describe_load(visits),
        "metrics": sorted(recorded),
        "sources": sorted({source_of(name) for name in recorded}),
        "no_source": missing,
        "panels_without_data": {
            stem: [
                f"{panel['title']}: {panel['message']}"
                for panel in view["panels"]
                if panel.get("message")
            ]
            for stem, view in views.items()
        },
    }
    (args.recording / RECORDING_FACTS).write_text(json.dumps(facts, indent=1) + "\n")
    progress(f"Pictures: recorded {len(recorded)} metrics in {args.recording}")
    progress(f"Pictures: no source here for: {', '.join(missing) or 'none'}")
    if args.views_only or draw is None:
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for stem in views:
        picture = args.out / f"{stem}.png"
        subprocess.run([draw, str(args.views / f"{stem}.json"), str(picture)], check=True)
        progress(f"Pictures: {picture}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
