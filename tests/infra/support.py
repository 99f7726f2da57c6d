"""Test support for the infra tests: fixture courses and image maps, Helm's value merge, and the
Pulumi program run against mocks (`pulumi.runtime.set_mocks`).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from catalog import Catalog
from infra.program import Deployment, define
from infra.stack_config import PROJECT

ACCOUNT = "123456789012"
REGION = "us-east-1"
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
HUB_IMAGE = f"{REGISTRY}/ol-course-hub:hub-{'ab' * 32}"
# What the mocked GetRandomPassword returns: must never show up in rendered files or logs.
MOCK_PASSWORD = "Xq7mockPasswordNeverToBeSeen9e2Lw"
#: The stack's `ssoClientSecret`, as `pulumi config set --secret` would have stored it.
MOCK_SSO_SECRET = "sso-client-secret-never-to-be-seen-4d1c"
#: The stack's `alertsSlackWebhookUrl`, likewise.
MOCK_WEBHOOK = "https://hooks.slack.invalid/services/never-to-be-seen-77a1"
#: The VPC CNI add-on's configuration on a cluster that enforces NetworkPolicies.
ENFORCING_ADDON = '{"enableNetworkPolicy": "true"}'
NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
SAMPLE_COURSES: dict[str, dict[str, Any]] = {
    "intro-ml": {"title": "Intro ML", "flavor": "pytorch"},
    "deep-learning-gpu": {"title": "Deep Learning", "flavor": "pytorch", "gpu": True},
    "tf-basics": {"title": "TensorFlow Basics", "flavor": "tensorflow", "memory_limit": "4Gi"},
}


def merge_like_helm(defaults: Any, overrides: Any) -> Any:
    """Helm's coalescing of user values onto the chart's: maps merge, everything else replaces."""
    if isinstance(defaults, dict) and isinstance(overrides, dict):
        merged = copy.deepcopy(defaults)
        for key, value in overrides.items():
            merged[key] = merge_like_helm(defaults.get(key), value) if key in defaults else value
        return merged
    return copy.deepcopy(overrides)


def write_course(
    root: Path,
    slug: str,
    title: str,
    flavor: str = "pytorch",
    gpu: bool = False,
    memory_limit: str | None = None,
) -> None:
    directory = root / "courses" / slug
    (directory / "lectures").mkdir(parents=True)
    lines = [f'title = "{title}"', f'flavor = "{flavor}"', 'notebooks = ["lectures/01.ipynb"]']
    if gpu:
        lines.append("gpu = true")
    if memory_limit:
        lines.append(f'[resources]\nmemory_limit = "{memory_limit}"')
    (directory / "course.toml").write_text("\n".join(lines) + "\n")
    (directory / "requirements.txt").write_text("")
    (directory / "lectures" / "01.ipynb").write_text(NOTEBOOK)


def image_map_for(catalog: Catalog, registry: str = REGISTRY) -> dict[str, str]:
    """An image map as `./pants package courses::` writes it: immutable content tags."""
    return {
        key: f"{registry}/ol-course-notebooks:{key}-{hashlib.sha256(key.encode()).hexdigest()}"
        for key in catalog.image_keys
    }


# --- The Pulumi program against mocks -------------------------------------------------------


@dataclass
class Recorded:
    typ: str
    name: str
    inputs: dict[str, Any]
    provider: str | None


@dataclass
class ProgramRun:
    resources: list[Recorded] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.typ == typ]

    def named(self, typ: str, name: str) -> Recorded:
        (found,) = (r for r in self.of_type(typ) if r.name == name)
        return found

    def one(self, typ: str) -> Recorded:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, got {[r.name for r in found]}"
        return found[0]


class RecordingMocks(pulumi.runtime.Mocks):
    """Stands in for the Pulumi engine and the AWS/Kubernetes providers: records what the program
    declares and answers the data sources (EKS cluster, ECR lookups, GetRandomPassword) the way
    the providers' schemas say they answer."""

    def __init__(
        self,
        run: ProgramRun,
        missing_tags: Iterable[str] = (),
        addon_configuration: str | None = ENFORCING_ADDON,
    ) -> None:
        self.run = run
        self.missing_tags = set(missing_tags)
        self.addon_configuration = addon_configuration

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        self.run.resources.append(Recorded(args.typ, args.name, dict(args.inputs), args.provider))
        state = dict(args.inputs)
        if args.typ == "aws:ecr/repository:Repository":
            state["repositoryUrl"] = f"{REGISTRY}/{args.inputs['name']}"
        elif args.typ == "aws:rds/instance:Instance":
            state["address"] = f"{args.name}.c0ffee.{REGION}.rds.amazonaws.com"
            # AWS completes `identifierPrefix` to the instance's identifier
            state["identifier"] = f"{args.inputs['identifierPrefix']}0123abcd"
        elif args.typ == "aws:secretsmanager/secret:Secret":
            # Secrets Manager ends every secret's ARN with a random suffix of its own
            state["arn"] = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{args.name}-Ab12Cd"
        elif args.typ == "aws:secretsmanager/secretVersion:SecretVersion":
            state["versionId"] = f"{args.name}-version-1"
        elif args.typ == "aws:rds/subnetGroup:SubnetGroup":
            state["name"] = f"{args.name}-group"
        state.setdefault("arn", f"arn:aws:mock::{ACCOUNT}:{args.typ.split(':')[1]}/{args.name}")
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        self.run.calls.append((args.token, dict(args.args)))
        if args.token == "aws:eks/getCluster:getCluster":
            return {
                "name": args.args["name"],
                "endpoint": "https://eks.invalid",
                "certificateAuthorities": [{"data": "Q0EgZGF0YQ=="}],
                "vpcConfig": {
                    "vpcId": "vpc-0123",
                    "clusterSecurityGroupId": "sg-cluster",
                    "subnetIds": ["subnet-a", "subnet-b"],
                },
            }, []
        if args.token == "aws:ecr/getRepository:getRepository":
            return {
                "name": args.args["name"],
                "repositoryUrl": f"{REGISTRY}/{args.args['name']}",
            }, []
        if args.token == "aws:ecr/getImage:getImage":
            tag = args.args["imageTag"]
            if tag in self.missing_tags:
                raise Exception(f"image with tag {tag} not found in repository")
            return {"imageDigest": "sha256:" + hashlib.sha256(tag.encode()).hexdigest()}, []
        if args.token == "aws:secretsmanager/getRandomPassword:getRandomPassword":
            return {"randomPassword": MOCK_PASSWORD}, []
        if args.token == "aws:eks/getAddon:getAddon":
            return {
                "addonName": args.args["addonName"],
                "clusterName": args.args["clusterName"],
                "configurationValues": self.addon_configuration or "",
            }, []
        raise AssertionError(f"unexpected call {args.token}")


