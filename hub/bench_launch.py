"""Benchmark: launch latency from `/tmplogin` to a ready notebook server, ours vs stock.

    python -m hub.bench_launch            # or: ./pants run hub:bench-launch

Starts two local hubs side by side on 127.0.0.1 (same machine, same image, same network set-up,
same container resources): ours (course launcher, our TmpAuthenticator, culler service) and a
stock one (TmpAuthenticator + DockerSpawner with the image configured). Then it times

- sequential launches, one at a time, alternating between the hubs,
- 20 concurrent launches on each hub alone, and then on both hubs at the same moment,

so that the machine's load (other jobs on a shared machine) weighs on both alike. Each launch is
timed from the GET of `/tmplogin?course=...&notebook=...` until the hub reports the server ready
and the server answers through the proxy, and counted as ok, refused (the hub answered 429/503)
or failed (with the reason): a launch that fails is a row of the table, never a crash. Prints,
per scenario and hub, how the launches ended and p50/p95/max of the successful ones, then our p50
overhead, which must stay within 5% with every launch ok (`--check` makes that the exit status).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import requests

from catalog import find_repo_root, load_catalog
from catalog.image_facts import ImageMapError
from hub.launch import LaunchSettings, plan_launch
from hub.local_client import HubClient, HubError
from hub.local_config import configure_loopback, hub_settings, read_params
from hub.local_images import build_images, docker_client, load_image_map, local_images
from hub.local_processes import LocalHub
from hub.settings import CullSettings, HubSettings
from hub.spawner import docker_host_config

LIMIT = 0.05
STOCK_COURSE = "stock_course"


def configure_stock(c: Any, params_file: str) -> None:
    """jupyterhub_config.py of the baseline: stock TmpAuthenticator and DockerSpawner, configured
    with the container our launcher would start for the course (image, limits, guarantees), on
    loopback like ours."""
    params = read_params(params_file)
    settings = hub_settings(params)
    plan = plan_launch(
        {"course": params[STOCK_COURSE]}, settings.catalog, settings.image_map, settings.launch
    )
    c.JupyterHub.authenticator_class = "tmpauthenticator.TmpAuthenticator"
    c.Authenticator.allow_all = True
    c.JupyterHub.spawner_class = "hub.spawner.LoopbackDockerSpawner"
    c.DockerSpawner.image = plan.image
    c.DockerSpawner.mem_limit = plan.memory_limit
    c.DockerSpawner.cpu_limit = plan.cpu_limit
    c.DockerSpawner.extra_host_config = docker_host_config(plan)
    c.JupyterHub.authenticate_prometheus = False
    configure_loopback(c, params)


def stock_hub(settings: HubSettings, state_dir: Path, course: str, **kwargs: Any) -> LocalHub:
    """The baseline hub, launching `course`'s container with stock JupyterHub parts."""
    return LocalHub(
        settings,
        state_dir,
        configuration="hub.bench_launch:configure_stock",
        params={STOCK_COURSE: course},
        **kwargs,
    )


#: Answers that mean the hub refused the launch on purpose (limits), not that it failed.
REFUSALS = (429, 503)


#: Where a launch's time goes, in order; each is measured in seconds from opening the link.
STEPS = (
    "user created",  # /hub/tmplogin answered: the throwaway user exists and is logged in
    "spawn requested",  # /hub/spawn answered: the spawner has the plan
    "container started",  # Docker's State.StartedAt of the user's container
    "server ready",  # the hub's API says ready
    "server answers",  # the server answers through the proxy
    "notebook loaded",  # JupyterLab's page, through the proxy, after the OAuth round-trip
)


@dataclass(frozen=True)
class Outcome:
    """One launch: `ok`, `refused` (the hub said 429/503) or `failed` (with the reason); for an
    ok launch, `steps`: seconds from the link to each of STEPS (NaN where not seen)."""

    seconds: float
    status: str = "ok"
    reason: str = ""
    user: str | None = None
    steps: tuple[float, ...] = ()


