"""ECR lifecycle policies: never expire a tag in use; expire untagged and old content tags.

ECR evaluates policies in the registry, which cannot run here. `expired` below implements the
evaluation rules ECR documents for lifecycle policies ("Lifecycle policy evaluation rules" in the
Amazon ECR user guide) for the selections the policy uses, and the tests run the generated policy
through it:

- rules apply from the lowest `rulePriority`; an image that matches the tag selection of a rule
  cannot be expired by a rule of lower priority;
- `tagPatternList` selects images having tags that match *all* its patterns (`*` wildcards);
- `imageCountMoreThan` keeps the N most recently pushed images the rule selects;
  `sinceImagePushed` expires selected images older than N days;
- `tagStatus: any` must be the last rule; only one rule may select untagged images.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pytest

from infra.registry import MAX_POLICY_CHARS, PolicyError, lifecycle_policy, policy_json


@dataclass(frozen=True)
class Image:
    digest: str
    tags: frozenset[str]
    age_days: int


def _selected(selection: dict[str, Any], image: Image) -> bool:
    status = selection["tagStatus"]
    if status == "any":
        return True
    if status == "untagged":
        return not image.tags
    patterns = selection.get("tagPatternList", [])
    prefixes = selection.get("tagPrefixList", [])
    return (
        bool(image.tags)
        and all(
            any(fnmatch.fnmatchcase(tag, pattern) for tag in image.tags) for pattern in patterns
        )
        and all(any(tag.startswith(prefix) for tag in image.tags) for prefix in prefixes)
    )


def expired(policy: dict[str, Any], images: list[Image]) -> set[str]:
    rules = sorted(policy["rules"], key=lambda rule: rule["rulePriority"])
    claimed: set[str] = set()
    result: set[str] = set()
    for rule in rules:
        selection = rule["selection"]
        selected = [image for image in images if _selected(selection, image)]
        if selection["countType"] == "imageCountMoreThan":
            newest_first = sorted(selected, key=lambda image: image.age_days)
            candidates = newest_first[selection["countNumber"] :]
        else:
            candidates = [i for i in selected if i.age_days > selection["countNumber"]]
        result |= {image.digest for image in candidates if image.digest not in claimed}
        claimed |= {image.digest for image in selected}
    return result


def content_tag(slug: str, version: int) -> str:
    return f"{slug}-{hashlib.sha256(f'{slug}{version}'.encode()).hexdigest()}"


def image(tags: set[str], age_days: int) -> Image:
    digest = "sha256:" + hashlib.sha256(f"{sorted(tags)}{age_days}".encode()).hexdigest()
    return Image(digest=digest, tags=frozenset(tags), age_days=age_days)


def test_policy_structure_is_what_ecr_accepts() -> None:
    policy = lifecycle_policy(
        {content_tag("a", 1), content_tag("b", 1)}, expire_untagged_days=1, expire_after_days=30
    )
    rules = policy["rules"]
    priorities = [rule["rulePriority"] for rule in rules]
    assert priorities == sorted(set(priorities))  # unique, ascending (as ECR stores them)
    assert rules[-1]["selection"]["tagStatus"] == "any"
    assert [r["selection"]["tagStatus"] for r in rules].count("untagged") == 1
    for rule in rules:
        assert rule["action"] == {"type": "expire"}
        patterns = rule["selection"].get("tagPatternList", [])
        assert all(p.count("*") <= 4 for p in patterns)
    assert json.loads(policy_json(policy)) == policy


# One registry, the policy for two tags in use (expire untagged after 1 day, the rest after 30):
# (case, an image's tags, its age in days) -> expired?
IN_USE = {content_tag("intro", 1), content_tag("gpu", 7)}
FATES: list[tuple[str, set[str], int, bool]] = [
    ("in-use-however-old", {content_tag("intro", 1)}, 900, False),
    ("in-use-with-another-tag", {content_tag("gpu", 7), "gpu"}, 400, False),
    ("old-content-tag-not-in-use", {content_tag("intro", 2)}, 31, True),
    ("newest-not-deployed-yet", {content_tag("intro", 3), "intro"}, 2, False),
    ("untagged", set(), 5, True),
    ("untagged-pushed-today", set(), 0, False),
]
REGISTRY = [image(tags, age_days) for _, tags, age_days, _ in FATES]


@pytest.mark.parametrize(
    "tags, age_days, is_expired",
    [pytest.param(tags, age, fate, id=case) for case, tags, age, fate in FATES],
)
def test_tags_in_use_never_expire_however_old(
    tags: set[str], age_days: int, is_expired: bool
) -> None:
    policy = lifecycle_policy(IN_USE, expire_untagged_days=1, expire_after_days=30)
    assert (image(tags, age_days).digest in expired(policy, REGISTRY)) is is_expired


def test_many_courses_across_stacks_all_kept() -> None:
    in_use = {content_tag(f"course-{n}", v) for n in range(40) for v in (1, 2)}
    policy = lifecycle_policy(in_use, expire_untagged_days=1, expire_after_days=7)
    images = [image({tag}, 365) for tag in sorted(in_use)]
    images += [image({content_tag(f"course-{n}", 0)}, 365) for n in range(40)]
    gone = expired(policy, images)
    assert {i.digest for i in images if next(iter(i.tags)) in in_use}.isdisjoint(gone)
    assert len(gone) == 40


def test_too_many_tags_for_ecr_says_what_to_do() -> None:
    in_use = {content_tag(f"course-{n}", 1) for n in range(400)}
    with pytest.raises(PolicyError, match="registry.protectStacks"):
        lifecycle_policy(in_use, expire_untagged_days=1, expire_after_days=30)
    assert MAX_POLICY_CHARS == 30_720


@pytest.mark.parametrize("tag", ["intro-*", "*", ""], ids=["wildcard", "only-a-wildcard", "empty"])
def test_wildcards_are_not_tags(tag: str) -> None:
    with pytest.raises(PolicyError, match="is not an exact image tag"):
        lifecycle_policy({tag}, expire_untagged_days=1, expire_after_days=30)
