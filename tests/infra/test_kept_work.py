"""Kept work's retention job in a stack (infra/kept_work.py): valid Kubernetes objects (strictly,
against the API's schemas: no cluster runs here), a role with exactly what retention does, and
nothing at all in a stack that keeps no work."""

from __future__ import annotations

from dataclasses import replace

import kubernetes_validate
import pytest

from hub.contract import KEPT_WORK_QUOTA
from hub.launch import KeptWorkSettings
from infra.images import hub_image
from infra.kept_work import NAME, kept_work_objects, retention_schedule
from infra.stack_config import StackConfig
from tests.infra.chart import KUBERNETES_VERSION
from tests.infra.support import HUB_IMAGE


def keeping(stack: StackConfig, days: int = 30, quota: int = 0) -> StackConfig:
    kept = KeptWorkSettings(days=days, storage_class="efs-sc", quota=quota)
    return replace(stack, keep_work=kept)


def test_the_objects_are_valid_and_the_role_is_retentions_alone(
    stacks: dict[str, StackConfig],
) -> None:
    stack = keeping(stacks["prod"])
    objects = kept_work_objects(stack, hub_image(HUB_IMAGE))
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        assert obj["metadata"]["namespace"] == stack.namespace
    role, cron_job = objects[1], objects[3]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        {
            "apiGroups": [""],
            "resources": ["persistentvolumeclaims"],
            "verbs": ["list", "patch", "delete"],
        },
    ]
    pod = cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == NAME
    (container,) = pod["containers"]
    assert container["image"] == HUB_IMAGE
    assert container["command"] == [
        "python3",
        "-m",
        "hub.retention",
        f"--namespace={stack.namespace}",
        "--days=30",
    ]
    assert cron_job["spec"]["schedule"] == retention_schedule(stack.culling.every)


def test_a_stack_that_keeps_no_work_has_no_retention(stacks: dict[str, StackConfig]) -> None:
    assert kept_work_objects(keeping(stacks["dev"], days=0), hub_image(HUB_IMAGE)) == []
    assert all(stack.keep_work.days == 0 for stack in stacks.values())


@pytest.mark.parametrize(
    ("every", "schedule"),
    [(30, "* * * * *"), (60, "* * * * *"), (300, "*/5 * * * *"), (7200, "*/59 * * * *")],
)
def test_retention_runs_at_least_as_often_as_the_culler(every: int, schedule: str) -> None:
    assert retention_schedule(every) == schedule


def test_a_quota_caps_the_storage_of_the_stacks_storage_class(
    stacks: dict[str, StackConfig],
) -> None:
    stack = keeping(stacks["prod"], quota=500 * 1024**3)
    *_, quota = kept_work_objects(stack, hub_image(HUB_IMAGE))
    kubernetes_validate.validate(quota, KUBERNETES_VERSION, strict=True)
    assert quota["kind"] == "ResourceQuota" and quota["metadata"]["name"] == KEPT_WORK_QUOTA
    assert quota["spec"]["hard"] == {"efs-sc.storageclass.storage.k8s.io/requests.storage": "500Gi"}
    unnamed = replace(stack, keep_work=replace(stack.keep_work, storage_class=None))
    assert kept_work_objects(unnamed, hub_image(HUB_IMAGE))[-1]["spec"]["hard"] == {
        "requests.storage": "500Gi"
    }
