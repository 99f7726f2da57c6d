"""`./pants run infra:deploy`: `--render` (no CLI, no cloud), the missing-CLI message, and how the
Automation API is driven.

The Pulumi CLI cannot be installed here, so the Automation API calls are replaced by fakes that
record them; they stand in for `pulumi.automation` as documented for pulumi 3.142
(`create_or_select_stack`, `select_stack`, `Stack.up/preview/outputs`, `install_plugin`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws
from pulumi import automation as auto

from catalog import load_catalog
from infra import deploy
from infra.images import COURSE_REPOSITORY, ImageRef
from infra.program import Deployment
from infra.stack_config import PROJECT, STACKS
from infra.values import CHART_VERSION
from tests.infra.support import (
    HUB_IMAGE,
    MOCK_PASSWORD,
    SAMPLE_COURSES,
    image_map_for,
    write_course,
)


@pytest.fixture
def repo(tmp_path: Path, infra_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with fixture courses, this repo's stack files and built image data."""
    root = tmp_path / "repo"
    (root / "infra").mkdir(parents=True)
    (root / "pants.toml").write_text("")
    for stack_file in infra_dir.glob("Pulumi*.yaml"):
        shutil.copy(stack_file, root / "infra" / stack_file.name)
    for slug, spec in SAMPLE_COURSES.items():
        write_course(root, slug, **spec)
    image_map = root / deploy.IMAGE_MAP
    image_map.parent.mkdir(parents=True)
    image_map.write_text(json.dumps(image_map_for(load_catalog(root))))
    info = root / deploy.HUB_DOCKER_INFO
    info.parent.mkdir(parents=True)
    name, tag = HUB_IMAGE.rsplit(":", 1)
    info.write_text(
        json.dumps(
            {
                "registries": [
                    {"tags": [{"template": "{pants.hash}", "tag": tag, "name": HUB_IMAGE}]}
                ]
            }
        )
    )
    monkeypatch.setenv("MONOREPO_ROOT", str(root))
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def no_pulumi_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


PROD_TAG = "intro-ml-" + "7" * 64
#: What `pulumi stack output --json` prints for prod, as the CLI prints it without
#: `--show-secrets`: secret outputs as "[secret]".
PROD_OUTPUTS = {
    "courseImages": {"intro-ml": f"r/ol-course-notebooks:{PROD_TAG}"},
    "hubImage": "r/ol-course-hub:old",
    "databasePassword": "[secret]",
}