def step_times(
    started: float, hops: list[tuple[float, str]], marks: dict[str, float]
) -> tuple[float, ...]:
    """Seconds from `started` to each of STEPS: `hops` are (time, path) of every HTTP answer of
    the launch link's redirect chain, `marks` the other steps' times (perf_counter)."""

    def first_answer(path: str) -> float:
        return next((t for t, hop in hops if hop == path), float("nan"))

    times = {
        "user created": first_answer("/hub/tmplogin"),
        "spawn requested": first_answer("/hub/spawn"),
        "container started": marks.get("container started", float("nan")),
        "server ready": marks.get("ready", float("nan")),
        "server answers": marks.get("answers", float("nan")),
        "notebook loaded": marks.get("notebook loaded", float("nan")),
    }
    return tuple(times[step] - started for step in STEPS)


def _container_started(hub: HubClient, user: str, wall_started: float, started: float) -> float:
    """perf_counter time at which Docker started the user's container (NaN: not found)."""
    for container in getattr(hub, "containers", lambda: [])():
        # DockerSpawner escapes the user name in the container's name; its environment has it.
        if f"JUPYTERHUB_USER={user}" in (container.attrs["Config"].get("Env") or []):
            text = container.attrs["State"]["StartedAt"]  # RFC 3339 with nanoseconds, UTC
            when = datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00").timestamp()
            return started + (when - wall_started)
    return float("nan")


@dataclass
class Samples:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def seconds(self) -> list[float]:
        """Times of the successful launches."""
        return [o.seconds for o in self.outcomes if o.status == "ok"]

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    def quantile(self, q: float) -> float:
        data = sorted(self.seconds)
        if not data:
            return float("nan")
        if len(data) == 1:
            return data[0]
        return statistics.quantiles(data, n=100, method="inclusive")[round(q * 100) - 1]


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def timed_launch(hub: HubClient, link: str, poll: float) -> Outcome:
    """A launch timed from the link to JupyterLab's page, step by step; never raises."""
    wall_started, started = time.time(), time.perf_counter()
    hops: list[tuple[float, str]] = []
    session = requests.Session()
    session.hooks["response"].append(
        lambda r, *args, **kwargs: hops.append((time.perf_counter(), urlparse(r.url).path))
    )
    marks: dict[str, float] = {}
    user = None
    try:
        user = hub.launch(link, session=session).user
        hub.wait_ready(user, timeout=600, interval=poll, marks=marks)
        marks["container started"] = _container_started(hub, user, wall_started, started)
        page = session.get(f"{hub.url}/user/{quote(user, safe='')}/lab", timeout=60)
        if page.status_code != 200:
            raise HubError(f"JupyterLab's page answered {page.status_code}", page.status_code)
        marks["notebook loaded"] = time.perf_counter()
    except HubError as error:
        status = "refused" if error.status in REFUSALS else "failed"
        reason = f"HTTP {error.status}" if status == "refused" else _first_line(error)
        return Outcome(time.perf_counter() - started, status, reason, user)
    except requests.RequestException as error:
        return Outcome(time.perf_counter() - started, "failed", _first_line(error), user)
    return Outcome(marks["answers"] - started, user=user, steps=step_times(started, hops, marks))


def clean_up(hub: HubClient, outcomes: list[Outcome]) -> list[str]:
    """Deletes the launches' users; returns what could not be deleted (never raises)."""

    def delete(user: str) -> str | None:
        try:
            hub.delete_user(user)
        except (HubError, requests.RequestException) as error:
            return f"{user}: {_first_line(error)}"
        return None

    with ThreadPoolExecutor(8) as pool:
        results = pool.map(delete, [o.user for o in outcomes if o.user])
    return [problem for problem in results if problem]


def sequential(hub: LocalHub, link: str) -> Outcome:
    outcome = timed_launch(hub, link, poll=0.05)
    clean_up(hub, [outcome])
    return outcome


