"""The real zero-to-jupyterhub 4.4.0 chart, rendered by helm with every stack's values.

`helm template` of the chart source (`../shared/reference/z2jh-4.4.0/chart/jupyterhub/`) with
the values infra deploys, plus the GPU pre-puller infra adds beside the release; every object is
validated against the Kubernetes 1.31 API schemas, then the objects themselves are checked:
which DaemonSet pulls which course image on which nodes, NetworkPolicies, the ingress, the hub
pod's annotations, the service token. No cluster can run here: the objects are what Helm would
send to the API server.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from catalog import Catalog, find_repo_root, load_catalog
from infra.images import ImageRef, course_images, hub_image
from infra.monitoring import HUB_PORT, NAMESPACE, PROMETHEUS_POD_LABELS
from infra.prepull import gpu_prepuller
from infra.stack_config import STACKS, PrePull, StackConfig
from infra.values import DB_PASSWORD_ANNOTATION, RELEASE_NAME, helm_values
from tests.infra.chart import Z2JH, chart, containers, named, of_kind, pod_specs, template, validate
from tests.infra.support import HUB_IMAGE, image_map_for

DB_HOST = "hub-db.c0ffee.us-east-1.rds.amazonaws.com"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    found = load_catalog(find_repo_root())
    # Both kinds of course, or the placement checks below would check nothing.
    assert any(c.gpu for c in found) and any(not c.gpu for c in found)
    return found


def render(
    stack: StackConfig, catalog: Catalog, tmp_path: Path, **values_args: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    images = course_images(catalog, image_map_for(catalog))
    values = helm_values(stack, catalog, images, hub_image(HUB_IMAGE), DB_HOST, **values_args)
    objects = template(chart(Z2JH), RELEASE_NAME, stack.namespace, values, tmp_path)
    puller = gpu_prepuller(stack, catalog, images)
    return values, objects + ([puller] if puller else [])


@pytest.fixture(params=STACKS)
def rendered(
    request: pytest.FixtureRequest,
    stacks: dict[str, StackConfig],
    catalog: Catalog,
    tmp_path: Path,
) -> tuple[StackConfig, list[dict[str, Any]]]:
    stack = stacks[request.param]
    return stack, render(stack, catalog, tmp_path)[1]


def test_every_object_is_valid_kubernetes(rendered: tuple[StackConfig, list[Any]]) -> None:
    _, objects = rendered
    assert len(objects) > 20
    validate(objects)


def _requires_label(pod: dict[str, Any], key: str, value: str) -> bool:
    """True if the pod can only run on nodes labelled key=value."""
    if pod.get("nodeSelector", {}).get(key) == value:
        return True
    required = (
        pod.get("affinity", {})
        .get("nodeAffinity", {})
        .get("requiredDuringSchedulingIgnoredDuringExecution", {})
    )
    terms = required.get("nodeSelectorTerms", [])
    return bool(terms) and all(
        any(
            e["key"] == key and e["operator"] == "In" and e["values"] == [value]
            for e in term.get("matchExpressions", [])
        )
        for term in terms
    )


def _tolerates(pod: dict[str, Any], taint: dict[str, str]) -> bool:
    for t in pod.get("tolerations", []):
        if t.get("operator") == "Exists" and not t.get("key"):
            return True
        if t.get("key") == taint["key"] and t.get("effect") in (None, taint["effect"]):
            if t.get("operator") == "Exists" or t.get("value") == taint.get("value"):
                return True
    return False


def pullers(
    stack: StackConfig, catalog: Catalog, objects: list[dict[str, Any]]
) -> dict[str, list[tuple[str, bool, bool]]]:
    """image map key -> (DaemonSet, may run on CPU nodes, may run on GPU nodes) of each that
    pulls that image."""
    images = {str(ref): key for key, ref in course_images(catalog, image_map_for(catalog)).items()}
    gpu = stack.gpu
    taint = {"key": gpu.taint.key, "value": gpu.taint.value or "", "effect": gpu.taint.effect}
    found: dict[str, list[tuple[str, bool, bool]]] = {key: [] for key in catalog.image_keys}
    for obj, pod in pod_specs(objects):
        if obj["kind"] != "DaemonSet":
            continue
        on_cpu = not _requires_label(pod, gpu.node_label_key, gpu.node_label_value)
        on_gpu = _tolerates(pod, taint)
        for container in containers(pod):
            if container["image"] in images:
                found[images[container["image"]]].append((obj["metadata"]["name"], on_cpu, on_gpu))
    return found


def is_cuda(catalog: Catalog, key: str) -> bool:
    """A GPU course's own image (the CUDA one), not its `<slug>--cpu` image."""
    course = catalog.course_of_image(key)
    return course is not None and course.gpu and key == course.slug


