"""The hub's configuration as the hub pod builds it: the z2jh 4.4.0 chart's own
`jupyterhub_config.py` and `z2jh.py`, run on what helm rendered from each stack's values,
followed by our `hub.extraConfig` (tests/infra/chart.py says how the pod is imitated).

Then KubeSpawner, configured by exactly that, makes a learner pod (its real
`get_pod_manifest()`, no cluster): what production would ask Kubernetes to run.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import inspect
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from jupyterhub.app import JupyterHub
from jupyterhub.services.service import _ServiceSpawner
from traitlets.config import Config

from catalog import Catalog, find_repo_root, load_catalog
from hub.config import HSTS
from hub.settings import HubSettings, parse_custom
from hub.spawner import CourseKubeSpawner
from hub.sso import CourseSsoAuthenticator, CourseSsoLoginHandler
from infra import monitoring
from infra.images import course_images, hub_image
from infra.stack_config import STACKS, StackConfig
from infra.values import RELEASE_NAME, helm_values, hub_settings
from tests.hub.kube import manifests, use_unreachable_kubeconfig
from tests.infra.chart import KUBERNETES_VERSION, Z2JH, chart, named, run_hub_config, template
from tests.infra.support import HUB_IMAGE, image_map_for

DB_HOST = "hub-db.c0ffee.us-east-1.rds.amazonaws.com"


@pytest.fixture(autouse=True)
def kubeconfig(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    use_unreachable_kubeconfig(tmp_path_factory, monkeypatch)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(find_repo_root())


def previews(catalog: Catalog) -> dict[str, list[str]]:
    """Two published tags of the first course: what a preview link may open."""
    slug = sorted(catalog.slugs)[0]
    return {slug: [f"{slug}-{'a' * 64}", f"{slug}-{'b' * 64}"]}


def values_for(stack: StackConfig, catalog: Catalog) -> dict[str, Any]:
    images = course_images(catalog, image_map_for(catalog))
    return helm_values(
        stack,
        catalog,
        images,
        hub_image(HUB_IMAGE),
        DB_HOST,
        preview_tags=previews(catalog),
    )


HubConfig = tuple[StackConfig, Config, list[dict[str, Any]]]


@pytest.fixture(params=STACKS)
def hub_config(
    request: pytest.FixtureRequest,
    stacks: dict[str, StackConfig],
    catalog: Catalog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> HubConfig:
    """A stack, the hub's config as the pod builds it, and the objects helm rendered."""
    stack = stacks[request.param]
    values = values_for(stack, catalog)
    objects = template(chart(Z2JH), RELEASE_NAME, stack.namespace, values, tmp_path)
    return stack, run_hub_config(objects, stack.namespace, tmp_path, monkeypatch), objects


def cullers(c: Config) -> list[dict[str, Any]]:
    return [s for s in c.JupyterHub.services if "jupyterhub_idle_culler" in s.get("command", [])]


def test_exactly_one_culler_with_the_stacks_settings(hub_config: HubConfig) -> None:
    stack, c, _ = hub_config
    (culler,) = cullers(c)
    arguments = set(culler["command"])
    assert {
        f"--timeout={stack.culling.idle_timeout}",
        f"--cull-every={stack.culling.every}",
        f"--max-age={stack.culling.max_age}",
        "--cull-users=true",
    } <= arguments
    roles = [r for r in c.JupyterHub.load_roles if culler["name"] in r.get("services", [])]
    assert len(roles) == 1 and "admin:users" in roles[0]["scopes"]


class _Started(Exception):
    """Raised where JupyterHub would start a managed service's process."""