def concurrent(
    hubs: dict[str, LocalHub], links: dict[str, str], count: int
) -> dict[str, list[Outcome]]:
    """`count` launches at once on every hub given, all at the same moment (same machine load)."""
    jobs = [name for _ in range(count) for name in hubs]
    with ThreadPoolExecutor(len(jobs)) as pool:
        outcomes = list(pool.map(lambda name: timed_launch(hubs[name], links[name], 0.25), jobs))
    results = {name: [o for n, o in zip(jobs, outcomes) if n == name] for name in hubs}
    for name, hub in hubs.items():
        clean_up(hub, results[name])
    return results


def planning_seconds(settings: HubSettings, slug: str, notebook: str, repeat: int = 2000) -> float:
    """Time of the launch logic itself (query -> plan), per launch."""
    query = {"course": [slug], "notebook": [notebook]}
    started = time.perf_counter()
    for _ in range(repeat):
        plan_launch(query, settings.catalog, settings.image_map, settings.launch)
    return (time.perf_counter() - started) / repeat


def overhead(ours: Samples, stock: Samples) -> float:
    """Our p50 over stock's, less 1 (NaN when either has no successful launch)."""
    return ours.quantile(0.5) / stock.quantile(0.5) - 1


def table(results: dict[tuple[str, str], Samples]) -> str:
    """Per scenario and hub: launches, how each ended, and the times of the successful ones."""
    head = ("launches", "hub", "n", "ok", "refused", "failed", "ok %", "p50 s", "p95 s", "max s")
    lines = [f"{head[0]:<22}{head[1]:<7}" + "".join(f"{h:>9}" for h in head[2:])]
    for (mode, name), samples in results.items():
        n = len(samples.outcomes)
        counts = [samples.count(status) for status in ("ok", "refused", "failed")]
        ratio = counts[0] / n if n else float("nan")
        times = [
            samples.quantile(0.5),
            samples.quantile(0.95),
            max(samples.seconds, default=float("nan")),
        ]
        lines.append(
            f"{mode:<22}{name:<7}{n:>9}"
            + "".join(f"{c:>9}" for c in counts)
            + f"{ratio:>9.0%}"
            + "".join(f"{t:>9.2f}" for t in times)
        )
    return "\n".join(lines)


def breakdown(results: dict[str, Samples]) -> str:
    """Per hub, the p50 over ok launches of the seconds from the link to each step. (Times from
    the link, not from the step before: JupyterHub answers /hub/spawn only after waiting up to
    a second for the spawn, so the container may start before that answer.)"""
    names = list(results)
    lines = [f"{'step':<20}" + "".join(f"{name + ' p50 s':>14}" for name in names)]
    for index, step in enumerate(STEPS):
        cells = []
        for name in names:
            seen = sorted(
                o.steps[index]
                for o in results[name].outcomes
                if o.status == "ok"
                and len(o.steps) == len(STEPS)
                and o.steps[index] == o.steps[index]
            )
            cells.append(statistics.median(seen) if seen else float("nan"))
        lines.append(f"{step:<20}" + "".join(f"{cell:>14.3f}" for cell in cells))
    return "\n".join(lines)


