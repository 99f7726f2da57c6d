"""The Pulumi program of every stack, run with `pulumi.runtime.set_mocks` (Pulumi's unit testing).

Stands in for `pulumi up` against AWS and EKS, which cannot run here: the mocks play the engine
and the providers, answering the data sources (EKS cluster, ECR lookups, Secrets Manager's
GetRandomPassword) in the shape of the pulumi-aws 6.64 schema. The tests check the resources each
stack declares and their key properties, which is what the engine would hand the providers.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from typing import Any

import pytest

from catalog import Catalog
from hub.launch import KeptWorkSettings
from infra import monitoring
from infra.images import ImageRef, course_images, hub_image
from infra.in_use import InUse, in_use_from_outputs
from infra.kept_work import NAME as RETENTION
from infra.kept_work import kept_work_objects
from infra.prepull import gpu_prepuller
from infra.program import Deployment, eks_kubeconfig
from infra.stack_config import STACKS, StackConfig
from infra.values import (
    CHART_REPOSITORY,
    CHART_VERSION,
    helm_values,
    migration_job,
    migration_job_name,
)
from tests.infra.support import (
    HUB_IMAGE,
    MOCK_PASSWORD,
    MOCK_SSO_SECRET,
    MOCK_WEBHOOK,
    REGISTRY,
    image_map_for,
    run_program,
)

SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker of a secret value on the wire


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and SECRET_SIG in value


def digest_of(ref: str) -> str:
    """What the mocks' ECR answers for a tag (tests/infra/support.py)."""
    return "sha256:" + hashlib.sha256(ImageRef.parse(ref).tag.encode()).hexdigest()


def pinned_images(catalog: Catalog) -> dict[str, ImageRef]:
    images = course_images(catalog, image_map_for(catalog))
    return {key: ref.pinned(digest_of(str(ref))) for key, ref in images.items()}


def pinned_hub() -> ImageRef:
    return hub_image(HUB_IMAGE).pinned(digest_of(HUB_IMAGE))


def deployment(stack: StackConfig, catalog: Catalog, **kwargs: Any) -> Deployment:
    return Deployment(stack, catalog, image_map_for(catalog), HUB_IMAGE, **kwargs)


@pytest.mark.parametrize("name", STACKS)
def test_resources_each_stack_declares(
    stacks: dict[str, StackConfig], sample_catalog: Catalog, name: str
) -> None:
    run = run_program(deployment(stacks[name], sample_catalog))
    types = sorted(r.typ for r in run.resources)
    registry = (
        ["aws:ecr/lifecyclePolicy:LifecyclePolicy"] * 2 + ["aws:ecr/repository:Repository"] * 2
        if stacks[name].registry.manage
        else []
    )
    assert types == sorted(
        [
            *registry,
            "aws:ec2/securityGroup:SecurityGroup",
            "aws:rds/instance:Instance",
            "aws:rds/snapshot:Snapshot",  # before the hub image's migration
            "aws:rds/subnetGroup:SubnetGroup",
            "aws:secretsmanager/secret:Secret",
            "aws:secretsmanager/secretVersion:SecretVersion",
            *["kubernetes:core/v1:Namespace"] * 2,  # the hub's and monitoring's
            # the database password, the SSO client secret, the alerts' webhook
            *["kubernetes:core/v1:Secret"] * 3,
            *["kubernetes:helm.sh/v3:Release"] * 3,  # the hub, Prometheus, the DCGM exporter
            # The GPU images' pre-puller (the catalog has a GPU course), the hub's ServiceMonitor,
            # the migration Job.
            *["kubernetes:yaml/v2:ConfigGroup"] * 3,
            "pulumi:providers:aws",
            "pulumi:providers:kubernetes",
        ]
    )
    # Every course image and the hub image are looked up in ECR before the release may change.
    looked_up = [
        args["imageTag"] for token, args in run.calls if token == "aws:ecr/getImage:getImage"
    ]
    expected = [ImageRef.parse(ref).tag for ref in image_map_for(sample_catalog).values()]
    assert sorted(looked_up) == sorted([*expected, ImageRef.parse(HUB_IMAGE).tag])


