"""Kept work's retention in a stack that keeps work (`keepWork.days` > 0): a CronJob of the hub
image running `python3 -m hub.retention` on the culler's schedule, with a service account of its
own that may do exactly what retention does in the stack's namespace: list pods, and list, patch
(the last-use annotation) and delete PersistentVolumeClaims. The learners' claims themselves are
KubeSpawner's (hub/spawner.py), made as people launch.
"""

from __future__ import annotations

from typing import Any

from infra.images import ImageRef
from infra.stack_config import StackConfig
from infra.values import HUB_UID

NAME = "kept-work-retention"
LABELS = {"app.kubernetes.io/component": NAME}


def retention_schedule(every_seconds: int) -> str:
    """A cron schedule at least as often as the culler's (cron counts whole minutes)."""
    minutes = max(1, min(59, every_seconds // 60))
    return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"


def retention_objects(stack: StackConfig, hub: ImageRef) -> list[dict[str, Any]]:
    """The service account, its role and binding, and the CronJob; none without kept work."""
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
    ]


def _pod(stack: StackConfig, hub: ImageRef, days: int) -> dict[str, Any]:
    return {
        "serviceAccountName": NAME,
        "restartPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": HUB_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
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
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    }
