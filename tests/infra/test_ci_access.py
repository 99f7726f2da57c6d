"""CI's identities in AWS (issue 26, finding 6): the roles `infra/ci_access.py` decides and the
bootstrap program (`infra/bootstrap.py`) that makes them, run with `pulumi.runtime.set_mocks`
(Pulumi's unit testing; no AWS account can be reached here). IAM itself cannot evaluate the
policies here either: the tests read them as IAM would, statement by statement.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalog import find_repo_root
from infra.bootstrap import (
    PROJECT,
    STACK,
    BootstrapError,
    define,
    load,
    parse_settings,
    variable_commands,
)
from infra.ci_access import PREVIEW_PROD, PUBLISH, CiRole, ci_roles, key_alias, subject
from infra.stack_config import PROJECT as STACKS_PROJECT
from infra.stack_config import STACKS, StackConfig
from tests.infra.support import run_declared


@pytest.fixture(scope="module")
def main_workflow() -> dict[str, Any]:
    path = find_repo_root() / ".github" / "workflows" / "main.yml"
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def bootstrap(infra_dir: Path) -> tuple[Any, dict[str, StackConfig]]:
    return load(infra_dir)


@pytest.fixture(scope="module")
def roles(bootstrap: tuple[Any, dict[str, StackConfig]]) -> dict[str, CiRole]:
    settings, stacks = bootstrap
    found = ci_roles(stacks, settings.account, settings.region, settings.state_bucket)
    return {role.environment: role for role in found}


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def _resources(statement: dict[str, Any]) -> list[str]:
    resource = statement["Resource"]
    return [resource] if isinstance(resource, str) else list(resource)


def allowed(role: CiRole, action: str, resource: str) -> list[dict[str, Any]]:
    """The statements that allow `action` on `resource` (their conditions aside)."""
    return [
        s
        for s in role.policy["Statement"]
        if s["Effect"] == "Allow"
        and any(fnmatch.fnmatchcase(action, a) for a in _actions(s))
        and any(fnmatch.fnmatchcase(resource, r) for r in _resources(s))
    ]


def test_each_github_environment_that_assumes_a_role_has_exactly_one(
    roles: dict[str, CiRole], main_workflow: dict[str, Any]
) -> None:
    """The bootstrap's environments are the workflow's: each job that assumes a role runs in
    an environment whose role trusts that environment alone."""
    assuming = set()
    for job in main_workflow["jobs"].values():
        if any(
            step.get("uses", "").startswith("aws-actions/configure-aws-credentials@")
            for step in job["steps"]
        ):
            environment = job["environment"]
            assuming.add(environment["name"] if isinstance(environment, dict) else environment)
    assert set(roles) == assuming == {PUBLISH, *STACKS, PREVIEW_PROD}


def test_no_statement_allows_everything_everywhere(roles: dict[str, CiRole]) -> None:
    for role in roles.values():
        for statement in role.policy["Statement"]:
            assert statement["Effect"] == "Allow"
            wide = [a for a in _actions(statement) if a == "*" or a.endswith(":*")]
            if wide:
                assert "Condition" in statement or _resources(statement) != ["*"], (
                    role.name,
                    statement,
                )


def test_each_deploy_role_uses_its_own_stacks_key_and_state(
    roles: dict[str, CiRole], bootstrap: tuple[Any, dict[str, StackConfig]]
) -> None:
    settings, stacks = bootstrap
    bucket = settings.state_bucket
    for name in STACKS:
        role = roles[name]
        (key,) = allowed(role, "kms:Decrypt", f"arn:aws:kms:us-east-1:{settings.account}:key/k")
        aliases = key["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"]
        assert aliases == key_alias(name) == f"alias/{STACKS_PROJECT}-{name}"
        # The stack file names that key as its secrets provider.
        assert stacks[name].secrets_provider.startswith(f"awskms://{key_alias(name)}")
        for other in STACKS:
            state = f"arn:aws:s3:::{bucket}/.pulumi/stacks/{STACKS_PROJECT}/{other}.json"
            writes = bool(allowed(role, "s3:PutObject", state))
            assert writes is (other == name), (name, other)
            reads = bool(allowed(role, "s3:GetObject", state))
            # the stack managing the registry reads the others' outputs (their tags)
            assert reads is (other == name or other in stacks[name].registry.protect_stacks)


def test_only_the_registry_stack_manages_repositories_and_publish_only_pushes(
    roles: dict[str, CiRole], bootstrap: tuple[Any, dict[str, StackConfig]]
) -> None:
    settings, stacks = bootstrap
    repository = f"arn:aws:ecr:us-east-1:{settings.account}:repository/ol-course-notebooks"
    for name in STACKS:
        manages = bool(allowed(roles[name], "ecr:PutLifecyclePolicy", repository))
        assert manages is stacks[name].registry.manage, name
    publish = roles[PUBLISH]
    assert allowed(publish, "ecr:PutImage", repository)
    assert not allowed(publish, "ecr:DeleteRepository", repository)
    assert not allowed(publish, "kms:Decrypt", f"arn:aws:kms:us-east-1:{settings.account}:key/k")
    assert not allowed(publish, "rds:DeleteDBInstance", "arn:aws:rds:us-east-1:1:db:x")
    assert publish.cluster is None


def test_the_preview_role_changes_nothing(roles: dict[str, CiRole]) -> None:
    preview = roles[PREVIEW_PROD]
    for statement in preview.policy["Statement"]:
        for action in _actions(statement):
            verb = action.split(":", 1)[1]
            assert verb.startswith(("Describe", "Get", "List", "Decrypt")), action
    assert preview.cluster_access_policy and "View" in preview.cluster_access_policy


def test_bootstrap_declares_the_provider_keys_and_environment_scoped_roles(
    bootstrap: tuple[Any, dict[str, StackConfig]],
) -> None:
    settings, stacks = bootstrap
    run = run_declared(lambda: define(settings, stacks), PROJECT, STACK)
    types = sorted(r.typ for r in run.resources)
    assert types == sorted(
        [
            "pulumi:providers:aws",
            "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
            *["aws:kms/key:Key", "aws:kms/alias:Alias"] * len(STACKS),
            *["aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"] * (len(STACKS) + 2),
            # deploy roles and prod's preview get their cluster
            *["aws:eks/accessEntry:AccessEntry"] * (len(STACKS) + 1),
            *["aws:eks/accessPolicyAssociation:AccessPolicyAssociation"] * (len(STACKS) + 1),
        ]
    )
    github = run.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider").inputs
    assert github["url"] == "https://token.actions.githubusercontent.com"
    assert github["clientIdLists"] == ["sts.amazonaws.com"]
    for key in run.of_type("aws:kms/key:Key"):
        assert key.inputs["enableKeyRotation"] is True
    assert sorted(a.inputs["name"] for a in run.of_type("aws:kms/alias:Alias")) == sorted(
        key_alias(name) for name in STACKS
    )
    subjects = {}
    for role in run.of_type("aws:iam/role:Role"):
        (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        conditions = statement["Condition"]["StringEquals"]
        assert conditions["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
        subjects[role.inputs["name"]] = conditions["token.actions.githubusercontent.com:sub"]
    assert subjects == {
        f"ol-course-ci-{PUBLISH}": subject(settings.repository, PUBLISH),
        **{f"ol-course-ci-deploy-{s}": subject(settings.repository, s) for s in STACKS},
        f"ol-course-ci-{PREVIEW_PROD}": subject(settings.repository, PREVIEW_PROD),
    }
    assert all(":environment:" in s and "*" not in s for s in subjects.values())
    clusters = {
        a.inputs["clusterName"]
        for a in run.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    }
    assert clusters == {stack.cluster_name for stack in stacks.values()}
    assert set(run.outputs["roleArns"]) == {PUBLISH, *STACKS, PREVIEW_PROD}


def test_the_commands_that_hand_each_environment_its_role() -> None:
    assert variable_commands({"publish": "arn:p", "dev": "arn:d"}) == [
        "gh variable set AWS_DEPLOY_ROLE_ARN --env dev --body arn:d",
        "gh variable set AWS_PUBLISH_ROLE_ARN --env publish --body arn:p",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"account": 123456789012}, "account"),
        ({"repository": "no-owner"}, "repository"),
        ({"stateBucket": "Bad_Bucket"}, "stateBucket"),
        ({"extra": "x"}, "unknown keys"),
    ],
)
def test_bad_bootstrap_settings_are_refused(
    infra_dir: Path, change: dict[str, Any], message: str
) -> None:
    document = yaml.safe_load((infra_dir / "bootstrap.yaml").read_text())
    document.update(change)
    with pytest.raises(BootstrapError, match=message):
        parse_settings(document)
