"""The capacity scenario's processes: PostgreSQL, the server farm and ours and stock hubs on
127.0.0.1, and the measuring of one load of learners on one hub.
"""

from __future__ import annotations

import dataclasses
import random
import re
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from benchmarks.cheap_servers import FARM_TOKEN_ENV
from benchmarks.cheap_spawner import HUB_TRAITS, STOCK_COURSE, STOCK_NOTEBOOK, farm_params
from benchmarks.learners import Visit, first_line, learner_links, visit
from benchmarks.process_stats import own_cpu, process_cpu, process_rss, tree_cpu
from catalog import Catalog
from hub.launch import LaunchSettings
from hub.settings import CullSettings, HubSettings
from local_hub.postgres import PostgresServer
from local_hub.processes import (
    LocalHub,
    LocalHubError,
    Started,
    child_environment,
    free_port,
    stop_process,
    tail_of,
)

OURS, STOCK = "ours", "stock"
CONFIGURATIONS = {
    OURS: "benchmarks.cheap_spawner:configure_cheap",
    STOCK: "benchmarks.cheap_spawner:configure_cheap_stock",
}


#: The p95 a sustained launch rate must keep (seconds, link to notebook page).
P95_TARGET = 2.0


def cheap_image_map(catalog: Catalog) -> dict[str, str]:
    """An image reference per course image (`Catalog.image_keys`) for the launch plans; none is
    pulled or run."""
    return {key: f"ol-course-notebooks:{key}-not-run" for key in catalog.image_keys}


# --- The server farm process -----------------------------------------------------------------


class ServerFarm(Started):
    """The `benchmarks.cheap_servers` process on 127.0.0.1 (context manager); starts of the
    `missing_images` fail."""

    def __init__(self, state_dir: Path, missing_images: Sequence[str] = ()) -> None:
        self.missing_images = tuple(missing_images)
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.log = self.state_dir / "farm.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def count(self) -> int:
        response = requests.get(
            f"{self.url}servers", headers={"Authorization": f"token {self.token}"}, timeout=10
        )
        response.raise_for_status()
        return int(response.json()["count"])

    def start(self) -> None:
        env = {**child_environment(), FARM_TOKEN_ENV: self.token}
        command = [sys.executable, "-m", "benchmarks.cheap_servers", f"--port={self.port}"]
        command += [f"--missing-image={image}" for image in self.missing_images]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalHubError(
                    f"the server farm exited ({self.process.returncode}): {tail_of(self.log, 20)}"
                )
            try:
                self.count()
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise LocalHubError(f"the server farm did not start in 60s: {tail_of(self.log, 20)}")

    def stop(self) -> None:
        stop_process(self.process)


# --- Loads and their results -------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """`learners` arriving over `window` seconds: at random moments (seeded) or evenly."""

    label: str
    learners: int
    window: float
    spread: str = "random"
    seed: int = 14

    def arrivals(self) -> list[float]:
        if self.spread == "even":
            gap = self.window / self.learners if self.learners else 0
            return [index * gap for index in range(self.learners)]
        rng = random.Random(self.seed)
        return sorted(rng.uniform(0, self.window) for _ in range(self.learners))

    @property
    def rate(self) -> float:
        return self.learners / self.window if self.window else float("inf")


#: The processes whose CPU and memory are measured, in table order.
PARTS = ("hub", "proxy", "db", "farm", "driver")
#: Those that serve every hub of a run.
SHARED_PARTS = ("db", "farm", "driver")


