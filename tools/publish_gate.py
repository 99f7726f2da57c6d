"""The publish gate, for CI: which course images to publish, and the image map to deploy.

    ./pants run tools:publish-gate -- --results dist/test [--live LIVE_IMAGE_MAP]
        [--image-map FILE] [--changed SLUG ...]
        [--targets-out dist/courses/publish-targets.txt] [--deploy-map-out FILE] [--fail-on-hold]

The image map read and the one written for the deploy are where `catalog.image_facts` says.

Reads every `<slug>.smoke-test.json` under --results (`./pants test` writes them under
dist/test/), compares the new image map with the live one (what is deployed now; none: every
course is new) and writes the Pants targets to publish (`courses/<slug>#image`, one per line:
`./pants publish $(cat dist/courses/publish-targets.txt)`) and the image map to deploy, in which a
course whose smoke test did not pass keeps its live image. See tools/course_check/gate.py.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from catalog.image_facts import (
    DEPLOY_IMAGE_MAP,
    IMAGE_MAP,
    ImageMapError,
    format_image_map,
    image_target,
    read_image_map,
)
from tools.course_check.gate import Action, latest_results, plan_publication
from tools.course_check.model import SMOKE_KIND, SmokeResult


def read_results(directory: Path) -> list[SmokeResult]:
    results = []
    for path in sorted(directory.rglob("*.smoke-test.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and data.get("kind") == SMOKE_KIND:
            results.append(SmokeResult.from_dict(data))
    return results


def publish_targets(keys: Sequence[str]) -> list[str]:
    """The image targets of the image map keys to publish (`courses/<slug>#image[-cpu]`)."""
    return [image_target(key) for key in keys]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True, help="where smoke results are")
    parser.add_argument("--image-map", type=Path, default=Path(IMAGE_MAP), help="the new image map")
    parser.add_argument("--live", type=Path, help="the image map deployed now")
    parser.add_argument("--changed", nargs="*", help="only these courses may be published")
    parser.add_argument(
        "--targets-out", type=Path, default=Path("dist/courses/publish-targets.txt")
    )
    parser.add_argument("--deploy-map-out", type=Path, default=Path(DEPLOY_IMAGE_MAP))
    parser.add_argument("--fail-on-hold", action="store_true", help="exit 1 if any is held back")
    args = parser.parse_args(argv)

    try:
        image_map = read_image_map(args.image_map)
        live = read_image_map(args.live) if args.live else {}
    except ImageMapError as e:
        parser.error(str(e))
    results = latest_results(read_results(args.results), image_map)
    plan = plan_publication(image_map, live, results, args.changed)

    for decision in plan.decisions:
        print(f"publish-gate: {decision.course}: {decision.action.value}: {decision.reason}")
    args.targets_out.parent.mkdir(parents=True, exist_ok=True)
    args.targets_out.write_text("".join(f"{t}\n" for t in publish_targets(plan.publish)))
    args.deploy_map_out.parent.mkdir(parents=True, exist_ok=True)
    args.deploy_map_out.write_text(format_image_map(plan.deploy_image_map))
    print(
        f"publish-gate: {len(plan.publish)} to publish ({args.targets_out}), "
        f"{len(plan.courses(Action.HOLD))} held back; deploy {args.deploy_map_out}"
    )
    return 1 if args.fail_on_hold and plan.held_back else 0


if __name__ == "__main__":
    raise SystemExit(main())