def run_program(
    deployment: Deployment,
    missing_tags: Iterable[str] = (),
    addon_configuration: str | None = ENFORCING_ADDON,
) -> ProgramRun:
    """Runs `infra.program.define` for the deployment's stack with mocks; returns what it declared
    and its resolved outputs. `addon_configuration`: the cluster's VPC CNI configuration."""
    secrets = {
        f"{PROJECT}:ssoClientSecret": MOCK_SSO_SECRET,
        f"{PROJECT}:alertsSlackWebhookUrl": MOCK_WEBHOOK,
    }
    pulumi.runtime.set_all_config(secrets, list(secrets))
    return run_declared(
        lambda: define(deployment),
        PROJECT,
        deployment.stack.name,
        missing_tags=missing_tags,
        addon_configuration=addon_configuration,
    )


def run_declared(
    declare_outputs: Callable[[], dict[str, Any]],
    project: str,
    stack: str,
    missing_tags: Iterable[str] = (),
    addon_configuration: str | None = ENFORCING_ADDON,
) -> ProgramRun:
    """Runs a program's `define` with the mocks as the engine; what it declared and its outputs."""
    run = ProgramRun()
    pulumi.runtime.set_mocks(
        RecordingMocks(run, missing_tags, addon_configuration),
        project=project,
        stack=stack,
        preview=False,
    )

    @pulumi.runtime.test  # type: ignore[misc]  # the SDK's decorator is untyped
    def declare() -> pulumi.Output[Any]:
        outputs = declare_outputs()
        keys = sorted(outputs)
        return pulumi.Output.all(*(outputs[k] for k in keys)).apply(
            lambda values: run.outputs.update(zip(keys, values))
        )

    try:
        declare()
    except Exception:
        # The failed run leaves Outputs nobody awaits; keep asyncio from printing each at exit.
        asyncio.get_event_loop().set_exception_handler(_quiet_about_unretrieved)
        raise
    return run


def _quiet_about_unretrieved(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    if "never retrieved" not in context.get("message", ""):
        loop.default_exception_handler(context)