@pytest.fixture
def fake_pulumi_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `pulumi` on PATH that answers `stack output --json --stack prod` as the CLI does (and
    that no stack named stage exists), records every command line, and refuses the rest (the
    Automation API is faked in these tests). Returns the file of recorded command lines."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    calls = tmp_path / "pulumi-calls"
    outputs = tmp_path / "prod-outputs.json"
    outputs.write_text(json.dumps(PROD_OUTPUTS))
    cli = bin_dir / "pulumi"
    cli.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        'case "$*" in\n'
        f'  "stack output --json --stack prod") cat {outputs}; exit 0;;\n'
        '  "stack output --json --stack stage") '
        "echo \"error: no stack named 'stage' found\" >&2; exit 255;;\n"
        "esac\n"
        "echo 'not the real pulumi' >&2\nexit 1\n"
    )
    cli.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return calls


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"network use: connect to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.mark.parametrize("stack", STACKS)
def test_render_writes_what_the_stack_deploys_without_cli_or_cloud(
    repo: Path,
    no_pulumi_cli: None,
    no_network: None,
    stack: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert deploy.main(["--stack", stack, "--render", "out"]) == 0
    out = repo / "out"
    names = {p.name for p in out.iterdir()}
    assert {
        "values.yaml",
        "hub-config.yaml",
        "release.yaml",
        "monitoring-values.yaml",
        "dcgm-exporter-values.yaml",
        "manifests.yaml",
        "dashboards",
    } <= names
    assert {p.name for p in (out / "dashboards").iterdir()} == {
        "courses.json",
        "hub.json",
        "alert-rules.yaml",
    }
    # Every stack's dashboards fit in one Grafana, each with its stack's thresholds (issue 26).
    for board in ("courses.json", "hub.json"):
        data = json.loads((out / "dashboards" / board).read_text())
        assert data["uid"].endswith(f"-{stack}") and data["title"].endswith(f" ({stack})")
    kinds = [m["kind"] for m in yaml.safe_load_all((out / "manifests.yaml").read_text())]
    assert kinds == ["DaemonSet", "ServiceMonitor", "Job"]  # the catalog has a GPU course
    values_text = (out / "values.yaml").read_text()
    assert values_text.startswith("# Rendered by")
    values = yaml.safe_load(values_text)
    assert values["custom"]["imageMap"] == image_map_for(load_catalog(repo))
    assert values["hub"]["db"]["url"].startswith("postgresql://jupyterhub@<rds-endpoint>:5432/")
    release = yaml.safe_load((out / "release.yaml").read_text())
    assert release["chart"]["version"] == CHART_VERSION and release["stack"] == stack
    assert [r["release"] for r in release["monitoring"]] == ["monitoring", "dcgm-exporter"]
    hub_config = yaml.safe_load((out / "hub-config.yaml").read_text())
    assert hub_config["custom"] == values["custom"]
    if stack == "dev":  # the stack that manages the registry also shows its policies
        assert {"ecr-lifecycle-course-images.json", "ecr-lifecycle-hub-images.json"} <= names
    assert "wrote out/values.yaml" in capsys.readouterr().out


def test_render_is_reproducible(repo: Path) -> None:
    deploy.main(["--stack", "prod", "--render", "a"])
    deploy.main(["--stack", "prod", "--render", "b"])
    files = sorted(p.relative_to(repo / "a") for p in (repo / "a").rglob("*") if p.is_file())
    assert len(files) > 5
    for path in files:
        assert (repo / "a" / path).read_text() == (repo / "b" / path).read_text()


def test_render_before_images_are_built_uses_marked_placeholders(repo: Path) -> None:
    shutil.rmtree(repo / "dist")
    assert deploy.main(["--stack", "dev", "--render", "out"]) == 0
    text = (repo / "out" / "values.yaml").read_text()
    assert "# Images: placeholders" in text and "intro-ml-<content-hash>" in text
    assert not list((repo / "out").glob("ecr-lifecycle-*"))


def test_rendered_files_hold_no_secret(repo: Path) -> None:
    for stack in STACKS:
        assert deploy.main(["--stack", stack, "--render", f"out/{stack}"]) == 0
    values = yaml.safe_load((repo / "out" / "prod" / "values.yaml").read_text())
    assert set(values["hub"]["extraEnv"]["PGPASSWORD"]) == {"valueFrom"}
    for path in (repo / "out").rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "secure:" not in text and MOCK_PASSWORD not in text
            for line in text.splitlines():
                # The only "password"s: the variable the hub (and the migration Job) reads and
                # the Secret key it comes from.
                if "password" in line.lower():
                    assert line.strip() in (
                        "PGPASSWORD:",
                        "- name: PGPASSWORD",
                        "key: password",
                        "ol-course-platform/db-password-version: <secret version>",
                    ), line


@pytest.mark.parametrize("extra", [[], ["--preview"]])
def test_missing_cli_says_how_to_install_it_in_one_sentence(
    repo: Path, no_pulumi_cli: None, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    assert deploy.main(["--stack", "dev", *extra]) == deploy.EXIT_NO_CLI != 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.endswith(".") and err.count(". ") == 0
    assert "Pulumi CLI" in err and "install" in err


def test_deploy_needs_the_built_images(
    repo: Path, fake_pulumi_cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / deploy.IMAGE_MAP).unlink()
    assert deploy.main(["--stack", "dev", "--preview"]) == 1
    assert "./pants package courses::" in capsys.readouterr().err


def test_stale_image_map_is_refused(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = image_map_for(load_catalog(repo))
    stale["removed-course"] = stale["intro-ml"]
    (repo / deploy.IMAGE_MAP).write_text(json.dumps(stale))
    assert deploy.main(["--stack", "dev", "--render", "out"]) == 1
    assert "removed-course" in capsys.readouterr().err


def test_render_and_preview_exclude_each_other(repo: Path) -> None:
    with pytest.raises(SystemExit):
        deploy.main(["--stack", "dev", "--preview", "--render", "out"])
    with pytest.raises(SystemExit):
        deploy.main(["--stack", "qa", "--render", "out"])


# --- the Automation API, faked ----------------------------------------------------------------


class FakeWorkspace:
    def __init__(self) -> None:
        self.plugins: list[tuple[str, str]] = []

    def install_plugin(self, name: str, version: str) -> None:
        self.plugins.append((name, version))


class FakeStack:
    def __init__(self, name: str, outputs: dict[str, auto.OutputValue] | None = None) -> None:
        self.name = name
        self.workspace = FakeWorkspace()
        self._outputs = outputs or {}
        self.ran: list[str] = []
        self.fail = False

    def outputs(self) -> dict[str, auto.OutputValue]:
        return self._outputs

    def preview(self, **kwargs: Any) -> None:
        self.ran.append("preview")

    def up(self, **kwargs: Any) -> Any:
        self.ran.append("up")
        if self.fail:
            raise auto.CommandError(auto.CommandResult("", "error: boom", 1))

        return SimpleNamespace(
            outputs={
                "url": auto.OutputValue("https://x", False),
                "dbPassword": auto.OutputValue(MOCK_PASSWORD, True),
            }
        )


PUBLISHED = [f"intro-ml-{'1' * 64}", f"intro-ml-{'2' * 64}", "intro-ml", f"tf-basics-{'3' * 64}"]


@pytest.fixture
def ecr(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The course repository in moto's in-process ECR (its API as boto3 sees it; no network),
    with images published under PUBLISHED's tags."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        client = boto3.client("ecr", region_name="us-east-1")
        client.create_repository(repositoryName=COURSE_REPOSITORY)
        for tag in PUBLISHED:
            manifest = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": "sha256:" + hashlib.sha256(tag.encode()).hexdigest()},
            }
            client.put_image(
                repositoryName=COURSE_REPOSITORY, imageManifest=json.dumps(manifest), imageTag=tag
            )
        yield


@pytest.fixture
def automation(monkeypatch: pytest.MonkeyPatch, repo: Path, ecr: None) -> dict[str, Any]:
    recorded: dict[str, Any] = {"deployments": []}

    def select_stack(stack_name: str, **kwargs: Any) -> FakeStack:
        raise AssertionError("another stack selected: its outputs would be read with secrets")

    def create_or_select_stack(
        stack_name: str, project_name: str, program: Any, opts: Any
    ) -> FakeStack:
        recorded["create"] = {
            "stack": stack_name,
            "project": project_name,
            "opts": opts,
            "program": program,
        }
        recorded["stack"] = FakeStack(stack_name)
        recorded["stack"].fail = recorded.get("fail", False)
        return recorded["stack"]

    import infra.program

    original = infra.program.make_program

    def make_program(deployment: Deployment) -> Any:
        recorded["deployments"].append(deployment)
        return original(deployment)

    monkeypatch.setattr(auto, "select_stack", select_stack)
    monkeypatch.setattr(auto, "create_or_select_stack", create_or_select_stack)
    monkeypatch.setattr(infra.program, "make_program", make_program)
    return recorded


def test_up_runs_the_inline_program_for_the_stack(
    repo: Path,
    fake_pulumi_cli: Path,
    automation: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert deploy.main(["--stack", "dev"]) == 0
    create = automation["create"]
    assert create["stack"] == "dev" and create["project"] == PROJECT
    assert Path(create["opts"].work_dir) == repo / "infra"
    # Its own secrets provider; the other stacks' outputs read without decrypting their secrets.
    assert create["opts"].secrets_provider.startswith("awskms://alias/ol-course-platform-dev")
    calls = fake_pulumi_cli.read_text().splitlines()
    assert calls == ["stack output --json --stack stage", "stack output --json --stack prod"]
    stack = automation["stack"]
    assert stack.ran == ["up"]
    assert dict(stack.workspace.plugins) == {"aws": "v6.64.0", "kubernetes": "v4.18.4"}
    # dev manages the registry: it keeps what stage and prod run (stage not created yet).
    (deployment,) = automation["deployments"]
    assert deployment.stack.name == "dev"
    assert PROD_TAG in deployment.in_use.course_tags
    assert deployment.in_use.hub_tags == {"old"}
    assert deployment.hub_image == HUB_IMAGE
    # dev opens previews: every content tag published for a course (not the moving tag).
    assert {slug: sorted(tags) for slug, tags in deployment.preview_tags.items()} == {
        "intro-ml": [f"intro-ml-{'1' * 64}", f"intro-ml-{'2' * 64}"],
        "tf-basics": [f"tf-basics-{'3' * 64}"],
    }
    out = capsys.readouterr().out
    assert "stack stage does not exist yet" in out
    assert 'url: "https://x"' in out and "dbPassword: [secret]" in out
    assert MOCK_PASSWORD not in out


def test_preview_changes_nothing_and_other_stacks_read_no_outputs(
    repo: Path, fake_pulumi_cli: Path, automation: dict[str, Any]
) -> None:
    assert deploy.main(["--stack", "prod", "--preview"]) == 0
    assert automation["stack"].ran == ["preview"]
    assert not fake_pulumi_cli.exists()  # prod does not manage the registry: reads no stack
    assert automation["deployments"][0].preview_tags == {}  # and opens no previews
    assert automation["deployments"][0].in_use.course_tags == frozenset()


def test_a_failed_update_exits_non_zero(
    repo: Path,
    fake_pulumi_cli: None,
    automation: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    automation["fail"] = True
    assert deploy.main(["--stack", "stage"]) == 1
    assert "pulumi up of stack stage failed" in capsys.readouterr().err


def test_hub_image_flag_overrides_the_docker_info(
    repo: Path, fake_pulumi_cli: None, automation: dict[str, Any]
) -> None:
    other = HUB_IMAGE.rsplit(":", 1)[0] + ":" + "cd" * 32
    assert deploy.main(["--stack", "stage", "--hub-image", other]) == 0
    assert ImageRef.parse(automation["deployments"][0].hub_image).tag == "cd" * 32
