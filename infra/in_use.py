"""Which image tags the registry keeps for the other stacks: a decision, data in, plan out. No I/O.

The stack that manages the ECR repositories (`registry.manage`) writes their lifecycle policies,
which keep its own images and the images that the stacks of its `registry.protectStacks` run
now. What a stack runs is in its Pulumi outputs (`courseImages`, `hubImage`: see
`infra/program.py`). `infra/deploy.py` reads those outputs (the only I/O) for the stacks that
`stacks_to_read` names and hands them to `plan_in_use`, with `None` for a stack not created yet;
the plan says which tags are in use and what to tell the person deploying.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from infra.images import ImageRef
from infra.stack_config import StackConfig

#: A stack's outputs (name -> value), or None for a stack not created yet.
StackOutputs = Optional[Mapping[str, Any]]


@dataclass(frozen=True)
class InUse:
    """Image tags that other stacks have deployed (their outputs), kept by the lifecycle policy."""

    course_tags: frozenset[str] = frozenset()
    hub_tags: frozenset[str] = frozenset()

    def __or__(self, other: InUse) -> InUse:
        return InUse(self.course_tags | other.course_tags, self.hub_tags | other.hub_tags)


@dataclass(frozen=True)
class InUsePlan:
    """What `plan_in_use` decided: the tags to keep, and the lines to print, in order."""

    in_use: InUse
    messages: tuple[str, ...] = ()


def stacks_to_read(stack: StackConfig) -> tuple[str, ...]:
    """The stacks whose outputs `plan_in_use` needs: those the registry protects, when this stack
    manages the registry; none otherwise (its policies are not this stack's to write)."""
    return stack.registry.protect_stacks if stack.registry.manage else ()


def in_use_from_outputs(outputs: Mapping[str, Any]) -> InUse:
    """The tags a deployed stack uses, from its outputs (`courseImages`, `hubImage`).

    Raises `ImageError` for an output that is not an image reference.
    """
    course_refs = (outputs.get("courseImages") or {}).values()
    hub_ref = outputs.get("hubImage")
    return InUse(
        course_tags=frozenset(ImageRef.parse(ref).tag for ref in course_refs),
        hub_tags=frozenset({ImageRef.parse(hub_ref).tag} if hub_ref else ()),
    )


def plan_in_use(stack: StackConfig, outputs: Mapping[str, StackOutputs]) -> InUsePlan:
    """The tags in use by the stacks `stacks_to_read(stack)` names, from their outputs.

    `outputs` must hold exactly those stacks (`None`: not created yet, so nothing of it to keep);
    anything else is a mistake of the caller (ValueError).
    """
    wanted = stacks_to_read(stack)
    if set(outputs) != set(wanted):
        raise ValueError(
            f"stack {stack.name} needs the outputs of {sorted(wanted)}, got {sorted(outputs)}"
        )
    in_use = InUse()
    messages = []
    for other in wanted:
        found = outputs[other]
        if found is None:
            messages.append(f"stack {other} does not exist yet: no images of it to keep")
            continue
        of_other = in_use_from_outputs(found)
        if of_other == InUse():
            messages.append(f"stack {other} has deployed no images yet: none of it to keep")
        in_use |= of_other
    return InUsePlan(in_use, tuple(messages))