def test_gpu_images_are_pulled_on_gpu_nodes_only(
    rendered: tuple[StackConfig, list[Any]], catalog: Catalog
) -> None:
    """CUDA images on GPU nodes only; every image CPU servers run (a GPU course's CPU image too)
    on CPU nodes only."""
    stack, objects = rendered
    for key, where in pullers(stack, catalog, objects).items():
        assert where, f"{key}: no DaemonSet pre-pulls its image"
        for daemonset, on_cpu, on_gpu in where:
            if is_cuda(catalog, key):
                assert not on_cpu, f"CUDA image {key} is pulled by {daemonset} on CPU nodes"
                assert on_gpu, f"{daemonset} pulls CUDA image {key} but cannot run on GPU nodes"
            else:
                assert not on_gpu, f"CPU image {key} is pulled by {daemonset} on GPU nodes"
                assert on_cpu, f"{daemonset} pulls CPU image {key} but cannot run on CPU nodes"


def test_cpu_images_on_gpu_nodes_when_the_stack_says_so(
    stacks: dict[str, StackConfig], catalog: Catalog, tmp_path: Path
) -> None:
    stack = stacks["dev"]
    both = StackConfig(**{**stack.__dict__, "pre_pull": PrePull(cpu_images_on_gpu_nodes=True)})
    _, objects = render(both, catalog, tmp_path)
    for key, where in pullers(both, catalog, objects).items():
        if not is_cuda(catalog, key):
            assert {on_gpu for _, _, on_gpu in where} == {True}, (key, where)


def test_no_pre_pull_hook_holds_upgrades(rendered: tuple[StackConfig, list[Any]]) -> None:
    _, objects = rendered
    hooks = [
        f"{o['kind']} {o['metadata']['name']}"
        for o in objects
        if "helm.sh/hook" in (o["metadata"].get("annotations") or {})
    ]
    assert hooks == []
    assert "continuous-image-puller" in {
        o["metadata"]["name"] for o in of_kind(objects, "DaemonSet")
    }


def test_no_pod_runs_as_root(rendered: tuple[StackConfig, list[Any]]) -> None:
    """The chart's and our workloads: the pod or each container says runAsNonRoot, nothing asks
    for uid 0 or added capabilities (the chart's iptables init container did)."""
    _, objects = rendered
    for obj, pod in pod_specs(objects):
        pod_non_root = pod.get("securityContext", {}).get("runAsNonRoot") is True
        for container in containers(pod):
            security = container.get("securityContext", {})
            where = f"{obj['kind']} {obj['metadata']['name']}/{container['name']}"
            assert security.get("runAsUser") != 0, where
            assert pod_non_root or security.get("runAsNonRoot") is True, where
            assert not security.get("capabilities", {}).get("add"), where


