"""The spawners: launch links -> KubeSpawner pods and DockerSpawner containers.

No Kubernetes cluster can run here, so the Kubernetes side is tested against its published
contracts instead: KubeSpawner's real `get_pod_manifest()` (what it would send to the API
server) and the Kubernetes 1.31 API schema (`kubernetes-validate`, strict: unknown fields fail).
A kubeconfig naming an unreachable server satisfies KubeSpawner's client set-up; nothing is
ever sent to it.
"""

from __future__ import annotations

import asyncio
import copy
import re
from dataclasses import replace
from typing import Any
from unittest.mock import Mock

import jupyterhub
import kubespawner
import pytest
from jupyterhub.objects import Hub
from kubernetes_asyncio.client import ApiClient
from traitlets.config import Config

from catalog import Catalog, KeptWork
from hub.launch import KeptWorkSettings, LaunchSettings, query_arguments
from hub.settings import CullSettings, HubSettings
from hub.spawner import (
    CourseKubeSpawner,
    LaunchRefused,
    gpu_node_affinity,
)
from tests.hub.hub_data import CATALOG, IMAGE_MAP, LOCAL, PRODUCTION
from tests.hub.kube import MockUser, manifests, use_unreachable_kubeconfig, validate

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


def normalized(pod: dict[str, Any]) -> dict[str, Any]:
    """The manifest without what depends on the machine: the hub's host and ports in the
    server's environment become `HUB` (the server's own address, 0.0.0.0:8888, stays)."""
    pod = copy.deepcopy(pod)
    for container in pod["spec"]["containers"]:
        for item in container.get("env", []):
            if isinstance(item.get("value"), str):
                item["value"] = re.sub(
                    r"^http://(?!0\.0\.0\.0)[^/]+:\d+/", "http://HUB/", item["value"]
                )
    return pod


USER = MockUser.name
GPU_REQUIRED = {
    "matchExpressions": [
        {"key": "k8s.amazonaws.com/accelerator", "operator": "In", "values": ["nvidia-tesla-t4"]}
    ]
}
GPU_TOLERATION = {"key": GPU_KEY, "operator": "Exists", "effect": "NoSchedule"}
ZONE = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}


def expected_pod(
    course: str, url: str = "/lab", gpu: bool = False, required: list[Any] | None = None
) -> dict[str, Any]:
    """The whole pod KubeSpawner must produce for a plan of `course` (hub_data's catalog, the
    chart's baseline of `kube_config`): every field written out."""
    resources = CATALOG[course].resources
    image = IMAGE_MAP[CATALOG[course].image_key(gpu)]
    limits: dict[str, Any] = {"cpu": resources.cpu_limit, "memory": resources.memory_limit}
    if gpu:
        limits[GPU_KEY] = "1"
    access = f'["access:servers!server={USER}/", "access:servers!user={USER}"]'
    env = {
        "CPU_GUARANTEE": str(resources.cpu_guarantee),
        "CPU_LIMIT": str(resources.cpu_limit),
        "JPY_API_TOKEN": "",
        "JUPYTERHUB_ACTIVITY_URL": f"http://HUB/hub/api/users/{USER}/activity",
        "JUPYTERHUB_API_TOKEN": "",
        "JUPYTERHUB_API_URL": "http://HUB/hub/api",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_CLIENT_ID": "",
        "JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED": "0",
        "JUPYTERHUB_DEFAULT_URL": url,
        "JUPYTERHUB_HOST": "",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": access,
        "JUPYTERHUB_OAUTH_CALLBACK_URL": "http://HUB/oauth_callback",
        "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": "[]",
        "JUPYTERHUB_OAUTH_SCOPES": access,
        "JUPYTERHUB_PUBLIC_HUB_URL": "",
        "JUPYTERHUB_PUBLIC_URL": "",
        "JUPYTERHUB_SERVER_NAME": "",
        "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/",
        "JUPYTERHUB_USER": USER,
        "JUPYTER_IMAGE": image,
        "JUPYTER_IMAGE_SPEC": image,
        "MEM_GUARANTEE": str(resources.memory_guarantee),
        "MEM_LIMIT": str(resources.memory_limit),
        "OL_COURSE": course,
    }
    node_affinity: dict[str, Any] = {
        "preferredDuringSchedulingIgnoredDuringExecution": [Z2JH_PREFERRED]
    }
    if required:
        node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": required
        }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "annotations": {
                "hub.jupyter.org/jupyterhub-version": jupyterhub.__version__,
                "hub.jupyter.org/kubespawner-version": kubespawner.__version__,
                "hub.jupyter.org/username": USER,
            },
            "labels": {
                "app": "jupyterhub",
                "app.kubernetes.io/component": "singleuser-server",
                "app.kubernetes.io/managed-by": "kubespawner",
                "app.kubernetes.io/name": "jupyterhub",
                "component": "singleuser-server",
                "course": course,
                "heritage": "jupyterhub",
                "hub.jupyter.org/network-access-hub": "true",
                "hub.jupyter.org/servername": "",
                "hub.jupyter.org/username": USER,
            },
            "name": f"jupyter-x-{USER}---8dfe6d51",
        },
        "spec": {
            "affinity": {"nodeAffinity": node_affinity},
            "automountServiceAccountToken": False,
            "containers": [
                {
                    # Idle kernels are culled by the server itself, even with a tab connected.
                    "args": [
                        "jupyterhub-singleuser",
                        "--MappingKernelManager.cull_idle_timeout=600",
                        "--MappingKernelManager.cull_interval=120",
                        "--MappingKernelManager.cull_connected=True",
                        "--TerminalManager.cull_inactive_timeout=1200",
                        "--TerminalManager.cull_interval=120",
                    ],
                    "env": [{"name": name, "value": value} for name, value in sorted(env.items())],
                    "image": image,
                    "lifecycle": {},
                    "name": "notebook",
                    "ports": [{"containerPort": 8888, "name": "notebook-port"}],
                    "resources": {
                        "limits": limits,
                        "requests": {
                            "cpu": resources.cpu_guarantee,
                            "memory": resources.memory_guarantee,
                        },
                    },
                    "securityContext": {"allowPrivilegeEscalation": False, "runAsUser": 1000},
                    "volumeMounts": [],
                }
            ],
            "imagePullSecrets": [],
            "restartPolicy": "OnFailure",
            "securityContext": {"fsGroup": 100},
            "tolerations": [Z2JH_TOLERATION] + ([GPU_TOLERATION] if gpu else []),
            "volumes": [],
        },
    }


