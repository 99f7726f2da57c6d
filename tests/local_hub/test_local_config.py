"""The local hub's configuration (local_hub/config.py: the production configuration on loopback
with DockerSpawner), its course images (only the image map's) and its launch links."""

from __future__ import annotations

import types
from dataclasses import replace
from pathlib import Path

import pytest
from jupyterhub.app import JupyterHub
from traitlets.config import Config

from catalog import find_repo_root
from catalog.image_facts import ImageMapError
from hub.auth import CourseTmpAuthenticator
from hub.limits import LimitSettings
from hub.settings import CullSettings
from infra.stack_config import STACKS, load_stack_config
from local_hub.client import user_from_url
from local_hub.config import configure_local
from local_hub.images import local_images
from local_hub.main import launch_links, local_settings, parse_arguments
from local_hub.spawner import CourseDockerSpawner
from tests.hub.hub_data import CATALOG, IMAGE_MAP, REGISTRY, local_hub_params_file


def test_local_config(tmp_path: Path) -> None:
    c = Config()
    configure_local(c, local_hub_params_file(tmp_path))
    assert c.JupyterHub.spawner_class == "local_hub.spawner.CourseDockerSpawner"
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000"
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:8081"
    assert c.Spawner.hub_connect_url == "http://127.0.0.1:8081"
    assert c.JupyterHub.cleanup_servers is False
    assert c.DockerSpawner.network_name == "host" and c.LoopbackDockerSpawner.loopback is True
    assert c.DockerSpawner.extra_create_kwargs == {"labels": {"ol.hub": "abc"}}
    assert c.DockerSpawner.env_keep == []
    assert c.CourseSpawner.hub_settings.image_map == IMAGE_MAP
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert set(services) == {"jupyterhub-idle-culler", "ol-local"}
    # The culler reaches the hub where it listens (JupyterHub would give it hub_connect_url).
    assert "--url=http://127.0.0.1:8081/hub/api" in services["jupyterhub-idle-culler"]["command"]
    app = JupyterHub(config=c)
    assert app.spawner_class is CourseDockerSpawner
    # No `sso`: throwaway users for whoever follows a link.
    assert app.authenticator_class is CourseTmpAuthenticator


def test_local_config_on_subdomains(tmp_path: Path) -> None:
    """`hub:local -- --subdomains` (or `--stack`): learners' servers on `<user>.localhost`, the
    sign-in's callback on the hub's `localhost` too (its state cookie is that host's)."""
    plain = Config()
    configure_local(plain, local_hub_params_file(tmp_path))
    assert not plain.JupyterHub.get("subdomain_host")
    c = Config()
    configure_local(c, local_hub_params_file(tmp_path, subdomains=True, sso_client_secret="s"))
    assert c.JupyterHub.subdomain_host == "http://localhost:8000"
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000"
    assert c.CourseSsoAuthenticator.oauth_callback_url == "http://localhost:8000/hub/oauth_callback"
    app = JupyterHub(config=c)
    assert app.subdomain_host == "http://localhost:8000" and app.domain == "localhost"
    assert parse_arguments(["--subdomains"]).subdomains is True


def test_local_config_on_the_learners_network(tmp_path: Path) -> None:
    """Containers on the hub's own network: JupyterHub listens on its gateway (the only host
    address they reach), each server on its container's own address."""
    params = local_hub_params_file(
        tmp_path, owner="builder:4242", hub_ip="172.30.0.1", learner_network="olhub-abc"
    )
    c = Config()
    configure_local(c, params)
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000"
    assert c.JupyterHub.hub_bind_url == "http://172.30.0.1:8081"
    assert c.Spawner.hub_connect_url == "http://172.30.0.1:8081"
    assert c.DockerSpawner.network_name == "olhub-abc"
    assert c.LoopbackDockerSpawner.loopback is False
    assert c.DockerSpawner.use_internal_ip is True and c.Spawner.ip == "0.0.0.0"
    # The process that owns the hub, on every container: what a killed hub leaves is found.
    assert c.DockerSpawner.extra_create_kwargs == {
        "labels": {"ol.hub": "abc", "ol.hub.owner": "builder:4242"}
    }


def test_user_from_url() -> None:
    assert user_from_url("http://h/hub/spawn-pending/abc-1?x=1") == "abc-1"
    assert user_from_url("http://h/user/abc-1/lab/tree/a.ipynb") == "abc-1"
    assert user_from_url("http://h/hub/spawn?course=x") is None


