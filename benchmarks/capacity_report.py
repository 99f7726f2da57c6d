"""The capacity scenario's tables and verdict: latency, resources, step breakdown, limits, the
hubs' log problems, ours against stock.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from benchmarks.capacity import CapacityReport
from benchmarks.capacity_lab import OURS, P95_TARGET, PARTS, STOCK, LoadResult
from benchmarks.learners import STEPS


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
            "Launches, /tmplogin to the notebook page with cheap servers (benchmarks.cheap_servers): "
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
