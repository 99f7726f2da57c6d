"""The hub's own capacity: N simulated learners following launch links on a hub whose servers
are cheap, ours against stock, side by side.

Real: both hubs are the local hub's processes (`LocalHub`: JupyterHub and configurable-http-proxy
on 127.0.0.1) with PostgreSQL as their database (one server, a database each), ours with the
production hub configuration (`hub.config`: our TmpAuthenticator, CourseSpawner planning, the
culler service), stock with TmpAuthenticator and the plain spawner with the course fixed. Each
learner is a browser without JavaScript (a `requests.Session` of its own, with a browser's
`Sec-Fetch-*` headers): it opens `/tmplogin?course=X&notebook=Y` and follows every redirect
(throwaway user, `/hub/spawn`, the spawn-pending page and its progress event stream where the
spawn takes longer than the hub waits, the OAuth round trip with the learner's server) until the
notebook URL `/user/<name>/lab/tree/<notebook>` answers with a page naming the learner's own
course and notebook. Anything else is a failure with its reason; a 429/503 is a refusal.

Cheap: the learners' servers (`hub.cheap_servers`: one farm process, a port per learner, the
same answers to the hub and the browser as jupyterhub-singleuser, no container).

Measured per load (a number of learners arriving over a window, at random moments or evenly):
how each launch ended, p50/p95/max seconds from the link to the notebook page, launches per
second, CPU seconds per launch of the hub process, the proxy, PostgreSQL, the farm and the
driver itself (all on this machine, /proc), the hub's and the proxy's memory per user (RSS
growth over the load / launches, with every learner's server still running), the most database
connections the hub held, and the warnings and errors of the hub's and the proxy's logs. A
stepped search raises the arrival rate until a launch fails: the rate sustained with p95 <= 2 s
and no failure, and the first thing that broke with its error.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import random
import re
import resource
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlparse

import requests

from catalog import Catalog
from hub.cheap_servers import FARM_TOKEN_ENV, read_page
from hub.cheap_spawner import HUB_TRAITS, STOCK_COURSE, STOCK_NOTEBOOK, farm_params
from hub.launch import LaunchSettings
from hub.local_client import launch_link, user_from_url
from hub.local_postgres import PostgresServer
from hub.local_processes import (
    LocalHub,
    LocalHubError,
    Started,
    child_environment,
    free_port,
    stop_process,
    tail_of,
)
from hub.settings import CullSettings, HubSettings

OURS, STOCK = "ours", "stock"
CONFIGURATIONS = {
    OURS: "hub.cheap_spawner:configure_cheap",
    STOCK: "hub.cheap_spawner:configure_cheap_stock",
}
#: JupyterHub's own limits as the zero-to-jupyterhub chart sets them by default
#: (`hub.concurrentSpawnLimit`, `hub.consecutiveFailureLimit`), set alike on both hubs of the
#: scenario: where the hub itself breaks. (Infra sizes each stack's spawn limit for pod start
#: times, which cheap servers do not have: docs/ARCHITECTURE.md, "Launch capacity".)
CHART_HUB_TRAITS = {"concurrent_spawn_limit": 64, "consecutive_failure_limit": 5}
#: The p95 a sustained launch rate must keep (seconds, link to notebook page).
P95_TARGET = 2.0
#: Answers that mean the hub refused the launch on purpose (limits), not that it failed.
REFUSALS = (429, 503)
#: A browser's headers on a navigation (the hub and HubOAuth decide XSRF checks by them).
BROWSER_HEADERS = {
    "User-Agent": "Mozilla/5.0 (ol-capacity-learner)",
    "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "same-origin",
    "Sec-Fetch-Dest": "document",
}
#: ... and on the spawn-pending page's EventSource.
EVENT_STREAM_HEADERS = {
    "Accept": "text/event-stream",
    "Sec-Fetch-Mode": "cors",
    "Sec-Fetch-Dest": "empty",
}
#: Where a launch's time goes: seconds from opening the link to the first answer of each (a path
#: pattern), and to the notebook page (the end).
STEPS: tuple[tuple[str, str | None], ...] = (
    ("logged in", r"^/hub/tmplogin$"),
    ("spawn answered", r"^/hub/spawn(/.*)?$"),
    ("server answers", r"^/user/[^/]+/?$"),
    ("OAuth authorize", r"^/hub/api/oauth2/authorize$"),
    ("OAuth callback", r"^/user/[^/]+/oauth_callback$"),
    ("notebook page", None),
)


def cheap_image_map(catalog: Catalog) -> dict[str, str]:
    """An image reference per course for the launch plans; none is pulled or run."""
    return {course.slug: f"ol-course-notebooks:{course.slug}-not-run" for course in catalog}


def learner_links(catalog: Catalog, count: int) -> list[tuple[str, str | None]]:
    """`count` (course, notebook) pairs spread over the courses, then over their notebooks."""
    courses = list(catalog)
    pairs: list[tuple[str, str | None]] = []
    for index in range(count):
        course = courses[index % len(courses)]
        notebooks = course.notebooks
        notebook = notebooks[(index // len(courses)) % len(notebooks)] if notebooks else None
        pairs.append((course.slug, notebook))
    return pairs


# --- /proc ---------------------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def process_cpu(pid: int | None, waited_children: bool = False) -> float:
    """CPU seconds (user + system) of a process; NaN where /proc cannot tell."""
    fields = _stat_fields(pid) if pid else None
    if fields is None:
        return float("nan")
    ticks = int(fields[11]) + int(fields[12])
    if waited_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _CLOCK_TICKS


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def tree_cpu(pid: int | None) -> float:
    """CPU seconds of a process, its children that ended and its live children (PostgreSQL's
    postmaster and its backends)."""
    if not pid:
        return float("nan")
    # A child that ends meanwhile is left out (its time moves to the parent's waited children).
    live = (process_cpu(child) for child in children(pid))
    return process_cpu(pid, waited_children=True) + sum(t for t in live if t == t)


def process_rss(pid: int | None) -> int:
    """Resident memory in bytes (0 where /proc cannot tell)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text() if pid else ""
    except OSError:
        return 0
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- The server farm process -----------------------------------------------------------------


