"""Kept work's retention on the real Docker engine (local_hub/retention.py): one pass deletes the
expired volume and nothing else (a recent one, a new one, one in use, volumes that are not kept
work), and records the use of the one in use."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from hub.retention import DAY
from local_hub.retention import read_store, retention_pass, write_store
from tests.docker_engine import client  # noqa: F401 - the fixture

RUN = f"work-{uuid.uuid4().hex[:8]}-"


@pytest.fixture
def volumes(client: docker.DockerClient) -> Iterator[dict[str, Any]]:  # noqa: F811
    """This test's volumes (the pass looks at no other: `prefix`, so that nobody's kept work on
    this engine is touched)."""
    kept = {"person": "0" * 20, "course": "demo"}
    made = {
        "expired": client.volumes.create(f"{RUN}expired", labels=kept),
        "recent": client.volumes.create(f"{RUN}recent", labels=kept),
        "new": client.volumes.create(f"{RUN}new", labels=kept),
        "in-use": client.volumes.create(f"{RUN}in-use", labels=kept),
        "no-person": client.volumes.create(f"{RUN}no-person", labels={"course": "demo"}),
        "not-work": client.volumes.create(f"other-{RUN}", labels=kept),
    }
    image = client.images.list()[0].id
    holder = client.containers.create(image, volumes={made["in-use"].name: {"bind": "/w"}})
    try:
        yield made
    finally:
        holder.remove(force=True)
        for volume in made.values():
            try:
                volume.remove(force=True)
            except docker.errors.NotFound:
                pass


def test_one_pass_deletes_the_expired_volume_and_nothing_else(
    client: docker.DockerClient,  # noqa: F811
    volumes: dict[str, Any],
    tmp_path: Path,
) -> None:
    store = tmp_path / "kept-work.json"
    now = time.time()
    other = {"work-of-another-engine": now - 90 * DAY}
    write_store(
        store,
        {
            volumes["expired"].name: now - 2 * DAY,
            volumes["recent"].name: now - 3600,
            volumes["in-use"].name: now - 5 * DAY,
            volumes["no-person"].name: now - 5 * DAY,
            **other,
        },
    )
    plan = retention_pass(client, 1, store, now, prefix=RUN)
    assert plan.delete == (volumes["expired"].name,)
    assert plan.used == (volumes["in-use"].name,)
    left = {v.name for v in client.volumes.list()}
    assert {v.name for k, v in volumes.items() if k != "expired"} <= left
    assert volumes["expired"].name not in left
    records = read_store(store)
    assert volumes["expired"].name not in records
    assert records[volumes["in-use"].name] == now
    assert records[volumes["recent"].name] == now - 3600
    assert records["work-of-another-engine"] == other["work-of-another-engine"]