def _admits(
    policy: dict[str, Any], namespace_labels: dict[str, str], pod_labels: dict[str, str], port: int
) -> bool:
    def subset(selector: dict[str, Any], labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())

    for rule in policy["spec"].get("ingress", []):
        ports = [p.get("port") for p in rule.get("ports", [])]
        if ports and port not in ports:
            continue
        for peer in rule.get("from", []):
            if "namespaceSelector" in peer and subset(peer["namespaceSelector"], namespace_labels):
                if subset(peer.get("podSelector", {}), pod_labels):
                    return True
    return False


def test_prometheus_may_scrape_the_hub_and_nobody_else_gets_in(
    rendered: tuple[StackConfig, list[Any]],
) -> None:
    _, objects = rendered
    policy = named(objects, "NetworkPolicy", "hub")
    monitoring = {"kubernetes.io/metadata.name": NAMESPACE}
    assert _admits(policy, monitoring, dict(PROMETHEUS_POD_LABELS), HUB_PORT)
    assert not _admits(policy, monitoring, {"app.kubernetes.io/name": "grafana"}, HUB_PORT)
    assert not _admits(
        policy, {"kubernetes.io/metadata.name": "other"}, dict(PROMETHEUS_POD_LABELS), HUB_PORT
    )


METADATA_SERVER = ipaddress.IPv4Address("169.254.169.254")


def _opens(block: dict[str, Any], address: ipaddress.IPv4Address) -> bool:
    """Whether an ipBlock peer takes in `address` (its CIDR does, none of its exceptions)."""
    if address not in ipaddress.ip_network(block["cidr"]):
        return False
    return not any(address in ipaddress.ip_network(e) for e in block.get("except", []))


@pytest.mark.parametrize("policy", ["singleuser", "hub", "proxy"])
def test_no_pod_reaches_the_cloud_metadata_server(
    rendered: tuple[StackConfig, list[Any]], policy: str
) -> None:
    """Learners, and (issue 26, finding 2) the hub and the proxy: the node role's credentials
    are at 169.254.169.254, which the chart's hub and proxy policies allow by default. Only DNS
    (port 53, where some clouds answer on that address) may go there."""
    _, objects = rendered
    egress = named(objects, "NetworkPolicy", policy)["spec"]["egress"]
    assert egress, f"{policy} has no egress rules"
    for rule in egress:
        peers = rule.get("to")
        assert peers, f"{policy}: a rule to everywhere {rule}"
        if any("ipBlock" in p and _opens(p["ipBlock"], METADATA_SERVER) for p in peers):
            ports = rule.get("ports")
            assert ports and {p["port"] for p in ports} == {53}, f"{policy}: {rule}"


def test_core_pods_have_resources_and_priority(rendered: tuple[StackConfig, list[Any]]) -> None:
    """Issue 26, finding 5: without requests the proxy is BestEffort, the first pod a node
    under pressure evicts (every session with it); pod priority puts the image pullers and
    placeholders below the hub, the proxy and learners."""
    stack, objects = rendered
    classes = {o["metadata"]["name"]: o for o in of_kind(objects, "PriorityClass")}
    for name in ("hub", "proxy"):
        spec = named(objects, "Deployment", name)["spec"]["template"]["spec"]
        assert spec["priorityClassName"] in classes, name
        for container in spec["containers"]:
            resources = container.get("resources", {})
            assert resources.get("requests", {}).get("cpu"), f"{name}/{container['name']}"
            assert resources.get("requests", {}).get("memory"), f"{name}/{container['name']}"
            assert resources.get("limits", {}).get("memory"), f"{name}/{container['name']}"
        affinity = spec["affinity"]["nodeAffinity"]
        required = "requiredDuringSchedulingIgnoredDuringExecution" in affinity
        assert required is (stack.scheduling.match_node_purpose == "require"), name
    (chp,) = named(objects, "Deployment", "proxy")["spec"]["template"]["spec"]["containers"]
    assert chp["resources"]["requests"]["memory"] == stack.proxy.memory_request