class ServerFarm(Started):
    """The `hub.cheap_servers` process on 127.0.0.1 (context manager)."""

    def __init__(self, state_dir: Path) -> None:
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
        command = [sys.executable, "-m", "hub.cheap_servers", f"--port={self.port}"]
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


# --- One learner ---------------------------------------------------------------------------


class VisitError(Exception):
    """The launch did not reach the notebook; `status` is the HTTP answer that says why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Visit:
    """One learner's launch: `ok`, `refused` (the hub said 429/503) or `failed` (with the
    reason); `started`/`ended`: seconds since the load began; `steps`: seconds from the link to
    each of STEPS (NaN where not seen)."""

    course: str
    notebook: str | None
    status: str
    started: float
    ended: float
    reason: str = ""
    user: str | None = None
    steps: tuple[float, ...] = ()

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def _left(deadline: float) -> float:
    left = deadline - time.perf_counter()
    if left <= 0:
        raise requests.Timeout("the learner's time ran out")
    return left


def _wait_for_spawn(session: requests.Session, page: requests.Response, deadline: float) -> None:
    """What the spawn-pending page's JavaScript does: follow the progress event stream (its
    URL, with the `_xsrf` argument, is in the page) until the server is ready or failed."""
    match = re.search(r'new EventSource\("([^"]+)"\)', page.text)
    if match is None:
        raise VisitError(f"no progress stream on {urlparse(page.url).path}", page.status_code)
    url = urljoin(page.url, html.unescape(match.group(1)))
    with session.get(
        url, headers=EVENT_STREAM_HEADERS, stream=True, timeout=(10, _left(deadline))
    ) as stream:
        if stream.status_code != 200:
            raise VisitError(f"progress stream answered {stream.status_code}", stream.status_code)
        for line in stream.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                event = json.loads(line[5:])
                if event.get("ready"):
                    return
                if event.get("failed"):
                    raise VisitError(f"spawn failed: {event.get('message', '')}".strip())
            _left(deadline)
    raise VisitError("the progress stream ended before the server was ready")


def check_landing(
    response: requests.Response, user: str | None, course: str, notebook: str | None
) -> None:
    """Raises `VisitError` unless `response` is `user`'s page of `course`'s `notebook`."""
    path = unquote(urlparse(response.url).path)
    if response.status_code != 200:
        raise VisitError(f"HTTP {response.status_code} at {_route(path)}", response.status_code)
    if user is None:
        raise VisitError(f"ended at {_route(path)}, not at a learner's server")
    expected = f"/user/{user}/lab" + (f"/tree/{notebook}" if notebook else "")
    if path.rstrip("/") != expected:
        raise VisitError(f"ended at {_route(path)}, not at the notebook's URL")
    page = read_page(response.text)
    if page is None:
        raise VisitError(f"{_route(path)} is not a notebook page")
    if page["course"] != course:
        raise VisitError(f"landed on course {page['course']!r}, not {course!r}")
    if page["notebook"] != (notebook or ""):
        raise VisitError(f"landed on notebook {page['notebook']!r}, not {notebook!r}")
    if page["user"] != user:
        raise VisitError(f"landed on {page['user']!r}'s server, not {user!r}'s")


def _route(path: str) -> str:
    """A path with the user's name left out (reasons are counted across learners)."""
    return re.sub(r"/(user|spawn-pending)/[^/]+", r"/\1/<name>", path)


