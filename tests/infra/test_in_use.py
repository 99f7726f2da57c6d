"""The tags-in-use decision (`infra/in_use.py`): the stack's registry settings and the other
stacks' outputs in, the tags the lifecycle policy keeps and the messages to print out.

One row per case: whole input -> whole plan. `None` stands for a stack not created yet, as
`infra/deploy.py` hands it over when Pulumi has no such stack.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest

from infra.images import ImageError
from infra.in_use import InUse, InUsePlan, StackOutputs, plan_in_use, stacks_to_read
from infra.stack_config import Registry, StackConfig

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def course_tag(slug: str, version: int) -> str:
    return f"{slug}-{str(version) * 64}"


def hub_tag(version: int) -> str:
    return f"hub-{str(version) * 64}"


def outputs(courses: Mapping[str, str], hub: str | None = None, **other: Any) -> dict[str, Any]:
    """A deployed stack's outputs as `infra/program.py` exports them."""
    images = {slug: f"{REGISTRY}/ol-course-notebooks:{tag}" for slug, tag in courses.items()}
    found: dict[str, Any] = {"courseImages": images, **other}
    if hub is not None:
        found["hubImage"] = f"{REGISTRY}/ol-course-hub:{hub}"
    return found


def in_use(course_tags: set[str], hub_tags: set[str]) -> InUse:
    return InUse(frozenset(course_tags), frozenset(hub_tags))


MANAGES_FOR_STAGE_AND_PROD = Registry(manage=True, protect_stacks=("stage", "prod"))
MANAGES_FOR_PROD = Registry(manage=True, protect_stacks=("prod",))
PROD = outputs(
    {"intro-ml": course_tag("intro-ml", 1), "tf-basics": course_tag("tf-basics", 1)}, hub_tag(1)
)
PROD_IN_USE = in_use({course_tag("intro-ml", 1), course_tag("tf-basics", 1)}, {hub_tag(1)})
STAGE = outputs(
    {"intro-ml": course_tag("intro-ml", 2), "tf-basics": course_tag("tf-basics", 1)}, hub_tag(2)
)
NOT_CREATED = "stack {} does not exist yet: no images of it to keep"
NOT_DEPLOYED = "stack {} has deployed no images yet: none of it to keep"

# (registry settings, other stacks' outputs) -> (stacks read, plan)
CASES = [
    pytest.param(
        Registry(manage=False),
        {},
        (),
        InUsePlan(InUse()),
        id="looks-the-registry-up",
    ),
    pytest.param(
        Registry(manage=False, protect_stacks=("prod",)),
        {},
        (),
        InUsePlan(InUse()),
        id="protects-without-managing",
    ),
    pytest.param(
        Registry(manage=True),
        {},
        (),
        InUsePlan(InUse()),
        id="manages-and-protects-no-stack",
    ),
    pytest.param(
        MANAGES_FOR_PROD,
        {"prod": PROD},
        ("prod",),
        InUsePlan(PROD_IN_USE),
        id="one-stack-deployed",
    ),
    pytest.param(
        MANAGES_FOR_STAGE_AND_PROD,
        {"stage": STAGE, "prod": PROD},
        ("stage", "prod"),
        InUsePlan(
            in_use(
                {course_tag("intro-ml", 1), course_tag("intro-ml", 2), course_tag("tf-basics", 1)},
                {hub_tag(1), hub_tag(2)},
            )
        ),
        id="two-stacks-merged",
    ),
    pytest.param(
        MANAGES_FOR_STAGE_AND_PROD,
        {"stage": None, "prod": PROD},
        ("stage", "prod"),
        InUsePlan(PROD_IN_USE, (NOT_CREATED.format("stage"),)),
        id="a-stack-not-created-yet",
    ),
    pytest.param(
        MANAGES_FOR_STAGE_AND_PROD,
        {"stage": None, "prod": None},
        ("stage", "prod"),
        InUsePlan(InUse(), (NOT_CREATED.format("stage"), NOT_CREATED.format("prod"))),
        id="no-stack-created-yet",
    ),
    pytest.param(
        MANAGES_FOR_STAGE_AND_PROD,
        {"stage": {}, "prod": PROD},
        ("stage", "prod"),
        InUsePlan(PROD_IN_USE, (NOT_DEPLOYED.format("stage"),)),
        id="a-stack-created-but-never-deployed",
    ),
    pytest.param(
        MANAGES_FOR_PROD,
        {"prod": outputs({"intro-ml": course_tag("intro-ml", 1)})},
        ("prod",),
        InUsePlan(in_use({course_tag("intro-ml", 1)}, set())),
        id="no-hub-image-output",
    ),
    pytest.param(
        MANAGES_FOR_PROD,
        {"prod": {"courseImages": None, "hubImage": f"{REGISTRY}/ol-course-hub:{hub_tag(3)}"}},
        ("prod",),
        InUsePlan(in_use(set(), {hub_tag(3)})),
        id="null-course-images-output",
    ),
    pytest.param(
        MANAGES_FOR_PROD,
        {
            "prod": outputs(
                {"intro-ml": course_tag("intro-ml", 1)},
                hub_tag(1),
                url="https://courses.example.org",
                courseImageDigests={"intro-ml": "sha256:" + "f" * 64},
                databaseEndpoint="hub-db.c0ffee.us-east-1.rds.amazonaws.com",
            )
        },
        ("prod",),
        InUsePlan(in_use({course_tag("intro-ml", 1)}, {hub_tag(1)})),
        id="other-outputs-ignored",
    ),
]


@pytest.mark.parametrize("registry, other_outputs, reads, expected", CASES)
def test_tags_in_use(
    stacks: dict[str, StackConfig],
    registry: Registry,
    other_outputs: Mapping[str, StackOutputs],
    reads: tuple[str, ...],
    expected: InUsePlan,
) -> None:
    stack = dataclasses.replace(stacks["dev"], registry=registry)
    assert stacks_to_read(stack) == reads
    assert plan_in_use(stack, other_outputs) == expected


# (registry settings, other stacks' outputs) -> the error
ERRORS = [
    pytest.param(
        MANAGES_FOR_STAGE_AND_PROD,
        {"prod": PROD},
        ValueError,
        r"needs the outputs of \['prod', 'stage'\], got \['prod'\]",
        id="a-protected-stack-not-read",
    ),
    pytest.param(
        Registry(manage=False, protect_stacks=("prod",)),
        {"prod": PROD},
        ValueError,
        r"needs the outputs of \[\], got \['prod'\]",
        id="a-stack-read-that-is-not-needed",
    ),
    pytest.param(
        MANAGES_FOR_PROD,
        {"prod": {"hubImage": "ol-course-hub"}},
        ImageError,
        "not an image reference|no tag",
        id="an-output-without-a-tag",
    ),
    pytest.param(
        MANAGES_FOR_PROD,
        {"prod": outputs({"intro-ml": "x@sha256:" + "0" * 64})},
        ImageError,
        "not an image reference",
        id="an-output-by-digest",
    ),
]


@pytest.mark.parametrize("registry, other_outputs, error, message", ERRORS)
def test_bad_input_is_refused(
    stacks: dict[str, StackConfig],
    registry: Registry,
    other_outputs: Mapping[str, StackOutputs],
    error: type[Exception],
    message: str,
) -> None:
    stack = dataclasses.replace(stacks["dev"], registry=registry)
    with pytest.raises(error, match=message):
        plan_in_use(stack, other_outputs)