@dataclass
class LoadResult:
    hub: str
    load: Load
    visits: list[Visit] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    rss_before: dict[str, int] = field(default_factory=dict)
    rss_after: dict[str, int] = field(default_factory=dict)
    db_connections: int = 0
    lateness: float = 0.0
    log_problems: list[tuple[str, int]] = field(default_factory=list)
    error: str = ""

    def count(self, status: str) -> int:
        return sum(v.status == status for v in self.visits)

    @property
    def ok_seconds(self) -> list[float]:
        return sorted(v.seconds for v in self.visits if v.status == "ok")

    def quantile(self, q: float) -> float:
        data = self.ok_seconds
        if not data:
            return float("nan")
        if len(data) == 1:
            return data[0]
        return statistics.quantiles(data, n=100, method="inclusive")[round(q * 100) - 1]

    @property
    def all_ok(self) -> bool:
        return not self.error and bool(self.visits) and self.count("ok") == len(self.visits)

    @property
    def sustained(self) -> bool:
        """Every launch ok, with p95 within the target."""
        return self.all_ok and self.quantile(0.95) <= P95_TARGET

    @property
    def launches_per_second(self) -> float:
        """Ok launches over the time from the first arrival to the last launch's end."""
        if not self.visits:
            return float("nan")
        span = max(v.ended for v in self.visits) - min(v.started for v in self.visits)
        return self.count("ok") / span if span > 0 else float("nan")

    def cpu_per_launch(self, part: str) -> float:
        ok = self.count("ok")
        return self.cpu.get(part, float("nan")) / ok if ok else float("nan")

    def rss_per_user(self, part: str) -> float:
        """Bytes of resident memory the part grew per ok launch (servers still running)."""
        ok = self.count("ok")
        if not ok or not self.rss_after.get(part):
            return float("nan")
        return (self.rss_after[part] - self.rss_before.get(part, 0)) / ok

    @property
    def max_in_flight(self) -> int:
        events = sorted(
            [(v.started, 1) for v in self.visits] + [(v.ended, -1) for v in self.visits]
        )
        current = peak = 0
        for _, change in events:
            current += change
            peak = max(peak, current)
        return peak

    def reasons(self) -> list[tuple[str, str, int]]:
        """(status, reason, count) of the launches that did not succeed, most frequent first."""
        counted = Counter((v.status, v.reason) for v in self.visits if v.status != "ok")
        return [(status, reason, n) for (status, reason), n in counted.most_common()]


_LOG_PREFIX = re.compile(r"^\[([EWC]) [0-9-]+ [0-9:.]+ [^\]]*\]\s*")
_PROXY_PROBLEM = re.compile(r"\b(error|warn|warning)\b", re.IGNORECASE)


def _normalize(line: str) -> str:
    line = re.sub(r"\?[^\s)]*", "?…", line)
    line = re.sub(r"/(user|users|spawn-pending|servers)/[^/\s'\"]+", r"/\1/<name>", line)
    line = re.sub(r"\b[0-9a-f]{8}-[0-9a-f-]{27}\b", "<uuid>", line)
    line = re.sub(r"\d+(\.\d+)?", "#", line)
    return line.strip()[:200]


