"""ECR lifecycle policies = f(tags in use, stack settings). No I/O.

ECR has no "keep what is deployed" rule, but it has this evaluation rule: an image that matches the
tag selection of a rule can never be expired by a rule of lower priority (higher number). So the
policy starts with one rule per tag in use (an exact `tagPatternList`, which is an AND of its
patterns, hence one rule per tag), each keeping up to one image, which is all a content tag ever
names. Then untagged images expire after a few days, and finally every other image (content tags
that no stack uses any more; only content tags are pushed) after `expire_after_days`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

# ECR's limit on the length of a lifecycle policy document.
MAX_POLICY_CHARS = 30_720


class PolicyError(ValueError):
    pass


def lifecycle_policy(
    keep_tags: Iterable[str], *, expire_untagged_days: int, expire_after_days: int
) -> dict[str, Any]:
    """The lifecycle policy that never expires an image carrying one of `keep_tags`."""
    rules: list[dict[str, Any]] = []
    for tag in sorted(set(keep_tags)):
        if "*" in tag or not tag:
            raise PolicyError(f"{tag!r} is not an exact image tag")
        rules.append(
            {
                "rulePriority": len(rules) + 1,
                "description": "in use",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": [tag],
                    "countType": "imageCountMoreThan",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            }
        )
    rules.append(
        {
            "rulePriority": len(rules) + 1,
            "description": f"untagged, after {expire_untagged_days} days",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": expire_untagged_days,
            },
            "action": {"type": "expire"},
        }
    )
    rules.append(
        {
            "rulePriority": len(rules) + 1,
            "description": f"not in use, after {expire_after_days} days",
            "selection": {
                "tagStatus": "any",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": expire_after_days,
            },
            "action": {"type": "expire"},
        }
    )
    policy = {"rules": rules}
    if len(policy_json(policy)) > MAX_POLICY_CHARS:
        raise PolicyError(
            f"{len(rules) - 2} tags in use make the lifecycle policy longer than ECR's "
            f"{MAX_POLICY_CHARS} characters; protect fewer stacks (registry.protectStacks)"
        )
    return policy


def policy_json(policy: dict[str, Any]) -> str:
    """The policy document as ECR stores it (compact, keys sorted)."""
    return json.dumps(policy, sort_keys=True, separators=(",", ":"))