NB = "lectures/01-dataframes/dataframes.ipynb"

#: (link options, the deployment's launch settings, KubeSpawner traits) -> the whole pod.
POD_CASES = [
    pytest.param(
        {"course": "data-analytics", "notebook": NB},
        PRODUCTION,
        {},
        expected_pod("data-analytics", f"/lab/tree/{NB}"),
        id="cpu-course-with-notebook",
    ),
    pytest.param(
        {"course": "intro-ml"}, PRODUCTION, {}, expected_pod("intro-ml"), id="cpu-course-3gib"
    ),
    pytest.param(
        {"course": "deep-learning-gpu"},
        PRODUCTION,
        {},
        expected_pod("deep-learning-gpu", gpu=True, required=[GPU_REQUIRED]),
        id="gpu-course",
    ),
    pytest.param(
        {"course": "deep-learning-gpu", "needs_gpu": "false"},
        PRODUCTION,
        {},
        expected_pod("deep-learning-gpu"),
        id="gpu-course-opts-out",
    ),
    pytest.param(
        {"course": "data-analytics", "needs_gpu": "true"},
        PRODUCTION,
        {},
        expected_pod("data-analytics"),
        id="cpu-course-asks-for-a-gpu",
    ),
    pytest.param(
        {"course": "deep-learning-gpu"},
        LOCAL,
        {},
        expected_pod("deep-learning-gpu"),
        id="no-gpus-in-the-deployment",
    ),
    pytest.param(
        {"course": "deep-learning-gpu"},
        PRODUCTION,
        {"node_affinity_required": [ZONE]},
        # Kubernetes ORs the terms: the GPU's labels join the configured term.
        expected_pod(
            "deep-learning-gpu",
            gpu=True,
            required=[
                {"matchExpressions": ZONE["matchExpressions"] + GPU_REQUIRED["matchExpressions"]}
            ],
        ),
        id="gpu-joins-configured-required-terms",
    ),
]


@pytest.mark.parametrize(("options", "launch", "kube", "expected"), POD_CASES)
def test_the_whole_pod(
    options: dict[str, str], launch: LaunchSettings, kube: dict[str, Any], expected: dict[str, Any]
) -> None:
    (pod,) = manifests(kube_config(hub_settings(launch), **kube), options)
    validate(pod)
    assert normalized(pod) == expected


def test_nothing_carries_over_between_spawns() -> None:
    """The same spawner object (one user) launching a GPU course, then a CPU course, then the
    GPU course again: each pod is the one a fresh spawner makes."""
    launches = (
        {"course": "deep-learning-gpu", "notebook": "lectures/lecture1/tensors.ipynb"},
        {"course": "data-analytics"},
        {"course": "deep-learning-gpu"},
    )
    config = kube_config(hub_settings())
    one_spawner = manifests(config, *launches)
    fresh = [manifests(config, options)[0] for options in launches]
    assert [normalized(p) for p in one_spawner] == [normalized(p) for p in fresh]
    assert normalized(one_spawner[1]) == expected_pod("data-analytics")


