"""The stack files (`infra/Pulumi.<stack>.yaml`) and their validation."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.settings import DEFAULT_LIMITS, SettingsError, parse_custom
from infra.stack_config import (
    PROJECT,
    STACKS,
    StackConfig,
    StackConfigError,
    load_stack_config,
    parse_stack_config,
)


def _document(infra_dir: Path, stack: str) -> dict[str, Any]:
    return yaml.safe_load((infra_dir / f"Pulumi.{stack}.yaml").read_text())


def test_every_stack_has_a_valid_file(stacks: dict[str, StackConfig]) -> None:
    assert set(stacks) == {"dev", "stage", "prod"}
    for name, stack in stacks.items():
        assert stack.name == name
        assert stack.url == f"https://{stack.domain}"
    # One ingress host per stack.
    assert len({stack.domain for stack in stacks.values()}) == len(STACKS)


def test_the_project_file_names_the_project(infra_dir: Path) -> None:
    project = yaml.safe_load((infra_dir / "Pulumi.yaml").read_text())
    assert project["name"] == PROJECT
    assert project["runtime"]["name"] == "python"


def test_exactly_one_stack_manages_the_registry_and_keeps_the_others_images(
    stacks: dict[str, StackConfig],
) -> None:
    managers = [stack for stack in stacks.values() if stack.registry.manage]
    assert [stack.name for stack in managers] == ["dev"]
    assert set(managers[0].registry.protect_stacks) == set(STACKS) - {"dev"}


def test_prod_is_the_careful_one(stacks: dict[str, StackConfig]) -> None:
    prod = stacks["prod"]
    assert not prod.allow_preview_tags
    assert prod.database.deletion_protection and not prod.database.skip_final_snapshot
    assert prod.database.multi_az
    assert stacks["dev"].allow_preview_tags


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_hold_no_secret(infra_dir: Path, stack: str) -> None:
    text = (infra_dir / f"Pulumi.{stack}.yaml").read_text().lower()
    assert "secure:" not in text and "password" not in text


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_is_behind_the_sso_gate(stacks: dict[str, StackConfig], stack: str) -> None:
    """Every stack's hub is on the internet: each names its identity provider (https)."""
    sso = stacks[stack].sso
    assert sso.issuer.startswith("https://") and sso.client_id


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.pop(f"{PROJECT}:domain"), "domain: is required"),
        (lambda c: c.update({f"{PROJECT}:domian": "x.example.org"}), "domian: unknown key"),
        (lambda c: c.update({f"{PROJECT}:domain": "not a host"}), "domain"),
        (lambda c: c[f"{PROJECT}:culling"].update(every=0), f"{PROJECT}:culling.every"),
        (
            lambda c: c[f"{PROJECT}:culling"].update(idleTimeout="1h"),
            f"{PROJECT}:culling.idleTimeout: must be a whole number >= 1",
        ),
        (lambda c: c[f"{PROJECT}:culling"].update(timeout=60), "culling.timeout: unknown key"),
        (lambda c: c[f"{PROJECT}:gpu"]["taint"].update(effect="Never"), "gpu.taint.effect"),
        (lambda c: c[f"{PROJECT}:gpu"]["nodeLabel"].update(value=True), "gpu.nodeLabel.value"),
        (
            lambda c: c[f"{PROJECT}:registry"].update(protectStacks=["dev"]),
            "registry.protectStacks",
        ),
        (
            lambda c: c[f"{PROJECT}:database"].update(instanceClass="t3.micro"),
            "database.instanceClass",
        ),
        (lambda c: c.update({f"{PROJECT}:dbPassword": {"secure": "AAAB"}}), "generated"),
        (lambda c: c.pop(f"{PROJECT}:sso"), f"{PROJECT}:sso: is required"),
        (lambda c: c[f"{PROJECT}:sso"].pop("issuer"), f"{PROJECT}:sso.issuer: is required"),
        (
            lambda c: c[f"{PROJECT}:sso"].update(issuer="http://sso.example.org/realms/x"),
            "sso.issuer",
        ),
        # The hub's reader takes a provider on loopback (the local hub's); a stack never.
        (
            lambda c: c[f"{PROJECT}:sso"].update(issuer="http://127.0.0.1:5556"),
            f"{PROJECT}:sso.issuer: 'http://127.0.0.1:5556' is not an https:// issuer URL",
        ),
        (lambda c: c.update({f"{PROJECT}:sso": None}), f"{PROJECT}:sso: is required"),
        (lambda c: c.update({f"{PROJECT}:ssoClientSecret": "plain"}), "--secret ssoClientSecret"),
        (lambda c: c[f"{PROJECT}:limits"].update(activeServers=-1), "limits.activeServers"),
        (lambda c: c[f"{PROJECT}:limits"].update(perPerson=1), "limits.perPerson: unknown key"),
        (lambda c: c.update({"aws:region": "moon"}), "aws:region"),
        (
            lambda c: c.update({f"{PROJECT}:alertsSlackWebhookUrl": "https://hooks.invalid"}),
            "--secret alertsSlackWebhookUrl",
        ),
        (lambda c: c.pop(f"{PROJECT}:alerts"), f"{PROJECT}:alerts: is required"),
        (
            lambda c: c.update({f"{PROJECT}:scheduling": {"matchNodePurpose": "always"}}),
            "scheduling.matchNodePurpose: 'always'; use one of prefer, require",
        ),
        (
            lambda c: c[f"{PROJECT}:ingress"].update(sslPolicy="ELBSecurityPolicy-2016-08"),
            "ingress.sslPolicy",
        ),
        (
            lambda c: c[f"{PROJECT}:ingress"].update(certificateArn="arn:aws:iam::1:cert/x"),
            "ingress.certificateArn",
        ),
        (lambda c: c.update({f"{PROJECT}:proxy": {"memoryLimit": "lots"}}), "proxy.memoryLimit"),
        (
            lambda c: c.update({f"{PROJECT}:learnerMemoryRequest": "half"}),
            "learnerMemoryRequest: 'half'; use one of course, limit",
        ),
        (
            lambda c: c.update({f"{PROJECT}:monitoring": {"retention": "forever"}}),
            "monitoring.retention",
        ),
        (lambda c: c.update({"kubernetes:context": "x"}), "kubernetes:context: unknown key"),
    ],
)
def test_bad_settings_are_refused_with_the_file_and_key(
    infra_dir: Path, change: Any, message: str
) -> None:
    document = copy.deepcopy(_document(infra_dir, "dev"))
    change(document["config"])
    with pytest.raises(StackConfigError) as error:
        parse_stack_config("dev", document)
    assert "infra/Pulumi.dev.yaml" in str(error.value)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "stack, toleration",
    [
        pytest.param(
            "dev",
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            id="dev-taint-without-value-tolerated-with-exists",
        ),
        pytest.param(
            "stage",
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            id="stage-taint-without-value-tolerated-with-exists",
        ),
        pytest.param(
            "prod",
            {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
            id="prod-taint-with-value-tolerated-with-equal",
        ),
    ],
)
def test_gpu_taint_toleration(
    stacks: dict[str, StackConfig], stack: str, toleration: dict[str, str]
) -> None:
    assert stacks[stack].gpu.taint.toleration() == toleration