def test_registry_scans_on_push_and_keeps_tags_in_use(
    stacks: dict[str, StackConfig], sample_catalog: Catalog
) -> None:
    old_prod_tag = "intro-ml-" + "9" * 64
    old_prod_hub = "hub-" + "8" * 64
    run = run_program(
        deployment(
            stacks["dev"],
            sample_catalog,
            in_use=InUse(frozenset({old_prod_tag}), frozenset({old_prod_hub})),
        )
    )
    repos = {r.inputs["name"]: r.inputs for r in run.of_type("aws:ecr/repository:Repository")}
    assert set(repos) == {"ol-course-notebooks", "ol-course-hub"}
    for repo in repos.values():
        assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repo["forceDelete"] is False
    policies = {
        r.inputs["repository"]: json.loads(r.inputs["policy"])
        for r in run.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    }

    def kept(policy: dict[str, Any]) -> set[str]:
        return {
            rule["selection"]["tagPatternList"][0]
            for rule in policy["rules"]
            if rule["selection"]["tagStatus"] == "tagged"
        }

    deployed = {ImageRef.parse(ref).tag for ref in image_map_for(sample_catalog).values()}
    assert kept(policies["ol-course-notebooks"]) == deployed | {old_prod_tag}
    assert kept(policies["ol-course-hub"]) == {ImageRef.parse(HUB_IMAGE).tag, old_prod_hub}
    statuses = [rule["selection"]["tagStatus"] for rule in policies["ol-course-notebooks"]["rules"]]
    assert statuses[-2:] == ["untagged", "any"]


@pytest.mark.parametrize("name", STACKS)
def test_database_is_private_encrypted_and_its_password_secret(
    stacks: dict[str, StackConfig], sample_catalog: Catalog, name: str
) -> None:
    stack = stacks[name]
    run = run_program(deployment(stack, sample_catalog))
    db = run.one("aws:rds/instance:Instance").inputs
    assert db["engine"] == "postgres"
    assert db["engineVersion"] == stack.database.engine_version
    assert db["instanceClass"] == stack.database.instance_class
    assert db["publiclyAccessible"] is False
    assert db["storageEncrypted"] is True
    assert db["deletionProtection"] is stack.database.deletion_protection
    assert db["multiAz"] is stack.database.multi_az
    assert db["dbName"] == "jupyterhub" and db["username"] == "jupyterhub"
    assert is_secret(db["password"]) and db["password"]["value"] == MOCK_PASSWORD
    assert "manageMasterUserPassword" not in db
    if not stack.database.skip_final_snapshot:
        # Named after this database's password secret (its ARN's random suffix): a database
        # made again after a destroy gets a final snapshot name of its own.
        assert db["finalSnapshotIdentifier"] == f"ol-course-hub-{name}-final-ab12cd"
    assert db["applyImmediately"] is stack.database.apply_immediately

    group = run.one("aws:ec2/securityGroup:SecurityGroup").inputs
    assert group["vpcId"] == "vpc-0123"
    (rule,) = group["ingress"]
    assert (rule["fromPort"], rule["toPort"], rule["protocol"]) == (5432, 5432, "tcp")
    assert rule["securityGroups"] == ["sg-cluster"] and "cidrBlocks" not in rule
    assert db["vpcSecurityGroupIds"] == ["hub-db-id"]

    version = run.one("aws:secretsmanager/secretVersion:SecretVersion").inputs
    assert is_secret(version["secretString"])
    k8s_secret = run.named("kubernetes:core/v1:Secret", "hub-db").inputs
    assert k8s_secret["metadata"] == {"name": "hub-db", "namespace": stack.namespace}
    assert is_secret(k8s_secret["stringData"])
    assert k8s_secret["stringData"]["value"] == {"password": MOCK_PASSWORD}


@pytest.mark.parametrize("name", STACKS)
def test_the_sso_client_secret_reaches_the_hub_as_a_secret(
    stacks: dict[str, StackConfig], sample_catalog: Catalog, name: str
) -> None:
    stack = stacks[name]
    run = run_program(deployment(stack, sample_catalog))
    secret = run.named("kubernetes:core/v1:Secret", "hub-sso").inputs
    assert secret["metadata"] == {"name": "hub-sso", "namespace": stack.namespace}
    assert is_secret(secret["stringData"])
    assert secret["stringData"]["value"] == {"client-secret": MOCK_SSO_SECRET}
    values = run.named("kubernetes:helm.sh/v3:Release", "jupyterhub").inputs["values"]
    env = values["hub"]["extraEnv"]
    assert env["OAUTH_CLIENT_SECRET"] == {
        "valueFrom": {"secretKeyRef": {"name": "hub-sso", "key": "client-secret"}}
    }
    assert MOCK_SSO_SECRET not in json.dumps(values)


