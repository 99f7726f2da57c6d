"""CPU seconds and resident memory of processes, from /proc (the capacity scenario's
measurements).
"""

from __future__ import annotations

import os
import re
import resource
from pathlib import Path

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
