"""The publish gate: no course image is published (or deployed) without a passing smoke test.

Pure: `plan_publication(image_map, live, results, changed)` decides from plain data.

- Every image of the image map is decided alone, by its key: a course's slug, and a GPU course's
  `<slug>--cpu` (its CPU image, smoke-tested by `#smoke-test-cpu`).
- A course is a candidate when its image in the new image map differs from the live one (or, if
  `changed` is given, when it is also named there).
- A candidate is published only if a smoke-test result exists for exactly that image (the
  immutable content tag) and it passed. Otherwise it is held back, with the reason.
- The image map to deploy names the new image for published courses and the live image for
  every other course: a failing course keeps its previous image live. A course that has never
  passed has no live image and is left out (the hub lists only courses that have an image).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from catalog import CPU_IMAGE_SUFFIX
from tools.course_check.model import SmokeResult


class Action(str, Enum):
    PUBLISH = "publish"
    HOLD = "hold"  # changed, but not proven to work: keep the live image
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Decision:
    course: str
    action: Action
    image: str  # the newly built image
    live: str | None  # the image deployed now
    reason: str

    @property
    def deployed(self) -> str | None:
        """The image to deploy for this course (None: the course is not deployed)."""
        return self.image if self.action is Action.PUBLISH else self.live


@dataclass(frozen=True)
class PublishPlan:
    decisions: tuple[Decision, ...]

    def courses(self, action: Action) -> list[str]:
        return [d.course for d in self.decisions if d.action is action]

    @property
    def publish(self) -> list[str]:
        return self.courses(Action.PUBLISH)

    @property
    def held_back(self) -> list[Decision]:
        return [d for d in self.decisions if d.action is Action.HOLD]

    @property
    def deploy_image_map(self) -> dict[str, str]:
        return {d.course: d.deployed for d in self.decisions if d.deployed}


def _failure(result: SmokeResult) -> str:
    if result.error:
        return result.error
    failed = [n for n in result.notebooks if not n.passed]
    if not failed:
        return "no notebook ran"
    first = failed[0]
    more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
    return f"{first.path}: {first.summary()}{more}"


def decide(
    course: str, image: str, live: str | None, result: SmokeResult | None, candidate: bool
) -> Decision:
    if not candidate or image == live:
        reason = "same image as live" if image == live else "not among the changed courses"
        return Decision(course, Action.UNCHANGED, image, live, reason)
    keep = f"; keeping {live}" if live else "; not deployed until it passes"
    if result is None:
        return Decision(course, Action.HOLD, image, live, f"no smoke-test result{keep}")
    if result.image != image:
        return Decision(
            course,
            Action.HOLD,
            image,
            live,
            f"the smoke test ran on {result.image}, not on this image{keep}",
        )
    if not result.passed:
        return Decision(
            course, Action.HOLD, image, live, f"smoke test failed: {_failure(result)}{keep}"
        )
    return Decision(course, Action.PUBLISH, image, live, "smoke test passed")


def plan_publication(
    image_map: Mapping[str, str],
    live: Mapping[str, str],
    results: Mapping[str, SmokeResult],
    changed: Iterable[str] | None = None,
) -> PublishPlan:
    """Which images to publish, and which image of every course to deploy."""
    changed_set = None if changed is None else set(changed)
    decisions = [
        decide(
            slug,
            image,
            live.get(slug),
            results.get(slug),
            changed_set is None or slug.removesuffix(CPU_IMAGE_SUFFIX) in changed_set,
        )
        for slug, image in sorted(image_map.items())
    ]
    return PublishPlan(tuple(decisions))


def latest_results(results: Iterable[SmokeResult], image_map: Mapping[str, str]) -> dict:
    """One result per image map key (a course's slug, or a GPU course's `<slug>--cpu`): the one
    for the key's current image when there are several, else one of the course's own."""
    key_of = {image: key for key, image in image_map.items()}
    chosen: dict[str, SmokeResult] = {}
    for result in results:
        key = key_of.get(result.image, result.course)
        current = chosen.get(key)
        if current is None or result.image == image_map.get(key):
            chosen[key] = result
    return chosen