@pytest.mark.parametrize("name", STACKS)
def test_hub_release_is_the_pinned_chart_with_generated_values(
    stacks: dict[str, StackConfig], sample_catalog: Catalog, name: str
) -> None:
    stack = stacks[name]
    run = run_program(deployment(stack, sample_catalog))
    release = run.named("kubernetes:helm.sh/v3:Release", "jupyterhub")
    inputs = release.inputs
    assert inputs["chart"] == "jupyterhub" and inputs["version"] == CHART_VERSION
    assert inputs["repositoryOpts"] == {"repo": CHART_REPOSITORY}
    assert inputs["namespace"] == stack.namespace and inputs["name"] == "jupyterhub"
    assert inputs["atomic"] is True
    namespace = run.named("kubernetes:core/v1:Namespace", "hub")
    assert namespace.inputs["metadata"]["name"] == stack.namespace

    db_host = run.outputs["databaseEndpoint"]
    assert inputs["values"] == helm_values(
        stack,
        sample_catalog,
        pinned_images(sample_catalog),
        pinned_hub(),
        db_host,
        db_password_version="hub-db-password-version-1",
    )
    # Issue 26, finding 7: deployed by digest, the bytes ECR holds under each tag.
    values = inputs["values"]
    assert all("@sha256:" in ref for ref in values["custom"]["imageMap"].values())
    assert values["hub"]["image"]["tag"] == f"{hub_image(HUB_IMAGE).tag}@{digest_of(HUB_IMAGE)}"
    # The values are not secret (reviewable diffs) and carry no password.
    assert not is_secret(inputs["values"])
    assert MOCK_PASSWORD not in json.dumps(inputs["values"])
    # Kubernetes resources go to the stack's cluster, through its own provider.
    for resource in run.resources:
        if resource.typ.startswith("kubernetes:"):
            assert "pulumi:providers:kubernetes::eks" in (resource.provider or ""), resource.name
    kubeconfig = json.loads(run.one("pulumi:providers:kubernetes").inputs["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://eks.invalid"
    assert set(kubeconfig["users"][0]["user"]) == {"exec"}  # no token, no key: the AWS CLI asks


def test_outputs_name_the_deployed_images_the_registry_stack_keeps(
    stacks: dict[str, StackConfig], sample_catalog: Catalog
) -> None:
    run = run_program(deployment(stacks["prod"], sample_catalog))
    assert run.outputs["courseImages"] == image_map_for(sample_catalog)
    assert run.outputs["hubImage"] == HUB_IMAGE
    assert run.outputs["url"] == "https://" + stacks["prod"].domain
    assert MOCK_PASSWORD not in json.dumps(run.outputs)
    found = in_use_from_outputs(run.outputs)
    assert found.course_tags == {
        ImageRef.parse(r).tag for r in image_map_for(sample_catalog).values()
    }
    assert found.hub_tags == {ImageRef.parse(HUB_IMAGE).tag}
    assert in_use_from_outputs({}) == InUse()


def test_unpublished_image_fails_the_deploy(
    stacks: dict[str, StackConfig], sample_catalog: Catalog
) -> None:
    missing = ImageRef.parse(image_map_for(sample_catalog)["tf-basics"]).tag
    with pytest.raises(Exception, match="not found"):
        run_program(deployment(stacks["stage"], sample_catalog), missing_tags=[missing])


def test_images_from_another_registry_fail_the_deploy(
    stacks: dict[str, StackConfig], sample_catalog: Catalog
) -> None:
    local = Deployment(
        stacks["dev"], sample_catalog, image_map_for(sample_catalog, "127.0.0.1:5000"), HUB_IMAGE
    )
    with pytest.raises(Exception, match="images not in " + REGISTRY):
        run_program(local)


def test_secrets_never_reach_the_logs(
    stacks: dict[str, StackConfig],
    sample_catalog: Catalog,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in STACKS:
        run_program(deployment(stacks[name], sample_catalog))
    captured = capsys.readouterr()
    assert MOCK_PASSWORD not in caplog.text + captured.out + captured.err
    assert MOCK_SSO_SECRET not in caplog.text + captured.out + captured.err
    assert MOCK_WEBHOOK not in caplog.text + captured.out + captured.err


def test_kubeconfig_gets_tokens_from_the_aws_cli() -> None:
    config = json.loads(eks_kubeconfig("c", "https://x", "Q0E=", "us-east-1"))
    user = config["users"][0]["user"]["exec"]
    assert user["command"] == "aws" and user["args"][:2] == ["eks", "get-token"]
    assert config["current-context"] == "c"


@pytest.mark.parametrize("name", STACKS)
def test_monitoring_and_the_gpu_pre_puller_are_deployed_with_the_hub(
    stacks: dict[str, StackConfig], sample_catalog: Catalog, name: str
) -> None:
    stack = stacks[name]
    run = run_program(deployment(stack, sample_catalog))
    for release, chart, values in (
        ("monitoring", monitoring.PROMETHEUS_CHART, monitoring.prometheus_values(stack)),
        ("dcgm-exporter", monitoring.DCGM_CHART, monitoring.dcgm_values(stack)),
    ):
        inputs = run.named("kubernetes:helm.sh/v3:Release", release).inputs
        assert (inputs["chart"], inputs["version"]) == (chart["name"], chart["version"])
        assert inputs["repositoryOpts"] == {"repo": chart["repository"]}
        assert inputs["namespace"] == monitoring.NAMESPACE and inputs["values"] == values
    groups = {r.name: r.inputs["objs"] for r in run.of_type("kubernetes:yaml/v2:ConfigGroup")}
    job = migration_job_name(hub_image(HUB_IMAGE))
    assert groups == {
        "gpu-image-puller": [gpu_prepuller(stack, sample_catalog, pinned_images(sample_catalog))],
        "jupyterhub-hub": [monitoring.hub_service_monitor(stack)],
        job: [migration_job(stack, pinned_hub(), run.outputs["databaseEndpoint"])],
    }


def test_a_stack_that_keeps_work_has_its_retention_job_by_digest(
    stacks: dict[str, StackConfig], sample_catalog: Catalog
) -> None:
    stack = replace(stacks["prod"], keep_work=KeptWorkSettings(days=30, storage_class="efs-sc"))
    run = run_program(deployment(stack, sample_catalog))
    (group,) = (r for r in run.of_type("kubernetes:yaml/v2:ConfigGroup") if r.name == RETENTION)
    assert group.inputs["objs"] == kept_work_objects(stack, pinned_hub())
    assert [o["kind"] for o in group.inputs["objs"]] == [
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "CronJob",
    ]


@pytest.mark.parametrize("name", STACKS)
def test_alerts_reach_the_stacks_receiver_through_a_secret(
    stacks: dict[str, StackConfig], sample_catalog: Catalog, name: str
) -> None:
    stack = stacks[name]
    run = run_program(deployment(stack, sample_catalog))
    secret = run.named("kubernetes:core/v1:Secret", monitoring.ALERT_RECEIVERS_SECRET).inputs
    assert secret["metadata"]["name"] == monitoring.ALERT_RECEIVERS_SECRET
    assert is_secret(secret["stringData"])
    assert secret["stringData"]["value"] == {monitoring.SLACK_WEBHOOK_KEY: MOCK_WEBHOOK}
    values = run.named("kubernetes:helm.sh/v3:Release", "monitoring").inputs["values"]
    assert values["alertmanager"]["alertmanagerSpec"]["secrets"] == [
        monitoring.ALERT_RECEIVERS_SECRET
    ]
    assert MOCK_WEBHOOK not in json.dumps(values)


@pytest.mark.parametrize("name", STACKS)
def test_each_hub_image_migrates_once_after_a_snapshot(
    stacks: dict[str, StackConfig], sample_catalog: Catalog, name: str
) -> None:
    """The Job and the snapshot are named after the hub image: the same image deploys again
    without either; a new one takes a snapshot, then migrates (the release never does)."""
    stack = stacks[name]
    run = run_program(deployment(stack, sample_catalog))
    job = migration_job_name(hub_image(HUB_IMAGE))
    snapshot = run.named("aws:rds/snapshot:Snapshot", job).inputs
    assert snapshot["dbInstanceIdentifier"] == f"ol-course-hub-{name}-0123abcd"
    assert snapshot["dbSnapshotIdentifier"] == f"ol-course-hub-{name}-{job}"
    values = run.named("kubernetes:helm.sh/v3:Release", "jupyterhub").inputs["values"]
    assert values["hub"]["db"]["upgrade"] is False
    newer = hub_image(HUB_IMAGE).tag.replace("hub-", "hub-f", 1)[:-1]
    assert migration_job_name(ImageRef(hub_image(HUB_IMAGE).name, newer)) != job


@pytest.mark.parametrize("addon", [None, "", "{}", '{"enableNetworkPolicy": "false"}', "not json"])
def test_a_cluster_that_ignores_network_policies_is_refused(
    stacks: dict[str, StackConfig], sample_catalog: Catalog, addon: str | None
) -> None:
    with pytest.raises(Exception, match="does not enforce NetworkPolicies.*update-addon"):
        run_program(deployment(stacks["prod"], sample_catalog), addon_configuration=addon)