def visit(
    hub_url: str, course: str, notebook: str | None, timeout: float = 60, origin: float = 0.0
) -> Visit:
    """One learner, from the launch link to the notebook page; never raises. `origin`: the
    `time.perf_counter()` the load's times count from."""
    started = time.perf_counter()
    deadline = started + timeout
    hops: list[tuple[float, str]] = []
    session = requests.Session()
    session.headers.update(BROWSER_HEADERS)
    session.hooks["response"].append(
        lambda r, *args, **kwargs: hops.append((time.perf_counter(), urlparse(r.url).path))
    )
    user = None
    status, reason = "ok", ""
    try:
        response = session.get(launch_link(hub_url, course, notebook), timeout=_left(deadline))
        user = user_from_url(response.url)
        if response.status_code in REFUSALS:
            raise VisitError(
                f"HTTP {response.status_code} at {_route(urlparse(response.url).path)}",
                response.status_code,
            )
        if urlparse(response.url).path.startswith("/hub/spawn-pending/"):
            _wait_for_spawn(session, response, deadline)
            response = session.get(response.url, timeout=_left(deadline))
        check_landing(response, user, course, notebook)
    except VisitError as error:
        status = "refused" if error.status in REFUSALS else "failed"
        reason = str(error)
    except requests.Timeout:
        last = _route(hops[-1][1]) if hops else "the link"
        status, reason = "failed", f"timed out ({timeout:.0f} s) after {last}"
    except requests.RequestException as error:
        status, reason = "failed", f"{type(error).__name__}: {first_line(error)}"
    finally:
        session.close()
    ended = time.perf_counter()
    steps = tuple(
        (
            next((t - started for t, path in hops if re.match(pattern, path)), float("nan"))
            if pattern
            else (ended - started if status == "ok" else float("nan"))
        )
        for _, pattern in STEPS
    )
    return Visit(course, notebook, status, started - origin, ended - origin, reason, user, steps)


def first_line(error: BaseException) -> str:
    text = re.sub(r"0x[0-9a-f]+", "0x…", str(error))
    return (text.strip().splitlines() or [type(error).__name__])[0][:160]


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


# --- The scenario: a class, and the stepped search for the limit ------------------------------


@dataclass
class CapacityReport:
    classes: list[LoadResult] = field(default_factory=list)
    steps: list[LoadResult] = field(default_factory=list)
    error: str = ""
    cleanup_problems: list[str] = field(default_factory=list)
    #: The server farm process's memory with no server in it (bytes).
    farm_rss: int = 0


def stepped_loads(rates: Iterable[float], seconds: float) -> list[Load]:
    return [
        Load(f"{rate:g}/s for {seconds:g} s", max(1, round(rate * seconds)), seconds, "even")
        for rate in rates
    ]


