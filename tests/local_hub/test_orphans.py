"""What a killed local hub leaves in Docker (its learners' containers, its network) is removed by
the next one: everything it makes carries its owner, `<host>:<pid>` (local_hub/processes.py)."""

from __future__ import annotations

import socket
import subprocess
import uuid
from typing import Any

import pytest

from local_hub.config import INSTANCE_LABEL, OWNER_LABEL
from local_hub.processes import orphaned, owner, remove_orphans

HOST = "builder"


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param({OWNER_LABEL: f"{HOST}:100"}, True, id="its-process-is-gone"),
        pytest.param({OWNER_LABEL: f"{HOST}:200"}, False, id="its-process-runs"),
        pytest.param({OWNER_LABEL: "elsewhere:100"}, False, id="another-hosts"),
        pytest.param({OWNER_LABEL: "garbage"}, False, id="an-owner-that-is-no-pid"),
        pytest.param({INSTANCE_LABEL: "abc"}, False, id="no-owner"),
    ],
)
def test_orphaned(labels: dict[str, str], expected: bool) -> None:
    assert orphaned(labels, HOST, alive=lambda pid: pid == 200) is expected


def finished_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_the_next_hub_removes_what_a_killed_one_left(client: Any) -> None:
    """Real Docker: a network and a container of a dead owner go, a living owner's stay."""
    name = f"olhub-orphan-test-{uuid.uuid4().hex[:8]}"
    dead = {INSTANCE_LABEL: "dead", OWNER_LABEL: f"{socket.gethostname()}:{finished_pid()}"}
    living = {INSTANCE_LABEL: "living", OWNER_LABEL: owner()}
    made = [
        client.networks.create(f"{name}-dead", labels=dead),
        client.networks.create(f"{name}-living", labels=living),
        client.containers.create("debian:bookworm-slim", ["true"], name=f"{name}-c", labels=dead),
    ]
    try:
        removed = remove_orphans(client)
        assert {f"{name}-dead", f"{name}-c"} <= set(removed)
        assert f"{name}-living" not in removed
        names = {n.name for n in client.networks.list(filters={"label": OWNER_LABEL})}
        assert f"{name}-living" in names and f"{name}-dead" not in names
    finally:
        for item in made:
            try:
                item.remove(force=True) if hasattr(item, "start") else item.remove()
            except Exception:  # noqa: BLE001 - removed by the test already
                pass
