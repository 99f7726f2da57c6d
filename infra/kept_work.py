"""Kept work in a stack that keeps it (`keepWork.days` > 0): the retention job, a CronJob of the
hub image running `python3 -m hub.retention` on the culler's schedule, with a service account of
its own that may do exactly what retention does in the stack's namespace (list pods; list, patch
the last-use annotation of, and delete PersistentVolumeClaims); and with `keepWork.quota`, a
ResourceQuota on the storage the claims may request (of `keepWork.storageClass` where named).
The learners' claims themselves are KubeSpawner's (hub/spawner.py), made as people launch.
"""

from __future__ import annotations

from typing import Any

from catalog import format_memory
from hub.contract import KEPT_WORK_QUOTA
from infra.images import ImageRef
from infra.stack_config import StackConfig
from infra.values import hub_image_pod_security, restricted_container_security

NAME = "kept-work-retention"
LABELS = {"app.kubernetes.io/component": NAME}


def retention_schedule(every_seconds: int) -> str:
    """A cron schedule at least as often as the culler's (cron counts whole minutes)."""
    minutes = max(1, min(59, every_seconds // 60))
    return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"


def kept_work_objects(stack: StackConfig, hub: ImageRef) -> list[dict[str, Any]]:
    """The retention job's service account, role, binding and CronJob, and the quota where the
    stack sets one; none without kept work."""
    days = stack.keep_work.days
    if days <= 0:
        return []
    metadata = {"name": NAME, "namespace": stack.namespace, "labels": LABELS}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": metadata,
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
                {
                    "apiGroups": [""],
                    "resources": ["persistentvolumeclaims"],
                    "verbs": ["list", "patch", "delete"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": stack.namespace}],
        },
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": metadata,
            "spec": {
                "schedule": retention_schedule(stack.culling.every),
                "concurrencyPolicy": "Forbid",
                "successfulJobsHistoryLimit": 1,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {
                    "spec": {
                        "backoffLimit": 0,
                        "activeDeadlineSeconds": 600,
                        "template": {
                            "metadata": {"labels": LABELS},
                            "spec": _pod(stack, hub, days),
                        },
                    }
                },
            },
        },
        *_quota(stack),
    ]


def _quota(stack: StackConfig) -> list[dict[str, Any]]:
    kept = stack.keep_work
    if not kept.quota:
        return []
    resource = "requests.storage"
    if kept.storage_class:
        resource = f"{kept.storage_class}.storageclass.storage.k8s.io/{resource}"
    return [
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": KEPT_WORK_QUOTA, "namespace": stack.namespace, "labels": LABELS},
            "spec": {"hard": {resource: format_memory(kept.quota)}},
        }
    ]


def _pod(stack: StackConfig, hub: ImageRef, days: int) -> dict[str, Any]:
    return {
        "serviceAccountName": NAME,
        "restartPolicy": "Never",
        "securityContext": hub_image_pod_security(),
        "containers": [
            {
                "name": "retention",
                "image": str(hub),
                "command": [
                    "python3",
                    "-m",
                    "hub.retention",
                    f"--namespace={stack.namespace}",
                    f"--days={days}",
                ],
                "resources": {
                    "requests": {"cpu": "50m", "memory": "128Mi"},
                    "limits": {"memory": "256Mi"},
                },
                "securityContext": restricted_container_security(),
            }
        ],
    }