def problems(results: dict[tuple[str, str], Samples]) -> str:
    """Every launch that did not succeed, grouped: scenario, hub, how it ended, why, how many."""
    counted: dict[tuple[str, str, str, str], int] = {}
    for (mode, name), samples in results.items():
        for o in samples.outcomes:
            if o.status != "ok":
                key = (mode, name, o.status, o.reason)
                counted[key] = counted.get(key, 0) + 1
    return "\n".join(
        f"  {mode} {name}: {count} {status}: {reason}"
        for (mode, name, status, reason), count in counted.items()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hub.bench_launch", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sequential", type=int, default=10, help="sequential launches per hub")
    parser.add_argument("--concurrent", type=int, default=20, help="launches at once")
    parser.add_argument("--rounds", type=int, default=2, help="concurrent rounds per hub")
    parser.add_argument("--course", help="course to launch (default: the smallest)")
    parser.add_argument(
        "--no-build", action="store_true", help="use the image map and images already built"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when p50 overhead > 5%%")
    args = parser.parse_args(argv)

    root = find_repo_root()
    if not args.no_build:
        build_images(root)
    catalog = load_catalog(root)
    try:
        images = local_images(catalog, load_image_map(root), docker_client())
    except ImageMapError as e:
        print(e, file=sys.stderr)
        return 1
    slug = args.course or min(images, key=lambda s: catalog[s].resources.memory_limit)
    course = catalog[slug]
    image = images[slug]
    notebook = course.notebooks[0]
    settings = HubSettings(catalog, images, LaunchSettings(), CullSettings())
    print(f"Course {slug}, notebook {notebook}, image {image}", flush=True)

    with tempfile.TemporaryDirectory(prefix="ol-bench-") as state:
        ours = LocalHub(settings, Path(state) / "ours", log_level="WARN")
        stock = stock_hub(settings, Path(state) / "stock", slug, log_level="WARN")
        hubs = {"ours": ours, "stock": stock}
        modes = ("sequential", "concurrent, alone", "concurrent, both")
        results: dict[tuple[str, str], Samples] = {
            (mode, name): Samples() for mode in modes for name in hubs
        }
        try:
            for hub in hubs.values():
                hub.start()
            links = {name: hub.link(slug, notebook) for name, hub in hubs.items()}
            for name, hub in hubs.items():  # warm-up, not counted
                sequential(hub, links[name])
            for index in range(args.sequential):
                order = list(hubs) if index % 2 == 0 else list(reversed(hubs))
                for name in order:
                    results[("sequential", name)].outcomes.append(
                        sequential(hubs[name], links[name])
                    )
                print(f"  sequential {index + 1}/{args.sequential}", flush=True)
            for index in range(args.rounds):
                # Each hub's concurrent launches on their own, then both hubs' at the same moment.
                for name, hub in hubs.items():
                    alone = concurrent({name: hub}, links, args.concurrent)
                    results[("concurrent, alone", name)].outcomes.extend(alone[name])
                for name, outcomes in concurrent(hubs, links, args.concurrent).items():
                    results[("concurrent, both", name)].outcomes.extend(outcomes)
                print(f"  concurrent round {index + 1}/{args.rounds}", flush=True)
        finally:
            for hub in hubs.values():
                hub.stop()

    print()
    print(
        "Launch latency, /tmplogin to a ready notebook server (same image, same machine); "
        f"{args.concurrent} launches per hub at once in the concurrent scenarios"
    )
    print(table(results))
    print()
    print("Where the time goes, sequential launches (seconds from opening the link)")
    print(breakdown({name: results[("sequential", name)] for name in hubs}))
    if problems(results):
        print("Launches that did not succeed:")
        print(problems(results))
    planning = planning_seconds(settings, slug, notebook)
    stock_p50 = results[("sequential", "stock")].quantile(0.5)
    print(
        f"launch planning itself: {planning * 1e6:.0f} µs per launch "
        f"({planning / stock_p50:.4%} of the stock sequential p50)"
    )
    worst = 0.0
    for mode in modes:
        extra = overhead(results[(mode, "ours")], results[(mode, "stock")])
        # NaN (no successful launch on a side) compares false: count it as a failure.
        worst = max(worst, extra) if extra == extra else float("inf")
        print(f"p50 overhead of our launcher, {mode}: {extra:+.1%} (limit +{LIMIT:.0%})")
    failed = any(s.count("ok") < len(s.outcomes) for s in results.values())
    verdict = "PASS" if worst <= LIMIT and not failed else "FAIL"
    print(verdict)
    return 1 if args.check and verdict == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
