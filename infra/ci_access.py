"""Who CI is in AWS: one IAM role per GitHub environment, trusted by that environment alone.
Pure: data in, IAM policy documents out; `infra/bootstrap.py` makes the resources.

GitHub's OIDC token names the job's environment in its subject
(`repo:<owner>/<repo>:environment:<name>`), so each role trusts exactly one environment of one
repository, never a branch (any job on main could claim a branch subject). The environments are
the workflow's (.github/workflows/main.yml; tests/infra/test_ci_access.py keeps them in step):

- `publish`: pushes images to the two ECR repositories, nothing else;
- `dev`, `stage`, `prod`: deploys its stack: the resources tagged with its stack, its own KMS key
  (its Pulumi secrets), its own Pulumi state, and cluster admin on its own EKS cluster; the stack
  that manages the registry manages the repositories too, and reads the other stacks' state (their
  outputs name the tags it keeps; their secrets stay encrypted with keys it cannot use);
- `prod-preview`: reads what prod's preview reads (prod's state and key, the cluster's objects,
  secrets included: Helm keeps releases in Secrets), changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.images import COURSE_REPOSITORY, HUB_REPOSITORY
from infra.stack_config import PROJECT, StackConfig

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
AUDIENCE = "sts.amazonaws.com"
#: The certificate thumbprints GitHub publishes for its OIDC host. pulumi-aws 6 requires the
#: field; IAM itself now validates GitHub's tokens against its own trusted CAs.
GITHUB_OIDC_THUMBPRINTS = [
    "6938fd4d98bab03faadb97b34396831e3780aea1",
    "1c58a3a8518e8759bf075b76b750d4f2df264fcd",
]
PUBLISH = "publish"
PREVIEW_PROD = "prod-preview"
ROLE_PREFIX = "ol-course-ci-"
#: EKS access policies (cluster-wide): the release makes cluster-scoped objects (priority
#: classes, the user scheduler's roles, the monitoring CRDs).
CLUSTER_ADMIN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
ADMIN_VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminViewPolicy"


@dataclass(frozen=True)
class CiRole:
    """An IAM role for one GitHub environment, and its access to one EKS cluster (if any)."""

    environment: str
    name: str
    policy: dict[str, Any]
    cluster: str | None = None
    cluster_access_policy: str | None = None


def key_alias(stack: str) -> str:
    """The alias of a stack's KMS key (its Pulumi secrets provider: infra/stack_config.py)."""
    return f"alias/{PROJECT}-{stack}"


def subject(repository: str, environment: str) -> str:
    return f"repo:{repository}:environment:{environment}"


def trust_policy(provider_arn: str, repository: str, environment: str) -> dict[str, Any]:
    """Only GitHub's OIDC tokens for this repository's `environment` may assume the role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB_OIDC_HOST}:aud": AUDIENCE,
                        f"{GITHUB_OIDC_HOST}:sub": subject(repository, environment),
                    }
                },
            }
        ],
    }


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _repositories(account: str, region: str) -> list[str]:
    return [
        f"arn:aws:ecr:{region}:{account}:repository/{name}"
        for name in (COURSE_REPOSITORY, HUB_REPOSITORY)
    ]


def publish_policy(account: str, region: str) -> dict[str, Any]:
    return _document(
        {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:CompleteLayerUpload",
                "ecr:DescribeImages",
                "ecr:GetDownloadUrlForLayer",
                "ecr:InitiateLayerUpload",
                "ecr:PutImage",
                "ecr:UploadLayerPart",
            ],
            "Resource": _repositories(account, region),
        },
    )


def _state(bucket: str, stacks: list[str], write: bool) -> list[dict[str, Any]]:
    """The Pulumi state of `stacks` in the S3 backend (Pulumi's layout under `.pulumi/`)."""
    objects = [
        f"arn:aws:s3:::{bucket}/.pulumi/{kind}/{PROJECT}/{stack}{suffix}"
        for stack in stacks
        for kind, suffix in (("stacks", ".json*"), ("history", "/*"), ("locks", "/*"))
    ] + [f"arn:aws:s3:::{bucket}/.pulumi/meta.yaml"]
    actions = ["s3:GetObject"] + (["s3:PutObject", "s3:DeleteObject"] if write else [])
    return [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
        {"Effect": "Allow", "Action": actions, "Resource": objects},
    ]


def _key(stack: StackConfig, account: str, write: bool) -> dict[str, Any]:
    """The stack's own KMS key, known by its alias (the key's ARN is made with it)."""
    actions = ["kms:Decrypt", "kms:DescribeKey"] + (
        ["kms:Encrypt", "kms:GenerateDataKey"] if write else []
    )
    return {
        "Effect": "Allow",
        "Action": actions,
        "Resource": f"arn:aws:kms:{stack.region}:{account}:key/*",
        "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": key_alias(stack.name)}},
    }


