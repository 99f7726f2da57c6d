"""Kept work's retention (hub/retention.py): the pure plan as a table, and the production job's
reading of the Kubernetes API's objects (claims and pods as `sanitize_for_serialization` gives
them). No cluster can run here: the job's API calls are kubernetes_asyncio's published ones."""

from __future__ import annotations

from typing import Any

import pytest

from hub.retention import (
    DAY,
    LAST_USED,
    KeptVolume,
    RetentionPlan,
    claims_in_use,
    kept_claims,
    plan_retention,
)

NOW = 1_800_000_000.0


def volume(name: str, age_days: float, used_days_ago: float | None, in_use: bool = False) -> Any:
    used = None if used_days_ago is None else NOW - used_days_ago * DAY
    return KeptVolume(name, NOW - age_days * DAY, used, in_use)


@pytest.mark.parametrize(
    ("volumes", "days", "expected"),
    [
        pytest.param([volume("a", 40, 31)], 30, RetentionPlan(delete=("a",)), id="expired"),
        pytest.param([volume("a", 40, 29)], 30, RetentionPlan(), id="used-within-the-days"),
        pytest.param(
            [volume("a", 40, 31, in_use=True)], 30, RetentionPlan(used=("a",)), id="in-use-now"
        ),
        pytest.param([volume("a", 31, None)], 30, RetentionPlan(delete=("a",)), id="never-used"),
        pytest.param([volume("a", 1, None)], 30, RetentionPlan(), id="new"),
        pytest.param([volume("a", 400, 400)], 0, RetentionPlan(), id="not-kept-deletes-nothing"),
        pytest.param(
            [volume("c", 9, 9), volume("a", 9, 1), volume("b", 9, 9, in_use=True)],
            7,
            RetentionPlan(delete=("c",), used=("b",)),
            id="each-by-its-own-record",
        ),
    ],
)
def test_plan_retention(volumes: list[KeptVolume], days: int, expected: RetentionPlan) -> None:
    assert plan_retention(volumes, NOW, days) == expected


def claim(name: str, labels: dict[str, str], last_used: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "labels": labels,
        "creationTimestamp": "2026-11-01T10:00:00Z",
    }
    if last_used is not None:
        metadata["annotations"] = {LAST_USED: last_used}
    return {"metadata": metadata, "spec": {}}


def pod(phase: str, *claims: str) -> dict[str, Any]:
    volumes = [
        {"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)
    ]
    return {
        "spec": {"volumes": volumes + [{"name": "tmp", "emptyDir": {}}]},
        "status": {"phase": phase},
    }


def test_claims_mounted_by_finished_pods_are_not_in_use() -> None:
    pods = [pod("Running", "a"), pod("Pending", "b"), pod("Succeeded", "c"), pod("Failed", "d")]
    assert claims_in_use(pods) == {"a", "b"}


def test_only_claims_of_a_person_are_kept_work() -> None:
    created = 1_793_527_200.0  # 2026-11-01T10:00:00Z
    claims = [
        claim("work-k-a", {"person": "k", "course": "a"}, "1800000000"),
        claim("work-k-b", {"person": "k", "course": "b"}),
        claim("hub-db-dir", {"app": "jupyterhub"}),
    ]
    assert kept_claims(claims, [pod("Running", "work-k-b")]) == [
        KeptVolume("work-k-a", created, 1_800_000_000.0, False),
        KeptVolume("work-k-b", created, None, True),
    ]
