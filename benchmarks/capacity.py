"""The hub's own capacity: N simulated learners following launch links on a hub whose servers
are cheap, ours against stock, side by side.

Real: both hubs are the local hub's processes (`LocalHub`: JupyterHub and configurable-http-proxy
on 127.0.0.1) with PostgreSQL as their database (one server, a database each), ours with the hub
configuration production shares (`hub.config`: CourseSpawner planning, limits, the culler service)
but our TmpAuthenticator where production has the SSO gate, stock with TmpAuthenticator and the
plain spawner with the course fixed. Each learner is a browser without JavaScript (a `requests.Session` of its own, with a browser's
`Sec-Fetch-*` headers): it opens `/tmplogin?course=X&notebook=Y` and follows every redirect
(throwaway user, `/hub/spawn`, the spawn-pending page and its progress event stream where the
spawn takes longer than the hub waits, the OAuth round trip with the learner's server) until the
notebook URL `/user/<name>/lab/tree/<notebook>` answers with a page naming the learner's own
course and notebook. Anything else is a failure with its reason; a 429/503 is a refusal.

Cheap: the learners' servers (`benchmarks.cheap_servers`: one farm process, a port per learner, the
same answers to the hub and the browser as jupyterhub-singleuser, no container).

Measured per load (a number of learners arriving over a window, at random moments or evenly):
how each launch ended, p50/p95/max seconds from the link to the notebook page, launches per
second, CPU seconds per launch of the hub process, the proxy, PostgreSQL, the farm and the
driver itself (all on this machine, /proc), the hub's and the proxy's memory per user (RSS
growth over the load / launches, with every learner's server still running), the most database
connections the hub held, and the warnings and errors of the hub's and the proxy's logs. A
stepped search raises the arrival rate until a launch fails: the rate sustained with p95 <= 2 s
and no failure, and the first thing that broke with its error.

Here: the scenario (`run_capacity`: a class, then the stepped search). Its parts: the processes
and one measured load (`capacity_lab`), the learners (`learners`), /proc (`process_stats`), the
tables and the verdict (`capacity_report`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.capacity_lab import OURS, STOCK, CapacityLab, Load, LoadResult
from benchmarks.learners import first_line
from benchmarks.process_stats import process_rss
from catalog import Catalog

#: JupyterHub's own limits as the zero-to-jupyterhub chart sets them by default
#: (`hub.concurrentSpawnLimit`, `hub.consecutiveFailureLimit`), set alike on both hubs of the
#: scenario: where the hub itself breaks. (Infra sizes each stack's spawn limit for pod start
#: times, which cheap servers do not have: docs/ARCHITECTURE.md, "Launch capacity".)
CHART_HUB_TRAITS = {"concurrent_spawn_limit": 64, "consecutive_failure_limit": 5}


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
