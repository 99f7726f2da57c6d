"""The publish gate: no course image is published without a passing smoke test of that image,
and a failing course keeps its previous image live. Tested as a function, as the command CI runs,
and on the CI workflow itself (.github/workflows/)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import publish_gate
from tools.course_check.gate import Action, latest_results, plan_publication
from tools.course_check.model import NotebookResult, SmokeResult, Status

WORKFLOWS = Path(".github/workflows")


def smoke(course: str, image: str, passed: bool = True) -> SmokeResult:
    status = Status.PASSED if passed else Status.FAILED
    notebook = NotebookResult(
        "a.ipynb", status, 1.0, cell=None if passed else 2, exception=None if passed else "KeyError"
    )
    return SmokeResult(course, image, 10**9, 60, False, (notebook,))


IMAGE_MAP = {"a": "r/c:a-2", "b": "r/c:b-2", "c": "r/c:c-1", "new": "r/c:new-1"}
LIVE = {"a": "r/c:a-1", "b": "r/c:b-1", "c": "r/c:c-1"}


def test_only_changed_courses_with_a_passing_result_for_their_image_are_published() -> None:
    results = {
        "a": smoke("a", "r/c:a-2"),
        "b": smoke("b", "r/c:b-2", passed=False),
        "new": smoke("new", "r/c:new-1", passed=False),
    }
    plan = plan_publication(IMAGE_MAP, LIVE, results)
    assert plan.publish == ["a"]
    assert plan.courses(Action.HOLD) == ["b", "new"]
    assert plan.courses(Action.UNCHANGED) == ["c"]
    # b keeps its live image; the new course is not deployed until it passes.
    assert plan.deploy_image_map == {"a": "r/c:a-2", "b": "r/c:b-1", "c": "r/c:c-1"}
    reasons = {d.course: d.reason for d in plan.decisions}
    assert reasons["b"].startswith("smoke test failed: a.ipynb: failed: cell 2: KeyError")
    assert "keeping r/c:b-1" in reasons["b"]


def test_no_result_or_a_result_for_another_image_holds_back() -> None:
    plan = plan_publication(IMAGE_MAP, LIVE, {"a": smoke("a", "r/c:a-OLD")})
    decisions = {d.course: d for d in plan.decisions}
    assert decisions["a"].action is Action.HOLD and "ran on r/c:a-OLD" in decisions["a"].reason
    assert decisions["b"].action is Action.HOLD and "no smoke-test result" in decisions["b"].reason
    assert plan.publish == []
    assert plan.deploy_image_map == LIVE


def test_changed_restricts_the_candidates() -> None:
    results = {slug: smoke(slug, image) for slug, image in IMAGE_MAP.items()}
    plan = plan_publication(IMAGE_MAP, LIVE, results, changed=["b"])
    assert plan.publish == ["b"]
    assert plan.deploy_image_map == {**LIVE, "b": "r/c:b-2"}
    assert plan_publication(IMAGE_MAP, {}, results).publish == sorted(IMAGE_MAP)


def test_latest_results_prefers_the_current_image() -> None:
    older, current = smoke("a", "r/c:a-2"), smoke("a", "r/c:a-1", passed=False)
    assert latest_results([older, current], {"a": "r/c:a-2"})["a"] is older
    assert latest_results([current, older], {"a": "r/c:a-2"})["a"] is older


def test_a_gpu_courses_cpu_image_is_decided_by_its_own_smoke_test() -> None:
    """`g--cpu` (the CPU image of GPU course g) needs a passing result for exactly that image;
    it is a candidate when course g changed."""
    image_map = {"g": "r/c:g-2", "g--cpu": "r/c:g--cpu-2"}
    results = latest_results(
        [smoke("g", "r/c:g-2"), smoke("g", "r/c:g--cpu-2", passed=False)], image_map
    )
    assert {key: r.image for key, r in results.items()} == image_map
    plan = plan_publication(image_map, {}, results, changed=["g"])
    assert plan.publish == ["g"]
    assert [d.course for d in plan.held_back] == ["g--cpu"]
    assert plan_publication(image_map, {}, results, changed=["other"]).publish == []
    assert publish_gate.publish_targets(["g", "g--cpu"]) == [
        "courses/g#image",
        "courses/g#image-cpu",
    ]


def test_the_command_writes_targets_and_the_deploy_image_map(tmp_path: Path, capsys) -> None:
    results = tmp_path / "dist/test"
    for result in (smoke("a", "r/c:a-2"), smoke("b", "r/c:b-2", passed=False)):
        folder = results / f"courses.{result.course}@smoke-test"
        folder.mkdir(parents=True)
        (folder / f"{result.course}.smoke-test.json").write_text(json.dumps(result.to_dict()))
    (results / "unrelated.json").write_text("{}")
    (tmp_path / "map.json").write_text(json.dumps(IMAGE_MAP))
    (tmp_path / "live.json").write_text(json.dumps(LIVE))
    targets, deploy = tmp_path / "targets.txt", tmp_path / "deploy.json"
    args = [
        "--results", str(results), "--image-map", str(tmp_path / "map.json"),
        "--live", str(tmp_path / "live.json"),
        "--targets-out", str(targets), "--deploy-map-out", str(deploy),
    ]  # fmt: skip
    assert publish_gate.main(args) == 0
    assert targets.read_text() == "courses/a#image\n"
    assert json.loads(deploy.read_text()) == {"a": "r/c:a-2", "b": "r/c:b-1", "c": "r/c:c-1"}
    out = capsys.readouterr().out
    assert "publish-gate: b: hold: smoke test failed" in out
    assert publish_gate.main([*args, "--fail-on-hold"]) == 1


@pytest.mark.parametrize(
    "image_map, live, expected",
    [
        pytest.param(
            None,
            {},
            "no image map at {tmp}/map.json: build the course images and the map with "
            "`./pants package courses::`",
            id="no-image-map",
        ),
        pytest.param(
            ["r/c:a-2"],
            {},
            "{tmp}/map.json is not a JSON object of course -> image reference: "
            "rebuild it with `./pants package courses::`",
            id="image-map-not-an-object",
        ),
        pytest.param(
            IMAGE_MAP,
            {"a": None},
            "{tmp}/live.json: the image of a is not an image reference: "
            "rebuild it with `./pants package courses::`",
            id="live-map-without-a-reference",
        ),
    ],
)
def test_the_command_refuses_a_bad_image_map(
    tmp_path: Path, capsys, image_map: Any, live: Any, expected: str
) -> None:
    if image_map is not None:
        (tmp_path / "map.json").write_text(json.dumps(image_map))
    (tmp_path / "live.json").write_text(json.dumps(live))
    args = [
        "--results", str(tmp_path), "--image-map", str(tmp_path / "map.json"),
        "--live", str(tmp_path / "live.json"),
        "--targets-out", str(tmp_path / "t.txt"), "--deploy-map-out", str(tmp_path / "d.json"),
    ]  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        publish_gate.main(args)
    assert exited.value.code == 2
    assert (
        capsys.readouterr().err.splitlines()[-1].endswith(f"error: {expected.format(tmp=tmp_path)}")
    )
    assert not (tmp_path / "t.txt").exists()


# --- the CI workflow ---------------------------------------------------------------------------

GATE_TOOL = "tools:publish-gate"


def _runs(job: dict[str, Any]) -> list[str]:
    return [str(step.get("run", "")) for step in job.get("steps", [])]


def _needs(jobs: dict[str, Any], name: str) -> set[str]:
    """Every job `name` waits for, transitively."""
    needs = jobs[name].get("needs", [])
    direct = {needs} if isinstance(needs, str) else set(needs)
    return direct.union(*(_needs(jobs, n) for n in direct)) if direct else set()


def _smoke_tests_courses(step: dict[str, Any]) -> bool:
    run = str(step.get("run", ""))
    return (
        bool(re.search(r"pants\b.*\btest\b", run))
        and bool(re.search(r"(^|\s)['\"]?(courses::|::)", run))
        and "smoke-tester-skip" not in run
    )


def _gating_smoke_test(job: dict[str, Any]) -> bool:
    """A step that smoke-tests the courses and fails the job when one fails."""
    return any(
        _smoke_tests_courses(step)
        and not step.get("continue-on-error")
        and "|| true" not in str(step.get("run", ""))
        for step in job.get("steps", [])
    )


def gate_problems(workflow: dict[str, Any]) -> list[str]:
    """Why the workflow could publish or deploy a course image that did not pass its smoke test.

    Two designs pass: per course (the publish step publishes only what `tools:publish-gate`
    selected from the smoke results, and deploys use the gate's deploy image map), or all or
    nothing (the publishing job waits for a job whose smoke test fails it, and deploys wait for
    the publishing job).
    """
    jobs = workflow.get("jobs", {})
    problems = []
    publishing = [
        name for name, job in jobs.items() if any("pants publish" in run for run in _runs(job))
    ]
    if not publishing:
        return ["no job runs `./pants publish`"]
    per_course = set()
    for name in publishing:
        job = jobs[name]
        steps = job.get("steps", [])
        publish_index = next(i for i, s in enumerate(steps) if "pants publish" in str(s.get("run")))
        gate_index = next(
            (i for i, s in enumerate(steps[:publish_index]) if GATE_TOOL in str(s.get("run"))),
            None,
        )
        if gate_index is not None:
            smoke_before_gate = any(_smoke_tests_courses(s) for s in steps[:gate_index])
            uses_targets = "publish-targets" in str(steps[publish_index].get("run"))
            if smoke_before_gate and uses_targets:
                per_course.add(name)
                continue
            problems.append(
                f"job {name}: {GATE_TOOL} runs, but the smoke test must run before it in the same "
                "job and `./pants publish` must take its targets file (publish-targets.txt)"
            )
            continue
        if not any(_gating_smoke_test(jobs[n]) for n in _needs(jobs, name) | {name}):
            problems.append(
                f"job {name} publishes course images without waiting for a smoke test that "
                f"fails it, and without {GATE_TOOL}"
            )
    for name, job in jobs.items():
        deploy_runs = [run for run in _runs(job) if "infra:deploy" in run and "--render" not in run]
        if not deploy_runs:
            continue
        waits_for = _needs(jobs, name)
        if not waits_for & set(publishing):
            problems.append(f"job {name} deploys without waiting for the publishing job")
        if waits_for & per_course and not all("deploy-image-map" in r for r in deploy_runs):
            problems.append(
                f"job {name} must deploy the gate's deploy image map (deploy-image-map.json), in "
                "which a failing course keeps its live image"
            )
    return problems


def workflows() -> list[Path]:
    """The workflows in the sandbox (a `files` target owning .github/workflows puts them there,
    so Pants re-runs this test when they change), else in the checkout running the tests."""
    for folder in (WORKFLOWS, Path(os.environ.get("MONOREPO_ROOT", ".")) / WORKFLOWS):
        found = sorted(folder.glob("*.yml")) + sorted(folder.glob("*.yaml"))
        if found:
            return found
    return []


@pytest.mark.skipif(not workflows(), reason="no CI workflow under .github/workflows/ yet")
def test_the_ci_workflow_publishes_only_smoke_tested_images() -> None:
    publishing = {
        path.name: yaml.safe_load(path.read_text())
        for path in workflows()
        if "pants publish" in path.read_text()
    }
    assert publishing, "no workflow publishes course images"
    for name, workflow in publishing.items():
        assert gate_problems(workflow) == [], name


def job(*runs: str, needs: list[str] | None = None) -> dict[str, Any]:
    return {"needs": needs or [], "steps": [{"run": run} for run in runs]}


def test_the_workflow_check_accepts_both_designs_and_rejects_holes() -> None:
    smoke_test = "./pants test --changed-since=X --changed-dependents=transitive courses::"
    gate = f"./pants run {GATE_TOOL} -- --results dist/test --live live.json"
    publish = "./pants publish $(cat dist/courses/publish-targets.txt)"
    deploy = (
        "./pants run infra:deploy -- --stack dev --image-map dist/courses/deploy-image-map.json"
    )
    per_course = {
        "jobs": {
            "publish": job(f"{smoke_test} || true", gate, publish),
            "deploy": job(deploy, needs=["publish"]),
        }
    }
    assert gate_problems(per_course) == []
    all_or_nothing = {
        "jobs": {
            "smoke": job(smoke_test),
            "publish": job("./pants publish courses::", needs=["smoke"]),
            "deploy": job(deploy.replace("deploy-image-map", "image-map"), needs=["publish"]),
        }
    }
    assert gate_problems(all_or_nothing) == []

    ungated = {"jobs": {"publish": job("./pants package courses::", "./pants publish courses::")}}
    assert "without waiting for a smoke test" in gate_problems(ungated)[0]
    ignored = {
        "jobs": {
            "smoke": {"steps": [{"run": smoke_test, "continue-on-error": True}]},
            "publish": job("./pants publish courses::", needs=["smoke"]),
        }
    }
    assert gate_problems(ignored)
    raw_map = json.loads(json.dumps(per_course))
    raw_map["jobs"]["deploy"]["steps"][0]["run"] = deploy.replace("deploy-image-map", "image-map")
    assert "deploy-image-map.json" in gate_problems(raw_map)[0]
    early_deploy = json.loads(json.dumps(all_or_nothing))
    early_deploy["jobs"]["deploy"]["needs"] = ["smoke"]
    assert "without waiting for the publishing job" in gate_problems(early_deploy)[0]