def log_problems(hub_log: Path, hub_offset: int, proxy_log: Path, proxy_offset: int) -> Counter:
    """Warnings and errors the hub (`[W`/`[E`/`[C` lines) and the proxy (lines that say error
    or warning) logged since the offsets, counted by message with names and numbers left out."""
    counted: Counter[str] = Counter()
    for path, offset, is_hub in ((hub_log, hub_offset, True), (proxy_log, proxy_offset, False)):
        try:
            with open(path, "rb") as log:
                log.seek(offset)
                text = log.read().decode(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if is_hub:
                match = _LOG_PREFIX.match(line)
                if match:
                    counted[f"hub {match.group(1)}: {_normalize(line[match.end():])}"] += 1
            elif _PROXY_PROBLEM.search(line):
                counted[f"proxy: {_normalize(line)}"] += 1
    return counted


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# --- The two hubs, their database and the farm ---------------------------------------------------


class CapacityLab(Started):
    """PostgreSQL (a database per hub), the server farm, and ours and stock hubs on it, on
    127.0.0.1 (context manager). `run(name, load)` sends a load of learners to one hub and
    measures it; `clean(name)` deletes its throwaway users (and so stops their servers).

    `culling` and `settings_changes` (fields of `HubSettings`, e.g. launch limits) make the
    hubs' settings, `hub_traits` sets JupyterHub traits (`concurrent_spawn_limit`...) on both;
    `timeout` bounds each learner, `workers` the learners under way at once.
    """

    def __init__(
        self,
        catalog: Catalog,
        state_dir: Path,
        *,
        hubs: Sequence[str] = (OURS, STOCK),
        culling: CullSettings | None = None,
        settings_changes: Mapping[str, Any] | None = None,
        hub_traits: Mapping[str, Any] | None = None,
        stock_course: str | None = None,
        log_level: str = "WARN",
        timeout: float = 60,
        workers: int = 500,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.state_dir = Path(state_dir)
        self.names = tuple(hubs)
        images = cheap_image_map(catalog)
        settings = HubSettings(catalog, images, LaunchSettings(), culling or CullSettings())
        # E.g. the launch limits production sets: the same on both hubs' parameters, used by ours.
        self.settings = dataclasses.replace(settings, **dict(settings_changes or {}))
        first = next(iter(catalog))
        self.stock_course = stock_course or first.slug
        course = catalog[self.stock_course]
        self.stock_notebook = course.notebooks[0] if course.notebooks else None
        self.hub_traits = dict(hub_traits or {})
        self.log_level = log_level
        self.timeout = timeout
        self.workers = workers
        self.progress = progress or (lambda line: None)
        self.hubs: dict[str, LocalHub] = {}
        self.postgres: PostgresServer | None = None
        self.farm: ServerFarm | None = None
        self._stack = ExitStack()
        #: Set on an interrupt: loads stop sending learners (those under way finish).
        self.stopping = threading.Event()

    def start(self) -> None:
        self.postgres = PostgresServer(self.names)
        self._stack.enter_context(self.postgres)
        self.farm = self._stack.enter_context(ServerFarm(self.state_dir / "farm"))
        for name in self.names:
            params = farm_params(self.farm.url, self.farm.token, **{HUB_TRAITS: self.hub_traits})
            if name == STOCK:
                params.update(
                    {STOCK_COURSE: self.stock_course, STOCK_NOTEBOOK: self.stock_notebook}
                )
            hub = LocalHub(
                self.settings,
                self.state_dir / name,
                db_url=self.postgres.url_for(name),
                log_level=self.log_level,
                configuration=CONFIGURATIONS[name],
                params=params,
                # The farm's servers are processes on this host, not containers: loopback only.
                learner_network=False,
            )
            self._stack.callback(hub.stop)
            hub.start()
            self.hubs[name] = hub

    def stop(self) -> None:
        self._stack.close()

    def links(self, name: str, count: int) -> list[tuple[str, str | None]]:
        """What each learner of a load opens: spread over every course on ours; the one course
        the stock hub serves on stock."""
        if name == STOCK:
            return [(self.stock_course, self.stock_notebook)] * count
        return learner_links(self.catalog, count)

    def _pids(self, name: str) -> dict[str, int | None]:
        hub = self.hubs[name]
        return {
            "hub": hub.hub.pid if hub.hub else None,
            "proxy": hub.proxy.pid if hub.proxy else None,
            "db": self.postgres.postmaster_pid() if self.postgres else None,
            "farm": self.farm.pid if self.farm else None,
        }

    def _cpu(self, pids: Mapping[str, int | None]) -> dict[str, float]:
        cpu = {part: process_cpu(pid) for part, pid in pids.items() if part != "db"}
        cpu["db"] = tree_cpu(pids["db"])
        cpu["driver"] = own_cpu()
        return cpu

    def _db_connections(self, database: str) -> int:
        if self.postgres is None:
            return 0
        try:
            connection = self.postgres.connect()
        except Exception:  # noqa: BLE001 - a sample less
            return 0
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
                )
                return int(cursor.fetchone()[0])
        finally:
            connection.close()

    def run(self, name: str, load: Load) -> LoadResult:
        """Sends `load` to hub `name` and measures it; never raises (an error is the result's).
        The learners' users stay (their servers running) until `clean(name)`."""
        result = LoadResult(name, load)
        try:
            self._run(name, load, result)
        except Exception as error:  # noqa: BLE001 - a row of the table, not a crash
            result.error = f"{type(error).__name__}: {first_line(error)}"
        return result

    def run_together(self, names: Sequence[str], load: Load) -> list[LoadResult]:
        """The same load (same arrival moments) on every hub named, all at once: the fairest
        comparison on a shared machine. What the hubs share (PostgreSQL, the farm, the driver)
        is measured over the whole and shared out by launches."""
        pids = self._pids(names[0])
        cpu_before = self._cpu(pids)
        farm_before = process_rss(pids["farm"])
        with ThreadPoolExecutor(len(names)) as pool:
            try:
                results = list(pool.map(lambda name: self.run(name, load), names))
            except BaseException:
                self.stopping.set()
                raise
        cpu_after = self._cpu(pids)
        farm_growth = process_rss(pids["farm"]) - farm_before
        launches = sum(r.count("ok") for r in results)
        for r in results:
            share = r.count("ok") / launches if launches else float("nan")
            for part in SHARED_PARTS:
                r.cpu[part] = (cpu_after[part] - cpu_before[part]) * share
            r.rss_before["farm"] = farm_before
            r.rss_after["farm"] = farm_before + round(farm_growth * share) if launches else 0
        return results

    def _run(self, name: str, load: Load, result: LoadResult) -> None:
        hub = self.hubs[name]
        pids = self._pids(name)
        links = self.links(name, load.learners)
        arrivals = load.arrivals()
        hub_offset, proxy_offset = _size(hub.hub_log), _size(hub.proxy_log)
        result.rss_before = {part: process_rss(pid) for part, pid in pids.items()}
        cpu_before = self._cpu(pids)
        done: list[Visit] = []
        stop_sampling = threading.Event()

        def sample() -> None:
            while not stop_sampling.wait(0.5):
                result.db_connections = max(result.db_connections, self._db_connections(name))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        origin = time.perf_counter()
        next_report = origin + 10
        lateness = 0.0
        try:
            with ThreadPoolExecutor(min(self.workers, max(1, load.learners))) as pool:
                futures: list[Future[Visit]] = []
                for offset, (course, notebook) in zip(arrivals, links):
                    while not self.stopping.is_set():
                        now = time.perf_counter()
                        if now >= origin + offset:
                            break
                        time.sleep(min(origin + offset - now, 0.5))
                        if time.perf_counter() >= next_report:
                            next_report += 10
                            self._report(name, load, futures)
                    if self.stopping.is_set():
                        break
                    lateness = max(lateness, time.perf_counter() - origin - offset)
                    futures.append(
                        pool.submit(visit, hub.url, course, notebook, self.timeout, origin)
                    )
                while not all(f.done() for f in futures):
                    time.sleep(0.2)
                    if time.perf_counter() >= next_report:
                        next_report += 10
                        self._report(name, load, futures)
                done = [f.result() for f in futures]
        finally:
            stop_sampling.set()
            sampler.join(5)
        cpu_after = self._cpu(pids)
        result.visits = done
        result.cpu = {part: cpu_after[part] - cpu_before[part] for part in PARTS}
        result.rss_after = {part: process_rss(pid) for part, pid in pids.items()}
        # How late the driver itself started learners (its own queue), not the hub's doing.
        result.lateness = max(
            [lateness] + [v.started - a for v, a in zip(done, arrivals)], default=0.0
        )
        result.log_problems = log_problems(
            hub.hub_log, hub_offset, hub.proxy_log, proxy_offset
        ).most_common()
        self.progress(
            f"  {name:<6}{load.label}: {result.count('ok')}/{load.learners} ok, "
            f"p95 {result.quantile(0.95):.2f} s"
        )

    def _report(self, name: str, load: Load, futures: Sequence[Future[Visit]]) -> None:
        finished = [f.result() for f in futures if f.done()]
        bad = sum(v.status != "ok" for v in finished)
        self.progress(
            f"  {name:<6}{load.label}: {len(futures)}/{load.learners} arrived, "
            f"{len(finished)} done, {bad} not ok"
        )

    def users(self, name: str) -> list[str]:
        """Every user of hub `name` (the REST API's pages)."""
        hub, limit = self.hubs[name], 200
        found: list[str] = []
        while True:
            response = hub.api("GET", "/users", params={"offset": len(found), "limit": limit})
            response.raise_for_status()
            page = [user["name"] for user in response.json()]
            found += page
            if len(page) < limit:
                return found

    def clean(self, name: str, timeout: float = 180) -> list[str]:
        """Deletes every user of hub `name` (their servers stop), within `timeout` seconds in
        all; returns what could not be deleted."""
        hub = self.hubs[name]
        deadline = time.monotonic() + timeout
        try:
            users = self.users(name)
        except (requests.RequestException, ValueError) as error:
            return [f"users of {name}: {first_line(error)}"]

        def delete(user: str) -> str | None:
            while True:
                try:
                    response = hub.api("DELETE", f"/users/{quote(user, safe='')}")
                    if response.status_code in (204, 404):
                        return None
                    problem = f"HTTP {response.status_code}"  # 400 while a spawn is pending
                except requests.RequestException as error:
                    problem = first_line(error)
                if time.monotonic() > deadline:
                    return f"{user}: {problem}"
                time.sleep(0.5)

        with ThreadPoolExecutor(8) as pool:
            return [problem for problem in pool.map(delete, users) if problem]