@pytest.mark.parametrize(
    ("section", "bad"),
    [
        ("sso", {"issuer": "http://sso.example.org/realms/x", "clientId": "hub"}),
        ("sso", {"issuer": "https://sso.example.org/realms/x"}),
        ("limits", {"gpuServers": -1}),
        ("limits", {"retryAfter": 0}),
        ("culling", {"every": 0}),
        ("culling", {"users": "yes"}),
    ],
)
def test_the_hub_sections_have_one_reader(infra_dir: Path, section: str, bad: Any) -> None:
    """A stack file's `sso`, `limits` and `culling` are the shape of the hub's `custom` sections,
    read by the hub's reader: the same value fails with the same message, here naming the stack
    file and the field."""
    document = copy.deepcopy(_document(infra_dir, "dev"))
    document["config"][f"{PROJECT}:{section}"] = bad
    with pytest.raises(StackConfigError) as in_stack:
        parse_stack_config("dev", document)
    with pytest.raises(SettingsError) as in_hub:
        parse_custom({"catalog": [], section: bad})
    expected = f"infra/Pulumi.dev.yaml: {PROJECT}:{in_hub.value.path}: {in_hub.value.message}"
    assert str(in_stack.value) == expected


def test_one_set_of_defaults(infra_dir: Path) -> None:
    """What a stack file leaves out of `limits` and `culling`, the hub's values would too."""
    document = copy.deepcopy(_document(infra_dir, "dev"))
    document["config"].pop(f"{PROJECT}:limits")
    document["config"][f"{PROJECT}:culling"] = {}
    stack = parse_stack_config("dev", document)
    hub = parse_custom({"catalog": [], "culling": {}})
    assert stack.limits == hub.limits == DEFAULT_LIMITS
    assert stack.culling == hub.culling


def test_unknown_stack_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StackConfigError, match="unknown stack"):
        parse_stack_config("qa", {"config": {}})
    with pytest.raises(StackConfigError, match="is missing"):
        load_stack_config(tmp_path, "dev")


def test_the_readme_table_says_what_each_stack_file_says(
    infra_dir: Path, stacks: dict[str, StackConfig]
) -> None:
    """infra/README.md's "what differs between the stacks" table, row by row."""
    lines = (infra_dir / "README.md").read_text().splitlines()
    header = lines.index(
        "| stack | domain | registry | database | culling: idle / max age | preview links "
        "| start timeout | identity provider | servers: all / GPU / per person |"
    )
    rows = {}
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    for name, stack in stacks.items():
        db = stack.database
        registry = (
            "manages ECR, keeps "
            + " and ".join(f"{s}'s" for s in stack.registry.protect_stacks)
            + " tags"
            if stack.registry.manage
            else "looks it up"
        )
        assert rows[name] == [
            stack.domain,
            registry,
            f"{db.instance_class}, {'multi-AZ' if db.multi_az else 'single-AZ'}",
            f"{stack.culling.idle_timeout} s / {stack.culling.max_age} s",
            "yes" if stack.allow_preview_tags else "no",
            f"{stack.start_timeout} s",
            stack.sso.issuer,
            f"{stack.limits.active_servers} / {stack.limits.gpu_servers} / "
            f"{stack.limits.servers_per_identity}",
        ], name


@pytest.mark.parametrize(
    "provider",
    [
        None,
        "passphrase",
        "awskms://alias/ol-course-platform-prod?region=us-east-1",  # another stack's key
        "awskms://alias/shared?region=us-east-1",
    ],
)
def test_each_stack_encrypts_with_a_key_of_its_own(infra_dir: Path, provider: str | None) -> None:
    """Issue 26, finding 6: one provider for all stacks let dev's role decrypt prod's secrets."""
    document = copy.deepcopy(_document(infra_dir, "dev"))
    document["secretsprovider"] = provider
    with pytest.raises(StackConfigError, match="secretsprovider: .*a KMS key of its own"):
        parse_stack_config("dev", document)


def test_the_stacks_keys_differ(stacks: dict[str, StackConfig]) -> None:
    providers = {stack.secrets_provider for stack in stacks.values()}
    assert len(providers) == len(STACKS)
    for name, stack in stacks.items():
        assert stack.secrets_provider.startswith(f"awskms://alias/{PROJECT}-{name}")