def test_launch_links_cover_every_built_notebook() -> None:
    links = list(launch_links("http://127.0.0.1:8000", CATALOG, IMAGE_MAP))
    expected = [(c.slug, n) for c in CATALOG if c.slug in IMAGE_MAP for n in c.notebooks]
    assert [(slug, notebook) for slug, notebook, _ in links] == expected
    assert links[0][2] == (
        "http://127.0.0.1:8000/tmplogin?course=data-analytics"
        "&notebook=lectures/01-dataframes/dataframes.ipynb"
    )


class FakeImage:
    def __init__(self, tags: list[str]) -> None:
        self.tags = tags


class FakeClient:
    def __init__(self, images: list[FakeImage]) -> None:
        self.images = types.SimpleNamespace(list=lambda: images)


BUILT = {**IMAGE_MAP, "unbuilt": f"{REGISTRY}:unbuilt-{'0' * 64}"}
MOVING = [f"localhost/ol-course-notebooks:{key}" for key in BUILT]
REBUILD = "build them with `./pants package courses::`"
#: Every image of the catalog, in catalog order: GPU courses' `<slug>--cpu` images too.
KEYS = CATALOG.image_keys
assert set(KEYS) == set(BUILT)


def absent(*keys: str) -> str:
    return ", ".join(f"{BUILT[key]} ({key})" for key in keys)


@pytest.mark.parametrize(
    "image_map, docker, expected",
    [
        pytest.param(BUILT, [*BUILT.values(), *MOVING], BUILT, id="every-course-built"),
        pytest.param(
            {slug: BUILT[slug] for slug in ("data-analytics", "intro-ml")},
            [*BUILT.values(), *MOVING],
            "the image map has no image for "
            + ", ".join(k for k in KEYS if k not in ("data-analytics", "intro-ml"))
            + ": "
            + REBUILD,
            id="no-moving-tag-for-courses-missing-from-the-map",
        ),
        pytest.param(
            BUILT,
            [BUILT["intro-ml"], *MOVING],
            f"Docker has no image {absent(*(k for k in KEYS if k != 'intro-ml'))}: " + REBUILD,
            id="no-moving-tag-for-images-docker-lacks",
        ),
        pytest.param(
            {"intro-ml": BUILT["intro-ml"]},
            [],
            "the image map has no image for "
            + ", ".join(k for k in KEYS if k != "intro-ml")
            + f"; Docker has no image {absent('intro-ml')}: "
            + REBUILD,
            id="both-problems-in-one-message",
        ),
    ],
)
def test_local_images_come_from_the_image_map_only(
    image_map: dict[str, str], docker: list[str], expected: dict[str, str] | str
) -> None:
    client = FakeClient([FakeImage([reference]) for reference in docker])
    if isinstance(expected, str):
        with pytest.raises(ImageMapError) as raised:
            local_images(CATALOG, image_map, client)
        assert str(raised.value) == expected
    else:
        assert local_images(CATALOG, image_map, client) == expected


@pytest.mark.parametrize("name", STACKS)
def test_a_stack_s_limits_and_culling_run_locally(name: str) -> None:
    """`hub:local -- --stack <name>`: what learners meet in that stack, on a laptop (gated, as
    every stack is); a culling flag given explicitly wins."""
    stack = load_stack_config(find_repo_root() / "infra", name)
    arguments = parse_arguments(["--stack", name])
    settings = local_settings(CATALOG, IMAGE_MAP, vars(arguments), stack)
    assert (settings.limits, settings.culling) == (stack.limits, stack.culling)
    assert settings.image_map == IMAGE_MAP and settings.sso is None  # the provider is local
    faster = vars(parse_arguments(["--stack", name, "--idle-timeout", "60"]))
    assert local_settings(CATALOG, IMAGE_MAP, faster, stack).culling == replace(
        stack.culling, idle_timeout=60
    )


def test_without_a_stack_the_local_hub_has_no_limits() -> None:
    settings = local_settings(CATALOG, IMAGE_MAP, vars(parse_arguments([])))
    assert (settings.limits, settings.culling) == (LimitSettings(), CullSettings())


def test_an_unknown_stack_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_arguments(["--stack", "qa"])
    assert "invalid choice: 'qa'" in capsys.readouterr().err