def test_gpu_affinity_without_labels_adds_nothing() -> None:
    assert gpu_node_affinity([], {}) == []
    assert gpu_node_affinity([ZONE], {}) == [ZONE]


# --- Kept work ---------------------------------------------------------------------------------

PERSON = "0123456789abcdef0123"
KEEP = replace(PRODUCTION, kept_work=KeptWorkSettings(days=30, storage_class="efs-sc"))


class PersonsUser(MockUser):
    """A throwaway user of a signed-in person (hub.sso.throwaway_name)."""

    name = f"l-{PERSON}-0a1b2c3d4e"


def test_kept_work_is_the_persons_claim_over_home_brought_up_to_date_first() -> None:
    """The pod of a kept-work launch: the person's claim for the course over the home folder,
    an init container of the course's image that syncs it first; the claim itself (labelled,
    sized, on the stack's storage class) outlives the throwaway user. A launch after it without
    kept work (the course opts out) has none of it."""
    opted_out = Catalog(
        tuple(
            replace(c, kept_work=KeptWork(enabled=False)) if c.slug == "intro-ml" else c
            for c in CATALOG.courses
        )
    )

    async def run() -> tuple[Any, ...]:
        spawner = CourseKubeSpawner(
            hub=Hub(base_url="/hub/"),
            user=PersonsUser(),
            config=kube_config(hub_settings(KEEP, catalog=opted_out)),
            _mock=True,
        )
        client = ApiClient()
        spawner.user_options = {"course": "data-analytics"}
        spawner.prepare_launch()
        pod = client.sanitize_for_serialization(await spawner.get_pod_manifest())
        claim = client.sanitize_for_serialization(spawner.get_pvc_manifest())
        ensured = spawner.storage_pvc_ensure
        spawner.user_options = {"course": "intro-ml"}
        spawner.prepare_launch()
        after = client.sanitize_for_serialization(await spawner.get_pod_manifest())
        return pod, claim, ensured, spawner.storage_pvc_ensure, spawner.delete_pvc, after

    pod, claim, ensured, ensured_after, deletes_claim, after = asyncio.run(run())
    validate(pod)
    validate(claim)
    name = f"work-{PERSON}-data-analytics"
    image = IMAGE_MAP["data-analytics"]
    (init,) = pod["spec"]["initContainers"]
    assert init == {
        "name": "kept-work",
        "image": image,
        "command": ["python3", "/usr/local/bin/kept-work", "sync", "/home/jovyan", "/mnt/work"],
        "volumeMounts": [{"name": "kept-work", "mountPath": "/mnt/work"}],
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
    }
    (notebook,) = pod["spec"]["containers"]
    assert {"name": "kept-work", "mountPath": "/home/jovyan"} in notebook["volumeMounts"]
    assert {"name": "kept-work", "persistentVolumeClaim": {"claimName": name}} in pod["spec"][
        "volumes"
    ]
    assert claim["metadata"]["name"] == name
    assert {"course": "data-analytics", "person": PERSON}.items() <= claim["metadata"][
        "labels"
    ].items()
    assert claim["spec"]["storageClassName"] == "efs-sc"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert ensured and not deletes_claim
    assert not ensured_after
    assert "initContainers" not in after["spec"]
    assert all(v["name"] != "kept-work" for v in after["spec"].get("volumes", []))


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
        "/hub/spawn?course=data-analytics&amp;notebook=lectures/01-dataframes/dataframes.ipynb"
        in (html)
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


def test_two_requests_for_one_user_keep_their_own_link() -> None:
    """What a link's reading leaves for the form is the request's own: two requests for one
    user at once (two tabs, two sign-ins) each get their own page. It was one slot on the
    spawner, so the second link's refusal replaced the first's retry form (and emptied it)."""
    spawner = plain_spawner()
    good = "course=data-analytics&notebook=lectures/02-groupby/groupby.ipynb"

    async def request(query: str) -> str:
        try:
            spawner.options_from_query(query_arguments(query))
        except LaunchRefused:
            await asyncio.sleep(0.01)  # the other request reads its link meanwhile
            with pytest.raises(LaunchRefused) as shown:
                await spawner.get_options_form()
            return str(shown.value.reason)
        await asyncio.sleep(0.01)
        return str(await spawner.get_options_form())

    async def both() -> list[str]:
        return list(await asyncio.gather(request(good), request("course=no-such-course")))

    form, refusal = asyncio.run(both())
    assert "could not be started just now" in form
    assert refusal == "unknown-course"