def test_the_alb_allows_tls_1_2_and_up_and_keeps_idle_websockets(
    rendered: tuple[StackConfig, list[Any]],
) -> None:
    stack, objects = rendered
    annotations = named(objects, "Ingress", "jupyterhub")["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/ssl-policy"].startswith(
        "ELBSecurityPolicy-TLS13-1-2"
    )
    assert annotations["alb.ingress.kubernetes.io/load-balancer-attributes"] == (
        f"idle_timeout.timeout_seconds={stack.ingress.idle_timeout_seconds}"
    )
    assert stack.ingress.idle_timeout_seconds >= 3600
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == stack.ingress.certificate_arn


def test_ingress_checks_health_on_a_page_that_answers_200(
    rendered: tuple[StackConfig, list[Any]],
) -> None:
    stack, objects = rendered
    ingress = named(objects, "Ingress", "jupyterhub")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == "/hub/health"
    assert ingress["spec"]["rules"][0]["host"] == stack.domain


def test_learners_servers_are_on_subdomains_of_their_own(
    rendered: tuple[StackConfig, list[Any]],
) -> None:
    """Issue 25, finding 5: a page a learner's server serves must not run on the hub's origin.
    The chart starts the proxy with host routing where `subdomain_host` is set, and the ingress
    (and its certificate, where the stack names one) takes `*.<domain>` as well as the hub's."""
    stack, objects = rendered
    proxy = named(objects, "Deployment", "proxy")["spec"]["template"]["spec"]
    (chp,) = (c for c in proxy["containers"] if c["name"] == "chp")
    assert "--host-routing" in chp["command"]
    ingress = named(objects, "Ingress", "jupyterhub")
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [
        stack.domain,
        f"*.{stack.domain}",
    ]
    for tls in ingress["spec"].get("tls", []):
        assert tls["hosts"] == [stack.domain, f"*.{stack.domain}"]


def test_a_new_database_password_restarts_the_hub(
    stacks: dict[str, StackConfig], catalog: Catalog, tmp_path: Path
) -> None:
    def hub_pod(version: str) -> dict[str, Any]:
        _, objects = render(stacks["prod"], catalog, tmp_path, db_password_version=version)
        return named(objects, "Deployment", "hub")["spec"]["template"]

    first, rotated = hub_pod("v-1"), hub_pod("v-2")
    assert first["metadata"]["annotations"][DB_PASSWORD_ANNOTATION] == "v-1"
    assert first != rotated  # a changed pod template is a rollout


def test_placeholder_image_refs_stay_out_of_real_renders(
    rendered: tuple[StackConfig, list[Any]],
) -> None:
    _, objects = rendered
    for _, pod in pod_specs(objects):
        for container in containers(pod):
            assert "<" not in container["image"], container["image"]
            ImageRef.parse(container["image"])


def test_pinned_images_reach_every_pod_by_digest(
    stacks: dict[str, StackConfig], catalog: Catalog, tmp_path: Path
) -> None:
    """Issue 26, finding 7: the deploy pins each image to the digest ECR gives for its tag; the
    chart then names the hub's, the pre-puller's and the default learner image by digest."""
    digest = "sha256:" + "c" * 64
    stack = stacks["prod"]
    images = {
        key: ref.pinned(digest)
        for key, ref in course_images(catalog, image_map_for(catalog)).items()
    }
    values = helm_values(stack, catalog, images, hub_image(HUB_IMAGE).pinned(digest), DB_HOST)
    objects = template(chart(Z2JH), RELEASE_NAME, stack.namespace, values, tmp_path)
    ours = [
        c["image"]
        for _, pod in pod_specs(objects)
        for c in containers(pod)
        if "ol-course-" in c["image"]
    ]
    assert ours and all(image.endswith(f"@{digest}") for image in ours), ours
    assert all(ref.endswith(f"@{digest}") for ref in values["custom"]["imageMap"].values())
    with pytest.raises(ValueError, match="not a sha256 digest"):
        hub_image(HUB_IMAGE).pinned("latest")