def started_service(c: Config, name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The command and environment JupyterHub 6.1 starts the managed service `name` with: its
    app initialised from `c` (on an in-memory database), the service made from its spec and
    started by JupyterHub's own `Service.start`, stopped where the process would start."""
    c = copy.deepcopy(c)
    c.JupyterHub.db_url = "sqlite://"
    app = JupyterHub(config=c)
    app.init_db()
    app.init_hub()
    seen: dict[str, Any] = {}

    def start(spawner: _ServiceSpawner) -> None:
        seen.update(command=list(spawner.cmd), env=spawner.get_env())
        raise _Started

    monkeypatch.setattr(_ServiceSpawner, "start", start)

    async def run() -> None:
        initialised = app.init_services()
        if inspect.isawaitable(initialised):
            await initialised
        with pytest.raises(_Started):
            await app._service_map[name].start()

    asyncio.run(run())
    return seen


def test_the_culler_reaches_the_hub_on_loopback(
    hub_config: HubConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 26, finding 1: JupyterHub gives a managed service the hub's Service address
    (`hub_connect_url`), which the hub pod would reach only through its own NetworkPolicy and a
    hairpin each network plugin treats its own way: the culler gets the hub's bind port on
    loopback, as the chart's own culler does."""
    _, c, _ = hub_config
    (culler,) = cullers(c)
    started = started_service(c, culler["name"], monkeypatch)
    # jupyterhub_idle_culler: --url, else $JUPYTERHUB_API_URL
    urls = [a.split("=", 1)[1] for a in started["command"] if a.startswith("--url=")]
    url = urls[-1] if urls else started["env"]["JUPYTERHUB_API_URL"]
    assert started["env"]["JUPYTERHUB_API_URL"] == "http://hub:8081/hub/api"  # the hairpin
    assert url == "http://127.0.0.1:8081/hub/api"


def test_our_spawner_authenticator_and_settings(hub_config: HubConfig, catalog: Catalog) -> None:
    stack, c, _ = hub_config
    app = JupyterHub(config=c)
    assert app.spawner_class is CourseKubeSpawner
    settings: HubSettings = c.CourseSpawner.hub_settings
    assert settings.limits.active_servers == stack.limits.active_servers
    assert settings.limits.servers_per_identity == stack.limits.servers_per_identity
    # The spawn limit sized per stack reaches JupyterHub through the chart.
    assert c.JupyterHub.concurrent_spawn_limit == stack.hub.concurrent_spawn_limit
    assert settings.catalog.slugs == catalog.slugs
    assert dict(settings.image_map) == image_map_for(catalog)
    assert settings.launch.allow_preview_tags is stack.allow_preview_tags
    expected = {k: tuple(v) for k, v in previews(catalog).items()}
    assert dict(settings.launch.preview_tags) == (expected if stack.allow_preview_tags else {})
    assert settings.launch.gpu is not None
    assert settings.launch.gpu.node_selector == {
        stack.gpu.node_label_key: stack.gpu.node_label_value
    }


def test_no_stack_serves_tmplogin_without_the_sso_gate(hub_config: HubConfig) -> None:
    """Every stack's hub authenticates at the stack's identity provider before any throwaway user
    exists: `/hub/tmplogin` is the gate's redirect to the provider, not TmpAuthenticator."""
    stack, c, _ = hub_config
    app = JupyterHub(config=c)
    assert app.authenticator_class is CourseSsoAuthenticator
    authenticator = CourseSsoAuthenticator(config=c)
    assert authenticator.issuer == stack.sso.issuer
    assert authenticator.client_id == stack.sso.client_id
    # From the pod's environment: the Secret infra creates (any value stands in here).
    assert authenticator.client_secret == "<hub-sso>"
    assert authenticator.oauth_callback_url == f"{stack.url}/hub/oauth_callback"
    handlers = dict(authenticator.get_handlers(app))
    assert handlers["/tmplogin"] is CourseSsoLoginHandler


def test_every_stack_s_hub_knows_its_https_url_and_sends_hsts(hub_config: HubConfig) -> None:
    """Behind the load balancer the hub sees HTTP; its public URL makes JupyterHub mark its
    cookies Secure (tests/hub/test_e2e_sso.py sees it on a running hub), and the chart's own
    tornado_settings stay beside the HSTS header."""
    stack, c, _ = hub_config
    app = JupyterHub(config=c)
    assert app.public_url == f"{stack.url}/"
    # Learners' servers on `<user>.<domain>`, the hub's cookies `__Host-` (issue 25, finding 5).
    assert app.subdomain_host == stack.url
    assert app.cookie_host_prefix_enabled is True
    assert app.tornado_settings == {
        "slow_spawn_timeout": 0,
        "headers": {"Strict-Transport-Security": HSTS},
    }


def test_metrics_need_the_prometheus_token(hub_config: HubConfig) -> None:
    """The token the hub accepts is the one the ServiceMonitor reads from the chart's Secret."""
    stack, c, objects = hub_config
    app = JupyterHub(config=c)
    assert app.authenticate_prometheus is True
    services = {s["name"]: s for s in c.JupyterHub.services}
    token = services[monitoring.METRICS_SERVICE]["api_token"]
    assert len(token) >= 32
    (role,) = (r for r in c.JupyterHub.load_roles if r["name"] == monitoring.METRICS_SERVICE)
    assert role["scopes"] == ["read:metrics"]
    assert role["services"] == [monitoring.METRICS_SERVICE]
    # Where the ServiceMonitor reads the token is where the chart keeps this one.
    endpoint = monitoring.hub_service_monitor(stack)["spec"]["endpoints"][0]
    reference = endpoint["authorization"]["credentials"]
    secret = named(objects, "Secret", reference["name"])
    assert base64.b64decode(secret["data"][reference["key"]]).decode() == token


def test_database_over_verified_tls(hub_config: HubConfig) -> None:
    _, c, _ = hub_config
    url = c.JupyterHub.db_url
    assert url.startswith(f"postgresql+psycopg2://jupyterhub@{DB_HOST}:5432/jupyterhub?")
    assert "sslmode=verify-full" in url and "sslrootcert=/" in url
    # Issue 26, finding 4: the hub never migrates (a release Helm rolls back would then meet a
    # newer schema); the migration Job does, after a snapshot (tests/infra/test_migration.py).
    assert JupyterHub(config=c).upgrade_db is False


def test_learner_pods_never_run_as_root(hub_config: HubConfig, catalog: Catalog) -> None:
    """Every course's pod, as KubeSpawner configured by the chart and our extraConfig makes it."""
    _, c, _ = hub_config
    pods = manifests(c, *({"course": slug} for slug in sorted(catalog.slugs)))
    for slug, pod in zip(sorted(catalog.slugs), pods):
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, slug
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, slug
        assert not spec.get("initContainers"), f"{slug}: init containers {spec['initContainers']}"
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["runAsUser"] == 1000 and security["runAsNonRoot"] is True, slug
            assert security["allowPrivilegeEscalation"] is False, slug
            assert security["capabilities"] == {"drop": ["ALL"]}, slug
        # every stack has GPUs: a GPU course's CUDA image where its link plans a GPU, else its
        # CPU image (`<slug>--cpu`)
        key = catalog[slug].image_key(catalog[slug].gpu_by_default(None))
        assert pod["spec"]["containers"][0]["image"] == image_map_for(catalog)[key]


def test_infra_custom_is_what_the_hub_parses(
    stacks: dict[str, StackConfig], catalog: Catalog
) -> None:
    """One contract: `custom` as infra writes it parses back into the same settings."""
    images = course_images(catalog, image_map_for(catalog))
    for stack in stacks.values():
        custom = values_for(stack, catalog)["custom"]
        assert parse_custom(custom) == hub_settings(stack, catalog, images, previews(catalog))


def test_learners_memory_request_follows_the_stack(hub_config: HubConfig, catalog: Catalog) -> None:
    """Issue 26, finding 5: where the stack says `learnerMemoryRequest: limit` (prod), a
    learner's pod requests all the memory it may use, so no node holds more than it has; else
    its course's memory_guarantee."""
    stack, c, _ = hub_config
    slugs = sorted(catalog.slugs)
    for slug, pod in zip(slugs, manifests(c, *({"course": s} for s in slugs))):
        resources = pod["spec"]["containers"][0]["resources"]
        course = catalog[slug].resources
        expected = course.memory_limit
        if stack.learner_memory_request != "limit":
            expected = course.memory_guarantee
        assert resources["requests"]["memory"] == expected, slug
        assert resources["limits"]["memory"] == course.memory_limit, slug
    assert (stack.name == "prod") is (stack.learner_memory_request == "limit")
