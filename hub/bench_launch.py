"""Benchmark: launch latency from `/tmplogin` to a ready notebook server, ours vs stock.

    python -m hub.bench_launch            # or: ./pants run hub:bench-launch

Starts two local hubs side by side on 127.0.0.1 (same machine, same image, same network set-up,
same container resources): ours (course launcher, our TmpAuthenticator, culler service) and a
stock one (TmpAuthenticator + DockerSpawner with the image configured). Then it times

- sequential launches, one at a time, alternating between the hubs, and
- 20 concurrent launches per hub, both hubs' launches at the same moment,

so that the machine's load (other jobs on a shared machine) weighs on both alike. Each launch is
timed from the GET of `/tmplogin?course=...&notebook=...` until the hub reports the server ready
and the server answers through the proxy. Prints p50/p95 side by side and our p50 overhead,
which must stay within 5% (`--check` makes that the exit status).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog import find_repo_root, load_catalog
from catalog.image_facts import ImageMapError
from hub.launch import LaunchSettings, plan_launch
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


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)

    def quantile(self, q: float) -> float:
        data = sorted(self.seconds)
        if not data:
            return float("nan")
        if len(data) == 1:
            return data[0]
        return statistics.quantiles(data, n=100, method="inclusive")[round(q * 100) - 1]


def timed_launch(hub: LocalHub, link: str, poll: float) -> tuple[str, float]:
    started = time.perf_counter()
    user = hub.launch(link).user
    hub.wait_ready(user, timeout=600, interval=poll)
    return user, time.perf_counter() - started


def clean_up(hub: LocalHub, users: list[str]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(hub.delete_user, users))


def sequential(hub: LocalHub, link: str) -> float:
    user, seconds = timed_launch(hub, link, poll=0.05)
    clean_up(hub, [user])
    return seconds


def concurrent(
    hubs: dict[str, LocalHub], links: dict[str, str], count: int
) -> dict[str, list[float]]:
    """`count` launches at once on every hub, all hubs at the same moment (same machine load)."""
    jobs = [name for _ in range(count) for name in hubs]
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(
            pool.map(lambda name: (name, *timed_launch(hubs[name], links[name], poll=0.25)), jobs)
        )
    for name, hub in hubs.items():
        clean_up(hub, [user for hub_name, user, _ in results if hub_name == name])
    return {name: [s for hub_name, _, s in results if hub_name == name] for name in hubs}


def planning_seconds(settings: HubSettings, slug: str, notebook: str, repeat: int = 2000) -> float:
    """Time of the launch logic itself (query -> plan), per launch."""
    query = {"course": [slug], "notebook": [notebook]}
    started = time.perf_counter()
    for _ in range(repeat):
        plan_launch(query, settings.catalog, settings.image_map, settings.launch)
    return (time.perf_counter() - started) / repeat


def overhead(ours: Samples, stock: Samples) -> float:
    return ours.quantile(0.5) / stock.quantile(0.5) - 1


def table(results: dict[tuple[str, str], Samples]) -> str:
    lines = [f"{'launches':<12}{'hub':<8}{'n':>4}{'p50 s':>9}{'p95 s':>9}"]
    for (mode, name), samples in results.items():
        lines.append(
            f"{mode:<12}{name:<8}{len(samples.seconds):>4}"
            f"{samples.quantile(0.5):>9.2f}{samples.quantile(0.95):>9.2f}"
        )
    return "\n".join(lines)


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
        results: dict[tuple[str, str], Samples] = {
            (mode, name): Samples() for mode in ("sequential", "concurrent") for name in hubs
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
                    results[("sequential", name)].seconds.append(
                        sequential(hubs[name], links[name])
                    )
                print(f"  sequential {index + 1}/{args.sequential}", flush=True)
            for index in range(args.rounds):
                for name, seconds in concurrent(hubs, links, args.concurrent).items():
                    results[("concurrent", name)].seconds.extend(seconds)
                print(f"  concurrent round {index + 1}/{args.rounds}", flush=True)
        finally:
            for hub in hubs.values():
                hub.stop()

    print()
    print("Launch latency, /tmplogin to a ready notebook server (same image, same machine)")
    print(table(results))
    planning = planning_seconds(settings, slug, notebook)
    stock_p50 = results[("sequential", "stock")].quantile(0.5)
    print(
        f"launch planning itself: {planning * 1e6:.0f} µs per launch "
        f"({planning / stock_p50:.4%} of the stock sequential p50)"
    )
    worst = 0.0
    for mode in ("sequential", "concurrent"):
        extra = overhead(results[(mode, "ours")], results[(mode, "stock")])
        worst = max(worst, extra)
        print(f"p50 overhead of our launcher, {mode}: {extra:+.1%} (limit +{LIMIT:.0%})")
    verdict = "PASS" if worst <= LIMIT else "FAIL"
    print(verdict)
    return 1 if args.check and verdict == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
