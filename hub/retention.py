"""Kept work's retention: which learners' volumes to delete, and its production job.

`plan_retention(volumes, now, days)` is pure: a volume in use now is recorded as used now; one
not in use whose last recorded use (or, never recorded, its creation) is more than `days` ago is
deleted; nothing else is touched. The platforms keep the record beside each volume: production
(below) in an annotation of the PersistentVolumeClaim, the local hub in a file
(`local_hub/retention.py`). A run every few minutes (the culler's schedule) sees every server
in use: the culler stops none sooner than its idle timeout.

    python3 -m hub.retention --namespace NS --days N

is production's job (a CronJob of infra/program.py, with a service account that may list pods
and list, patch and delete PersistentVolumeClaims in its namespace, nothing else): one run
over the claims labelled with a person (`hub.contract.PERSON_LABEL`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.contract import PERSON_LABEL

DAY = 86400
#: The annotation with a claim's last use (seconds since the epoch).
LAST_USED = "ol-course-platform/last-used"


@dataclass(frozen=True)
class KeptVolume:
    name: str
    created: float  # seconds since the epoch
    last_used: float | None  # the last recorded use; None: none recorded
    in_use: bool  # mounted by a server (a pod, a container) now


@dataclass(frozen=True)
class RetentionPlan:
    delete: tuple[str, ...] = ()
    #: In use now: their last use becomes now.
    used: tuple[str, ...] = ()


def plan_retention(volumes: Iterable[KeptVolume], now: float, days: int) -> RetentionPlan:
    """What one retention run does; `days` <= 0 deletes nothing (work is not kept, or no longer
    kept: what is there stays until someone decides)."""
    delete: list[str] = []
    used: list[str] = []
    for volume in sorted(volumes, key=lambda v: v.name):
        if volume.in_use:
            used.append(volume.name)
        elif days > 0 and now - (volume.last_used or volume.created) > days * DAY:
            delete.append(volume.name)
    return RetentionPlan(tuple(delete), tuple(used))


# --- Production: PersistentVolumeClaims --------------------------------------------------------


def claims_in_use(pods: Iterable[Mapping[str, Any]]) -> set[str]:
    """The claims mounted by pods that are not finished."""
    names = set()
    for pod in pods:
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for volume in pod.get("spec", {}).get("volumes") or []:
            claim = volume.get("persistentVolumeClaim")
            if claim:
                names.add(claim["claimName"])
    return names


def kept_claims(
    claims: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]
) -> list[KeptVolume]:
    """The kept-work claims (labelled with a person) as `KeptVolume`s, from the API's objects."""
    in_use = claims_in_use(pods)
    found = []
    for claim in claims:
        metadata = claim["metadata"]
        if PERSON_LABEL not in (metadata.get("labels") or {}):
            continue
        created = metadata["creationTimestamp"]
        if isinstance(created, str):
            created = datetime.fromisoformat(created.replace("Z", "+00:00"))
        last_used = (metadata.get("annotations") or {}).get(LAST_USED)
        found.append(
            KeptVolume(
                name=metadata["name"],
                created=created.timestamp(),
                last_used=float(last_used) if last_used else None,
                in_use=metadata["name"] in in_use,
            )
        )
    return found


async def run_in_cluster(namespace: str, days: int, now: float | None = None) -> RetentionPlan:
    """One run against the cluster's API with the pod's service account."""
    from kubernetes_asyncio import client, config

    config.load_incluster_config()
    async with client.ApiClient() as api_client:
        api = client.CoreV1Api(api_client)
        claims = await api.list_namespaced_persistent_volume_claim(
            namespace, label_selector=PERSON_LABEL
        )
        pods = await api.list_namespaced_pod(namespace)
        serialize = api_client.sanitize_for_serialization
        volumes = kept_claims(
            [serialize(c) for c in claims.items], [serialize(p) for p in pods.items]
        )
        now = time.time() if now is None else now
        plan = plan_retention(volumes, now, days)
        for name in plan.used:
            patch = {"metadata": {"annotations": {LAST_USED: str(int(now))}}}
            await api.patch_namespaced_persistent_volume_claim(name, namespace, patch)
        for name in plan.delete:
            print(f"retention: deleting {name} (unused for more than {days} days)", flush=True)
            await api.delete_namespaced_persistent_volume_claim(name, namespace)
        return plan


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--days", type=int, required=True, help="the stack's keepWork days")
    args = parser.parse_args(argv)
    plan = asyncio.run(run_in_cluster(args.namespace, args.days))
    print(
        f"retention: {len(plan.used)} kept volume(s) in use, {len(plan.delete)} deleted",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