def run_capacity(
    catalog: Catalog,
    state_dir: Path,
    *,
    learners: int = 500,
    window: float = 300,
    rates: Sequence[float] = (2, 4, 8, 12, 16, 24, 32),
    step_seconds: float = 15,
    hubs: Sequence[str] = (OURS, STOCK),
    timeout: float = 60,
    hub_traits: Mapping[str, Any] = CHART_HUB_TRAITS,
    settings_changes: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> CapacityReport:
    """The capacity scenario, ours and stock in one run; never raises (errors are the
    report's). First the class (`learners` arriving at random over `window` seconds) on every
    hub at once (the same arrival moments on each), then the stepped search: per rate, each hub alone, alternating which goes first,
    users deleted between loads; a hub leaves the search after its first load with a launch
    that did not succeed (what broke). `hub_traits`: JupyterHub's limits on both hubs
    (the chart's defaults by default); `settings_changes`: fields of the hubs' `HubSettings`."""
    report = CapacityReport()
    progress = progress or (lambda line: print(line, flush=True))
    try:
        with CapacityLab(
            catalog,
            state_dir,
            hubs=hubs,
            hub_traits=hub_traits,
            settings_changes=settings_changes,
            timeout=timeout,
            progress=progress,
        ) as lab:
            for name in hubs:  # warm-up, not counted
                lab.run(name, Load("warm-up", 2, 1, "even"))
                report.cleanup_problems += lab.clean(name)
            report.farm_rss = process_rss(lab.farm.pid if lab.farm else None)
            if learners:
                load = Load(f"class: {learners} in {window:g} s", learners, window)
                progress(f"Capacity: {load.label} on {', '.join(hubs)} at once")
                report.classes += lab.run_together(hubs, load)
                for name in hubs:
                    report.cleanup_problems += lab.clean(name)
            searching = list(hubs)
            for index, load in enumerate(stepped_loads(rates, step_seconds)):
                if not searching:
                    break
                progress(f"Capacity: step {load.label} on {', '.join(searching)}")
                order = list(searching) if index % 2 == 0 else list(reversed(searching))
                for name in order:
                    result = lab.run(name, load)
                    report.steps.append(result)
                    report.cleanup_problems += lab.clean(name)
                    if not result.all_ok:
                        searching.remove(name)
    except KeyboardInterrupt:
        report.error = "interrupted"
    except Exception as error:  # noqa: BLE001 - the tables say it; never a crash
        report.error = f"{type(error).__name__}: {first_line(error)}"
    return report


# --- Tables ---------------------------------------------------------------------------------------


def _mb(value: float) -> float:
    return value / 2**20


def latency_table(results: Sequence[LoadResult]) -> str:
    """Per load and hub: how launches ended, their times, the launch rate, the most launches
    under way at once, and how late the driver itself started a learner (its own queue)."""
    head = ("n", "ok", "refused", "failed", "p50 s", "p95 s", "max s", "launch/s", "at once")
    lines = [f"{'load':<26}{'hub':<7}" + "".join(f"{h:>9}" for h in head) + f"{'late s':>9}"]
    for r in results:
        counts = [len(r.visits), r.count("ok"), r.count("refused"), r.count("failed")]
        times = [r.quantile(0.5), r.quantile(0.95), max(r.ok_seconds, default=float("nan"))]
        lines.append(
            f"{r.load.label:<26}{r.hub:<7}"
            + "".join(f"{c:>9}" for c in counts)
            + "".join(f"{t:>9.2f}" for t in times)
            + f"{r.launches_per_second:>9.2f}{r.max_in_flight:>9}{r.lateness:>9.2f}"
            + (f"  error: {r.error}" if r.error else "")
        )
    return "\n".join(lines)


def resource_table(results: Sequence[LoadResult]) -> str:
    """Per load and hub: CPU milliseconds per launch of each process, memory per user (the
    growth of resident memory over the load, every server still running), the hub's memory
    after the load and the most database connections it held."""
    memory_parts = ("hub", "proxy", "farm")
    head = [f"{part} ms" for part in PARTS] + [f"{part} KB/u" for part in memory_parts]
    head += ["hub MB", "db conns"]
    lines = [f"{'load':<26}{'hub':<7}" + "".join(f"{h:>11}" for h in head)]
    for r in results:
        cpu = [r.cpu_per_launch(part) * 1000 for part in PARTS]
        memory = [r.rss_per_user(part) / 1024 for part in memory_parts]
        lines.append(
            f"{r.load.label:<26}{r.hub:<7}"
            + "".join(f"{value:>11.1f}" for value in cpu + memory)
            + f"{_mb(r.rss_after.get('hub', 0)):>11.0f}{r.db_connections:>11}"
        )
    return "\n".join(lines)


def breakdown_table(results: Sequence[LoadResult]) -> str:
    """Per hub and load, p50 of the seconds from the link to each step's first answer."""
    lines = [f"{'step':<18}" + "".join(f"{r.hub + ' p50 s':>14}" for r in results)]
    for index, (step, _) in enumerate(STEPS):
        cells = []
        for r in results:
            seen = [
                v.steps[index]
                for v in r.visits
                if v.status == "ok" and v.steps[index] == v.steps[index]
            ]
            cells.append(statistics.median(seen) if seen else float("nan"))
        lines.append(f"{step:<18}" + "".join(f"{cell:>14.3f}" for cell in cells))
    return "\n".join(lines)


def limits(report: CapacityReport) -> str:
    """Per hub: the highest stepped rate sustained (every launch ok, p95 <= 2 s), and the first
    load where a launch did not succeed, with its reasons and the logs' warnings and errors."""
    lines = []
    names = list(dict.fromkeys(r.hub for r in report.steps))
    for name in names:
        steps = [r for r in report.steps if r.hub == name]
        sustained = [r for r in steps if r.sustained]
        best = max(sustained, key=lambda r: r.load.rate, default=None)
        lines.append(
            f"{name}: sustained "
            + (
                f"{best.load.rate:g} launches/s (p95 {best.quantile(0.95):.2f} s, "
                f"{best.launches_per_second:.2f}/s achieved)"
                if best
                else "no stepped rate"
            )
        )
        broken = next((r for r in steps if not r.all_ok), None)
        if broken is None:
            top = steps[-1].load.rate if steps else 0
            lines.append(f"  nothing broke up to {top:g}/s")
            continue
        lines.append(
            f"  first break at {broken.load.label}: {broken.count('ok')}/{len(broken.visits)} "
            f"ok, p95 {broken.quantile(0.95):.2f} s, {broken.max_in_flight} launches at once"
            + (f"; error: {broken.error}" if broken.error else "")
        )
        for status, reason, count in broken.reasons()[:5]:
            lines.append(f"    {count} {status}: {reason}")
        for message, count in broken.log_problems[:6]:
            lines.append(f"    log, {count}x: {message}")
    return "\n".join(lines)


def problems(results: Sequence[LoadResult]) -> str:
    lines = []
    for r in results:
        for status, reason, count in r.reasons():
            lines.append(f"  {r.load.label} {r.hub}: {count} {status}: {reason}")
    return "\n".join(lines)


def render(report: CapacityReport) -> str:
    """Every table of the capacity scenario (also when launches failed or nothing ran)."""
    out = []
    if report.error:
        out.append(f"capacity scenario stopped: {report.error}")
    results = report.classes + report.steps
    if results:
        out.append(
            "Launches, /tmplogin to the notebook page with cheap servers (hub.cheap_servers): "
            f"sustained means every launch ok with p95 <= {P95_TARGET:g} s"
        )
        out.append(latency_table(results))
        out.append("")
        out.append("CPU per launch (ms) and memory per user (KB, every server still running)")
        out.append(resource_table(results))
    if report.farm_rss:
        out.append(
            f"The server farm process with no server in it: {_mb(report.farm_rss):.0f} MB "
            "(the least a process per learner would take each)"
        )
    if report.classes:
        out.append("")
        out.append("Where a class's launch time goes (seconds from opening the link)")
        out.append(breakdown_table(report.classes))
    if report.steps:
        out.append("")
        out.append("Limits (stepped search)")
        out.append(limits(report))
    if problems(results):
        out.append("Launches that did not succeed:")
        out.append(problems(results))
    if report.cleanup_problems:
        out.append(f"users that could not be deleted: {len(report.cleanup_problems)}")
    if not results and not report.error:
        out.append("capacity scenario: nothing ran")
    return "\n".join(out)


def comparison(report: CapacityReport, limit: float = 0.10) -> tuple[list[str], bool]:
    """Ours against stock in the class: p95, hub CPU per launch and (stepped) sustained rate
    within `limit`; and every class launch ok. Lines and the verdict."""
    lines, passed = [], True
    by_hub = {r.hub: r for r in report.classes}
    for r in report.classes:
        if not r.all_ok:
            passed = False
            lines.append(f"class on {r.hub}: {r.count('ok')}/{len(r.visits)} launches ok")
    ours, stock = by_hub.get(OURS), by_hub.get(STOCK)
    if ours and stock:
        for what, mine, theirs in (
            ("class p95", ours.quantile(0.95), stock.quantile(0.95)),
            ("hub CPU per launch", ours.cpu_per_launch("hub"), stock.cpu_per_launch("hub")),
        ):
            extra = mine / theirs - 1
            ok = extra <= limit
            passed = passed and ok
            lines.append(f"{what}: ours {extra:+.1%} against stock (limit +{limit:.0%})")
    rates = {}
    for name in (OURS, STOCK):
        steps = [r for r in report.steps if r.hub == name]
        if steps:
            rates[name] = max((r.load.rate for r in steps if r.sustained), default=0.0)
    if len(rates) == 2:
        ok = rates[OURS] >= rates[STOCK] * (1 - limit)
        passed = passed and ok
        lines.append(
            f"sustained rate: ours {rates[OURS]:g}/s, stock {rates[STOCK]:g}/s "
            f"(limit -{limit:.0%})"
        )
    if report.error:
        passed = False
    return lines, passed
