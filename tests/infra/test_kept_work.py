"""Kept work's retention job in a stack (infra/kept_work.py): valid Kubernetes objects (strictly,
against the API's schemas: no cluster runs here), a role with exactly what retention does, and
nothing at all in a stack that keeps no work."""

from __future__ import annotations

from dataclasses import replace

import kubernetes_validate
import pytest

from hub.launch import KeptWorkSettings
from infra.images import hub_image
from infra.kept_work import NAME, retention_objects, retention_schedule
from infra.stack_config import StackConfig
from tests.infra.chart import KUBERNETES_VERSION
from tests.infra.support import HUB_IMAGE


def keeping(stack: StackConfig, days: int = 30) -> StackConfig:
    return replace(stack, keep_work=KeptWorkSettings(days=days, storage_class="efs-sc"))


def test_the_objects_are_valid_and_the_role_is_retentions_alone(
    stacks: dict[str, StackConfig],
) -> None:
    stack = keeping(stacks["prod"])
    objects = retention_objects(stack, hub_image(HUB_IMAGE))
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
    assert retention_objects(keeping(stacks["dev"], days=0), hub_image(HUB_IMAGE)) == []
    assert all(stack.keep_work.days == 0 for stack in stacks.values())


@pytest.mark.parametrize(
    ("every", "schedule"),
    [(30, "* * * * *"), (60, "* * * * *"), (300, "*/5 * * * *"), (7200, "*/59 * * * *")],
)
def test_retention_runs_at_least_as_often_as_the_culler(every: int, schedule: str) -> None:
    assert retention_schedule(every) == schedule