_READ = [
    "ec2:Describe*",
    "eks:DescribeAddon",
    "eks:DescribeCluster",
    "ecr:DescribeImages",
    "ecr:DescribeRepositories",
    "ecr:GetLifecyclePolicy",
    "ecr:ListImages",
    "ecr:ListTagsForResource",
    "rds:Describe*",
    "rds:ListTagsForResource",
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetResourcePolicy",
]


def deploy_policy(stack: StackConfig, account: str, state_bucket: str) -> dict[str, Any]:
    """What `pulumi up` of `stack` needs: its tagged resources, its key, its state."""
    tagged = {"StringEquals": {"aws:ResourceTag/stack": stack.name}}
    creating = {"StringEquals": {"aws:RequestTag/stack": stack.name}}
    mutations = [
        "ec2:*SecurityGroup*",
        "rds:*",
        "secretsmanager:*",
    ]
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": _READ, "Resource": "*"},
        {"Effect": "Allow", "Action": "secretsmanager:GetRandomPassword", "Resource": "*"},
        {"Effect": "Allow", "Action": mutations, "Resource": "*", "Condition": tagged},
        {
            "Effect": "Allow",
            "Action": ["ec2:CreateSecurityGroup", "ec2:CreateTags", "rds:Create*", "rds:AddTags*"]
            + ["secretsmanager:CreateSecret", "secretsmanager:TagResource"],
            "Resource": "*",
            "Condition": creating,
        },
        _key(stack, account, write=True),
    ]
    readable = [stack.name]
    if stack.registry.manage:
        statements.append(
            {"Effect": "Allow", "Action": "ecr:*", "Resource": _repositories(account, stack.region)}
        )
        readable += list(stack.registry.protect_stacks)
    statements += _state(state_bucket, [stack.name], write=True)
    if len(readable) > 1:  # the other stacks' outputs, their secrets still encrypted
        statements += _state(state_bucket, readable[1:], write=False)
    return _document(*statements)


def preview_policy(stack: StackConfig, account: str, state_bucket: str) -> dict[str, Any]:
    """What `pulumi preview` of `stack` reads; it changes nothing."""
    return _document(
        {"Effect": "Allow", "Action": _READ, "Resource": "*"},
        {"Effect": "Allow", "Action": "secretsmanager:GetRandomPassword", "Resource": "*"},
        _key(stack, account, write=False),
        *_state(state_bucket, [stack.name], write=False),
    )


def ci_roles(
    stacks: Mapping[str, StackConfig], account: str, region: str, state_bucket: str
) -> list[CiRole]:
    """Every environment's role: publish, one deploy role per stack, prod's preview."""
    roles = [CiRole(PUBLISH, f"{ROLE_PREFIX}{PUBLISH}", publish_policy(account, region))]
    for name, stack in stacks.items():
        roles.append(
            CiRole(
                name,
                f"{ROLE_PREFIX}deploy-{name}",
                deploy_policy(stack, account, state_bucket),
                cluster=stack.cluster_name,
                cluster_access_policy=CLUSTER_ADMIN,
            )
        )
    prod = stacks["prod"]
    roles.append(
        CiRole(
            PREVIEW_PROD,
            f"{ROLE_PREFIX}{PREVIEW_PROD}",
            preview_policy(prod, account, state_bucket),
            cluster=prod.cluster_name,
            cluster_access_policy=ADMIN_VIEW,
        )
    )
    return roles
