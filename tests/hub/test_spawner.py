"""The spawners: launch links -> KubeSpawner pods and DockerSpawner containers.

No Kubernetes cluster can run here, so the Kubernetes side is tested against its published
contracts instead: KubeSpawner's real `get_pod_manifest()` (what it would send to the API
server) and the Kubernetes 1.31 API schema (`kubernetes-validate`, strict: unknown fields fail).
A kubeconfig naming an unreachable server satisfies KubeSpawner's client set-up; nothing is
ever sent to it.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from unittest.mock import Mock

import kubernetes_validate
import pytest
from jupyterhub.objects import Hub
from traitlets.config import Config

from catalog import Catalog, load_catalog
from hub.launch import LaunchSettings, query_arguments
from hub.settings import CullSettings, HubSettings
from hub.spawner import (
    COURSE_LABEL,
    CourseDockerSpawner,
    CourseKubeSpawner,
    CourseSpawner,
    LaunchRefused,
    gpu_node_affinity,
)
from tests.hub.hub_data import CATALOG, GPU, IMAGE_MAP, LOCAL, PRODUCTION, GiB
from tests.hub.kube import MockUser, manifests, use_unreachable_kubeconfig

KUBERNETES_VERSION = "1.31"
GPU_KEY = "nvidia.com/gpu"
# What zero-to-jupyterhub configures on every user pod (scheduling.userPods), as a baseline
# that must survive every plan.
Z2JH_TOLERATION = {
    "key": "hub.jupyter.org/dedicated",
    "operator": "Equal",
    "value": "user",
    "effect": "NoSchedule",
}
Z2JH_PREFERRED = {
    "weight": 100,
    "preference": {
        "matchExpressions": [
            {"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}
        ]
    },
}


@pytest.fixture(autouse=True)
def kubeconfig(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    use_unreachable_kubeconfig(tmp_path_factory, monkeypatch)


def hub_settings(
    launch: LaunchSettings = PRODUCTION, catalog: Catalog = CATALOG, image_map: Any = None
) -> HubSettings:
    return HubSettings(
        catalog, image_map or IMAGE_MAP, launch, CullSettings(kernel_idle_timeout=600)
    )


def kube_config(settings: HubSettings, **kube: Any) -> Config:
    c = Config()
    c.CourseSpawner.hub_settings = settings
    # As zero-to-jupyterhub 4.x sets them.
    c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
    c.KubeSpawner.tolerations = [Z2JH_TOLERATION]
    c.KubeSpawner.node_affinity_preferred = [Z2JH_PREFERRED]
    c.KubeSpawner.extra_labels = {"hub.jupyter.org/network-access-hub": "true"}
    c.KubeSpawner.uid = 1000
    c.KubeSpawner.fs_gid = 100
    for name, value in kube.items():
        setattr(c.KubeSpawner, name, value)
    return c


def manifest(
    options: dict[str, Any], launch: LaunchSettings = PRODUCTION, **kube: Any
) -> dict[str, Any]:
    (pod,) = manifests(kube_config(hub_settings(launch), **kube), options)
    return pod


def validate(pod: dict[str, Any]) -> None:
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def notebook_container(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = (c for c in pod["spec"]["containers"] if c["name"] == "notebook")
    return container


def env(pod: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value") for item in notebook_container(pod)["env"]}


def gpu_parts(pod: dict[str, Any]) -> tuple[Any, Any, Any]:
    spec = pod["spec"]
    limits = notebook_container(pod)["resources"]["limits"]
    required = (
        spec.get("affinity", {})
        .get("nodeAffinity", {})
        .get("requiredDuringSchedulingIgnoredDuringExecution")
    )
    gpu_tolerations = [t for t in spec.get("tolerations", []) if t.get("key") == GPU_KEY]
    return limits.get(GPU_KEY), required, gpu_tolerations


# --- KubeSpawner ------------------------------------------------------------------------------


def test_cpu_course_pod() -> None:
    notebook = "lectures/01-dataframes/dataframes.ipynb"
    pod = manifest({"course": "data-analytics", "notebook": notebook})
    validate(pod)
    container = notebook_container(pod)
    assert container["image"] == IMAGE_MAP["data-analytics"]
    assert container["resources"] == {
        "limits": {"cpu": 2.0, "memory": 1 * GiB},
        "requests": {"cpu": 0.5, "memory": GiB // 2},
    }
    assert pod["metadata"]["labels"][COURSE_LABEL] == "data-analytics"
    assert env(pod)["JUPYTERHUB_DEFAULT_URL"] == f"/lab/tree/{notebook}"
    assert env(pod)["OL_COURSE"] == "data-analytics"
    assert gpu_parts(pod) == (None, None, [])
    # The platform's own scheduling settings stay as configured.
    assert pod["spec"]["tolerations"] == [Z2JH_TOLERATION]
    assert pod["spec"]["affinity"]["nodeAffinity"] == {
        "preferredDuringSchedulingIgnoredDuringExecution": [Z2JH_PREFERRED]
    }
    # Idle kernels are culled by the server itself, even with a browser tab connected.
    assert container["args"][0] == "jupyterhub-singleuser"
    assert "--MappingKernelManager.cull_idle_timeout=600" in container["args"]
    assert "--MappingKernelManager.cull_connected=True" in container["args"]


def test_gpu_course_pod() -> None:
    pod = manifest({"course": "deep-learning-gpu"})
    validate(pod)
    limit, required, tolerations = gpu_parts(pod)
    assert limit == "1"
    assert required == {
        "nodeSelectorTerms": [
            {
                "matchExpressions": [
                    {
                        "key": "k8s.amazonaws.com/accelerator",
                        "operator": "In",
                        "values": ["nvidia-tesla-t4"],
                    }
                ]
            }
        ]
    }
    assert tolerations == [{"key": GPU_KEY, "operator": "Exists", "effect": "NoSchedule"}]
    assert Z2JH_TOLERATION in pod["spec"]["tolerations"]
    assert notebook_container(pod)["resources"]["limits"]["memory"] == 4 * GiB


@pytest.mark.parametrize(
    "options",
    [
        {"course": "deep-learning-gpu", "needs_gpu": "false"},
        {"course": "data-analytics", "needs_gpu": "true"},
    ],
    ids=["gpu-course-opts-out", "cpu-course-asks"],
)
def test_gpu_only_where_course_and_link_agree(options: dict[str, str]) -> None:
    pod = manifest(options)
    validate(pod)
    assert gpu_parts(pod) == (None, None, [])


def test_no_gpus_in_deployment() -> None:
    pod = manifest({"course": "deep-learning-gpu"}, launch=LOCAL)
    validate(pod)
    assert gpu_parts(pod) == (None, None, [])


@pytest.mark.parametrize("course", [c for c in CATALOG.slugs if c in IMAGE_MAP])
def test_per_course_memory_and_cpu(course: str) -> None:
    pod = manifest({"course": course})
    validate(pod)
    resources = CATALOG[course].resources
    container = notebook_container(pod)
    assert container["resources"]["limits"]["memory"] == resources.memory_limit
    assert container["resources"]["requests"]["memory"] == resources.memory_guarantee
    assert container["resources"]["limits"]["cpu"] == resources.cpu_limit
    assert container["image"] == IMAGE_MAP[course]


def test_nothing_carries_over_between_spawns() -> None:
    """The same spawner object (one user) launching a GPU course, then a CPU course."""
    gpu, cpu, gpu_again = manifests(
        kube_config(hub_settings()),
        {"course": "deep-learning-gpu", "notebook": "lectures/lecture1/tensors.ipynb"},
        {"course": "data-analytics"},
        {"course": "deep-learning-gpu"},
    )
    for pod in (gpu, cpu, gpu_again):
        validate(pod)
    assert gpu_parts(gpu)[0] == "1" and gpu_parts(gpu_again)[0] == "1"
    assert gpu_parts(cpu) == (None, None, [])
    assert cpu["spec"]["tolerations"] == [Z2JH_TOLERATION]
    assert notebook_container(cpu)["image"] == IMAGE_MAP["data-analytics"]
    assert env(cpu)["JUPYTERHUB_DEFAULT_URL"] == "/lab"
    assert len(gpu_again["spec"]["tolerations"]) == len(gpu["spec"]["tolerations"]) == 2


def test_gpu_affinity_joins_configured_required_terms() -> None:
    zone = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}
    pod = manifest({"course": "deep-learning-gpu"}, node_affinity_required=[zone])
    validate(pod)
    (term,) = gpu_parts(pod)[1]["nodeSelectorTerms"]
    assert [e["key"] for e in term["matchExpressions"]] == ["zone", "k8s.amazonaws.com/accelerator"]
    assert gpu_node_affinity([], {}) == []


def test_every_repository_course_validates() -> None:
    try:
        repo_catalog = load_catalog()
    except FileNotFoundError:
        pytest.skip("no courses/ directory here (the test needs courses:content)")
    image_map = {
        slug: f"127.0.0.1:5000/ol-course-notebooks:{slug}-x" for slug in repo_catalog.slugs
    }
    settings = hub_settings(catalog=repo_catalog, image_map=image_map)
    pods = manifests(kube_config(settings), *({"course": slug} for slug in repo_catalog.slugs))
    for course, pod in zip(repo_catalog, pods):
        validate(pod)
        assert (
            notebook_container(pod)["resources"]["limits"]["memory"]
            == course.resources.memory_limit
        )
        assert (gpu_parts(pod)[0] == "1") == course.gpu


# --- The shared glue: options, refusals, state ----------------------------------------------


def plain_spawner(launch: LaunchSettings = PRODUCTION) -> CourseKubeSpawner:
    async def make() -> CourseKubeSpawner:
        return CourseKubeSpawner(
            hub=Hub(base_url="/hub/"),
            user=MockUser(),
            config=kube_config(hub_settings(launch)),
            _mock=True,
        )

    return asyncio.run(make())


def test_options_from_query_normalizes() -> None:
    spawner = plain_spawner()
    options = spawner.options_from_query(
        query_arguments("course=data-analytics&notebook=./lectures//02-groupby/groupby.ipynb&x=1")
    )
    assert options == {
        "course": "data-analytics",
        "notebook": "lectures/02-groupby/groupby.ipynb",
        "needs_gpu": "false",
    }


@pytest.mark.parametrize(
    "query, status",
    [
        ("course=nope", 404),
        ("course=data-analytics&notebook=../../etc/passwd", 400),
        ("course=data-analytics&tag=pr-1", 403),
    ],
)
def test_refusal_becomes_the_error_page(query: str, status: int) -> None:
    """JupyterHub shows the options form after a failed query spawn; ours re-raises the refusal
    (so no default spawn happens) and JupyterHub renders its status and HTML."""
    spawner = plain_spawner()
    with pytest.raises(LaunchRefused) as caught:
        spawner.options_from_query(query_arguments(query))
    assert caught.value.status_code == status
    with pytest.raises(LaunchRefused) as shown:
        asyncio.run(spawner.get_options_form())
    assert shown.value is caught.value
    html = shown.value.message_html
    for slug in ("data-analytics", "deep-learning-gpu", "intro-ml"):
        assert f'href="/hub/spawn?course={slug}"' in html
    assert (
        "/hub/spawn?course=data-analytics&amp;notebook=lectures%2F01-dataframes%2Fdataframes.ipynb"
        in html
    )
    assert "unbuilt" not in html


def test_spawn_page_without_course_refuses() -> None:
    spawner = plain_spawner()
    with pytest.raises(LaunchRefused) as caught:
        asyncio.run(spawner.get_options_form())
    assert caught.value.status_code == 400 and caught.value.reason == "no-course"


def test_html_escapes_learner_input() -> None:
    spawner = plain_spawner()
    with pytest.raises(LaunchRefused) as caught:
        spawner.options_from_query({"course": ["<script>alert(1)</script>"]})
    assert "<script>" not in caught.value.message_html
    assert "&lt;script&gt;" in caught.value.message_html


def test_start_refuses_options_that_do_not_plan() -> None:
    """user_options from the REST API (or none) never start a default image."""
    spawner = plain_spawner()
    for options in ({}, {"image": "evil"}, {"course": "data-analytics", "notebook": "/etc/passwd"}):
        spawner.user_options = options
        with pytest.raises(LaunchRefused):
            asyncio.run(spawner.start())


def test_stop_forgets_the_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    async def stopped(self: Any, now: bool = False) -> None:
        return None

    monkeypatch.setattr("kubespawner.KubeSpawner.stop", stopped)
    spawner = plain_spawner()
    spawner.orm_spawner = Mock(user_options={"course": "data-analytics"}, server=None)
    spawner.user_options = {"course": "data-analytics"}
    spawner.prepare_launch()
    asyncio.run(spawner.stop())
    assert spawner.orm_spawner.user_options == {} and spawner.user_options == {}
    assert spawner.launch_plan is None


def test_no_settings_is_a_clear_error() -> None:
    async def make() -> CourseKubeSpawner:
        return CourseKubeSpawner(
            hub=Hub(base_url="/hub/"), user=MockUser(), config=Config(), _mock=True
        )

    spawner = asyncio.run(make())
    with pytest.raises(Exception, match="no course catalog"):
        spawner.plan({"course": "data-analytics"})


def test_mixin_is_shared() -> None:
    assert issubclass(CourseKubeSpawner, CourseSpawner) and issubclass(
        CourseDockerSpawner, CourseSpawner
    )
    assert CourseKubeSpawner.options_from_query is CourseDockerSpawner.options_from_query


# --- DockerSpawner ----------------------------------------------------------------------------


def docker_spawner(launch: LaunchSettings, **docker: Any) -> CourseDockerSpawner:
    c = Config()
    c.CourseSpawner.hub_settings = hub_settings(launch)
    for name, value in docker.items():
        setattr(c.CourseDockerSpawner, name, value)
    return CourseDockerSpawner(hub=Hub(base_url="/hub/"), user=MockUser(), config=c)


def test_docker_cpu_course() -> None:
    spawner = docker_spawner(
        LOCAL,
        loopback=True,
        extra_host_config={"pids_limit": 512},
        extra_create_kwargs={"labels": {"ol.hub": "test"}},
    )
    spawner.user_options = {"course": "intro-ml", "notebook": "notebooks/My Notebook.ipynb"}
    spawner.prepare_launch()
    assert spawner.image == IMAGE_MAP["intro-ml"]
    assert spawner.mem_limit == 3 * GiB
    assert spawner.cpu_limit == 2.0
    assert spawner.default_url == "/lab/tree/notebooks/My%20Notebook.ipynb"
    assert spawner.extra_host_config == {
        "pids_limit": 512,
        "mem_reservation": 3 * GiB // 2,
        "cpu_shares": 512,
        "security_opt": ["no-new-privileges"],
    }
    assert spawner.extra_create_kwargs["labels"] == {COURSE_LABEL: "intro-ml", "ol.hub": "test"}
    spawner.port = 43210
    assert asyncio.run(spawner.get_ip_and_port()) == ("127.0.0.1", 43210)
    assert "--MappingKernelManager.cull_idle_timeout=600" in spawner.get_args()


def test_docker_gpu_then_cpu() -> None:
    spawner = docker_spawner(LaunchSettings(gpu=GPU))
    spawner.user_options = {"course": "deep-learning-gpu"}
    spawner.prepare_launch()
    assert spawner.extra_host_config["device_requests"] == [
        {"Driver": "", "Count": 1, "Capabilities": [["gpu"]]}
    ]
    spawner.user_options = {"course": "data-analytics"}
    spawner.prepare_launch()
    assert "device_requests" not in spawner.extra_host_config
    assert spawner.image == IMAGE_MAP["data-analytics"] and spawner.mem_limit == 1 * GiB


def test_a_start_error_after_a_good_link_offers_the_same_launch_again() -> None:
    """JupyterHub shows the form when the start fails after the query planned (its spawn limit's
    429 comes before `start`): the page must be that error with a retry, never a bad-link page."""
    spawner = plain_spawner()
    query = "course=data-analytics&notebook=lectures/02-groupby/groupby.ipynb"
    planned = spawner.options_from_query(query_arguments(query))
    form = asyncio.run(spawner.get_options_form())
    assert "could not be started just now" in form and "does not say which course" not in form
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
    assert fields == planned
    # Shown once: a later visit without a link is refused as before.
    with pytest.raises(LaunchRefused) as caught:
        asyncio.run(spawner.get_options_form())
    assert caught.value.reason == "no-course"
    # "Start" posts the form: the same launch, planned again.
    assert spawner.run_options_from_form({k: [v] for k, v in fields.items()}) == planned
