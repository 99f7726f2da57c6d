"""Kept work's retention on this machine: the people's Docker volumes (`work-<key>-<slug>`,
labelled with a person), decided by `hub.retention.plan_retention` as production's job decides
for claims. Docker volumes' labels cannot change, so the record of each volume's last use is a
file, `store` (default: `$XDG_STATE_HOME/ol-course-platform/kept-work.json`, so that it outlives
a local hub's temporary state folder as the volumes do): name -> seconds since the epoch.

`RetentionLoop` runs a pass every few seconds in the local hub's process (the culler's
schedule) while the hub keeps work.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from hub.contract import PERSON_LABEL
from hub.retention import KeptVolume, RetentionPlan, plan_retention

#: Kept volumes' names begin so (hub.launch.work_volume_name).
VOLUME_PREFIX = "work-"


def default_store() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state) / "ol-course-platform" / "kept-work.json"


def read_store(store: Path) -> dict[str, float]:
    try:
        data = json.loads(store.read_text())
    except FileNotFoundError:
        return {}
    return {str(k): float(v) for k, v in data.items()}


def write_store(store: Path, records: dict[str, float]) -> None:
    store.parent.mkdir(parents=True, exist_ok=True)
    temporary = store.with_name(store.name + ".new")
    temporary.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
    os.replace(temporary, store)


def volume_in_use(client: Any, name: str) -> bool:
    """Whether any container, running or not, has the volume `name`."""
    return bool(client.containers.list(all=True, filters={"volume": name}))


def kept_volumes(
    client: Any, records: dict[str, float], prefix: str = VOLUME_PREFIX
) -> list[KeptVolume]:
    """This engine's kept-work volumes (labelled with a person, named `prefix...`), each in use
    while any container (running or not) has it."""
    found = []
    for volume in client.volumes.list(filters={"label": PERSON_LABEL}):
        if not volume.name.startswith(prefix):
            continue
        created = datetime.fromisoformat(volume.attrs["CreatedAt"].replace("Z", "+00:00"))
        in_use = volume_in_use(client, volume.name)
        found.append(KeptVolume(volume.name, created.timestamp(), records.get(volume.name), in_use))
    return found


def retention_pass(
    client: Any, days: int, store: Path, now: float | None = None, prefix: str = VOLUME_PREFIX
) -> RetentionPlan:
    """One pass: records the volumes in use, deletes the expired ones (and their records)."""
    now = time.time() if now is None else now
    records = read_store(store)
    plan = plan_retention(kept_volumes(client, records, prefix), now, days)
    for name in plan.used:
        records[name] = now
    for name in plan.delete:
        client.volumes.get(name).remove()
        records.pop(name, None)
    if plan.used or plan.delete:
        write_store(store, records)
    return plan


class RetentionLoop:
    """`retention_pass` every `every` seconds in a thread of its own, until `stop()`."""

    def __init__(self, client: Any, days: int, every: float, store: Path, log: Any) -> None:
        self.client, self.days, self.every, self.store, self.log = client, days, every, store, log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kept-work-retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                plan = retention_pass(self.client, self.days, self.store)
                for name in plan.delete:
                    self.log(f"kept work: deleted {name}, unused for more than {self.days} days")
            except Exception as error:  # noqa: BLE001 - a failed pass is retried next time
                self.log(f"kept work: the retention pass failed: {error}")
            self._stop.wait(self.every)
