"""`./pants run infra:bootstrap -- [--preview]`: what must exist before CI can deploy, made once
by an administrator with their own credentials (a Pulumi stack `ci` of the project
`ol-course-platform-bootstrap`, in the same backend, PULUMI_BACKEND_URL):

- GitHub's OIDC identity provider in the account;
- one KMS key per stack, with the alias its stack file's `secretsprovider` names (rotated
  yearly, protected from deletion);
- one IAM role per GitHub environment, each trusted by that environment's OIDC subject alone,
  with the policy `infra/ci_access.py` decides; the deploy and preview roles get their access
  to their stack's EKS cluster (access entries), so no aws-auth ConfigMap is edited by hand.

Its settings are `infra/bootstrap.yaml` (repository, account, region, state bucket); the stacks
and their clusters are the stack files'. It prints the role ARNs each environment's
`AWS_DEPLOY_ROLE_ARN` / `AWS_PUBLISH_ROLE_ARN` variable takes.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from catalog import find_repo_root
from infra.ci_access import (
    AUDIENCE,
    GITHUB_OIDC_THUMBPRINTS,
    GITHUB_OIDC_URL,
    PUBLISH,
    ci_roles,
    key_alias,
    trust_policy,
)
from infra.deploy import EXIT_NO_CLI, INSTALL_PULUMI, DeployError, preview_or_up
from infra.stack_config import STACKS, StackConfig, StackConfigError, load_stack_config

PROJECT = "ol-course-platform-bootstrap"
STACK = "ci"
SETTINGS_FILE = "bootstrap.yaml"


class BootstrapError(Exception):
    """A bad bootstrap setting, said in one message."""


@dataclass(frozen=True)
class BootstrapSettings:
    repository: str
    account: str
    region: str
    state_bucket: str


def parse_settings(document: object, source: str = f"infra/{SETTINGS_FILE}") -> BootstrapSettings:
    if not isinstance(document, Mapping):
        raise BootstrapError(f"{source}: must be a mapping")
    checks = {
        "repository": re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"),
        "account": re.compile(r"^\d{12}$"),
        "region": re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$"),
        "stateBucket": re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"),
    }
    unknown = set(document) - set(checks)
    if unknown:
        raise BootstrapError(f"{source}: unknown keys {sorted(unknown)}; allowed: {sorted(checks)}")
    for key, pattern in checks.items():
        value = document.get(key)
        if not isinstance(value, str) or not pattern.match(value):
            raise BootstrapError(f"{source}: {key}: {value!r} is not valid (quote the account)")
    return BootstrapSettings(
        repository=document["repository"],
        account=document["account"],
        region=document["region"],
        state_bucket=document["stateBucket"],
    )


def load(infra_dir: Path) -> tuple[BootstrapSettings, dict[str, StackConfig]]:
    path = infra_dir / SETTINGS_FILE
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise BootstrapError(f"cannot read {path}: {e}") from None
    stacks = {name: load_stack_config(infra_dir, name) for name in STACKS}
    return parse_settings(document), stacks


def _trust_json(provider_arn: str, repository: str, env: str) -> str:
    return json.dumps(trust_policy(provider_arn, repository, env))


def define(settings: BootstrapSettings, stacks: Mapping[str, StackConfig]) -> dict[str, Any]:
    """Declares the provider, the keys and the roles; returns the outputs."""
    import pulumi
    import pulumi_aws as aws

    provider = aws.Provider(
        "aws", region=settings.region, default_tags={"tags": {"project": PROJECT}}
    )
    opts = pulumi.ResourceOptions(provider=provider)
    protected = pulumi.ResourceOptions(provider=provider, protect=True)
    github = aws.iam.OpenIdConnectProvider(
        "github",
        url=GITHUB_OIDC_URL,
        client_id_lists=[AUDIENCE],
        thumbprint_lists=GITHUB_OIDC_THUMBPRINTS,
        opts=opts,
    )
    keys = {}
    for name in stacks:
        key = aws.kms.Key(
            f"pulumi-secrets-{name}",
            description=f"Pulumi secrets of stack {name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=protected,
        )
        aws.kms.Alias(
            f"pulumi-secrets-{name}", name=key_alias(name), target_key_id=key.key_id, opts=opts
        )
        keys[name] = key.arn

    roles: dict[str, pulumi.Output[str]] = {}
    for ci_role in ci_roles(stacks, settings.account, settings.region, settings.state_bucket):
        environment = ci_role.environment
        role = aws.iam.Role(
            ci_role.name,
            name=ci_role.name,
            assume_role_policy=github.arn.apply(
                functools.partial(_trust_json, repository=settings.repository, env=environment)
            ),
            max_session_duration=3600,
            opts=opts,
        )
        aws.iam.RolePolicy(ci_role.name, role=role.id, policy=json.dumps(ci_role.policy), opts=opts)
        if ci_role.cluster and ci_role.cluster_access_policy:
            entry = aws.eks.AccessEntry(
                ci_role.name, cluster_name=ci_role.cluster, principal_arn=role.arn, opts=opts
            )
            aws.eks.AccessPolicyAssociation(
                ci_role.name,
                cluster_name=ci_role.cluster,
                principal_arn=role.arn,
                policy_arn=ci_role.cluster_access_policy,
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=pulumi.ResourceOptions(provider=provider, depends_on=[entry]),
            )
        roles[environment] = role.arn
    return {"roleArns": roles, "keyArns": keys, "githubOidcProvider": github.arn}


def variable_commands(role_arns: Mapping[str, str]) -> list[str]:
    """The `gh variable set` commands that hand each environment its role."""
    return [
        f"gh variable set {'AWS_PUBLISH_ROLE_ARN' if env == PUBLISH else 'AWS_DEPLOY_ROLE_ARN'} "
        f"--env {env} --body {arn}"
        for env, arn in sorted(role_arns.items())
    ]


def _run(settings: BootstrapSettings, stacks: Mapping[str, StackConfig], preview: bool) -> int:
    from pulumi import automation as auto

    def program() -> None:
        import pulumi

        for key, value in define(settings, stacks).items():
            pulumi.export(key, value)

    stack = auto.create_or_select_stack(
        stack_name=STACK,
        project_name=PROJECT,
        program=program,
        opts=auto.LocalWorkspaceOptions(
            project_settings=auto.ProjectSettings(name=PROJECT, runtime="python")
        ),
    )
    try:
        result = preview_or_up(stack, PROJECT, preview, ["pulumi_aws"])
    except DeployError as e:
        print(e, file=sys.stderr)
        return 1
    if result is None:
        return 0
    print("\nEach environment's role (GitHub CLI, in the repository):")
    for command in variable_commands(result.outputs["roleArns"].value):
        print(f"  {command}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./pants run infra:bootstrap --",
        description="Make CI's identities: GitHub's OIDC provider, a KMS key per stack, a role "
        "per GitHub environment.",
    )
    parser.add_argument("--preview", action="store_true", help="show what would change")
    args = parser.parse_args(argv)
    try:
        settings, stacks = load(find_repo_root() / "infra")
    except (BootstrapError, StackConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if shutil.which("pulumi") is None:
        print(INSTALL_PULUMI, file=sys.stderr)
        return EXIT_NO_CLI
    return _run(settings, stacks, args.preview)


if __name__ == "__main__":
    sys.exit(main())
