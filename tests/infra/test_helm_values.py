"""The Helm values = f(stack settings, catalog, images): the hub's contract, the chart's knobs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from catalog import Catalog, catalog_to_list
from hub.settings import parse_culling
from infra.images import (
    ImageError,
    ImageRef,
    course_images,
    hub_image,
    hub_image_from_docker_info,
    preview_tags,
)
from infra.monitoring import dashboard_settings
from infra.prepull import prepull_key
from infra.stack_config import STACKS, StackConfig
from infra.values import (
    DB_SECRET_KEY,
    DB_SECRET_NAME,
    HUB_EXTRA_CONFIG,
    RDS_CA_BUNDLE,
    helm_values,
    hub_configuration,
)
from tests.infra.support import HUB_IMAGE, image_map_for

DB_HOST = "hub-db.c0ffee.us-east-1.rds.amazonaws.com"


def values_for(stack: StackConfig, catalog: Catalog) -> dict[str, Any]:
    images = course_images(catalog, image_map_for(catalog))
    return helm_values(stack, catalog, images, hub_image(HUB_IMAGE), DB_HOST)


@pytest.mark.parametrize("name", STACKS)
def test_hub_contract(stacks: dict[str, StackConfig], sample_catalog: Catalog, name: str) -> None:
    stack = stacks[name]
    values = values_for(stack, sample_catalog)
    hub = values["hub"]
    assert hub["image"]["name"] + ":" + hub["image"]["tag"] == HUB_IMAGE
    assert hub["extraConfig"] == {"courses": HUB_EXTRA_CONFIG}
    # The SSO gate, on every stack: the issuer and client of the stack file, the client secret
    # from the Secret infra creates, the public callback URL.
    assert hub["config"]["JupyterHub"]["authenticator_class"] == "hub.sso.CourseSsoAuthenticator"
    assert hub["config"]["Authenticator"] == {"allow_all": True}
    assert values["custom"]["sso"] == {
        "issuer": stack.sso.issuer,
        "clientId": stack.sso.client_id,
    }
    assert hub["extraEnv"]["OAUTH_CLIENT_SECRET"] == {
        "valueFrom": {"secretKeyRef": {"name": "hub-sso", "key": "client-secret"}}
    }
    assert hub["config"]["CourseSsoAuthenticator"] == {
        "oauth_callback_url": f"https://{stack.domain}/hub/oauth_callback"
    }
    assert values["custom"]["limits"]["activeServers"] == stack.limits.active_servers
    assert hub["db"]["type"] == "postgres"
    assert hub["db"]["url"] == (
        f"postgresql://jupyterhub@{DB_HOST}:5432/jupyterhub"
        f"?sslmode=verify-full&sslrootcert={RDS_CA_BUNDLE}"
    )
    assert "password" not in hub["db"]
    assert hub["extraEnv"]["PGPASSWORD"] == {
        "valueFrom": {"secretKeyRef": {"name": DB_SECRET_NAME, "key": DB_SECRET_KEY}}
    }
    custom = values["custom"]
    assert custom["catalog"] == json.loads(json.dumps(catalog_to_list(sample_catalog)))
    assert custom["imageMap"] == image_map_for(sample_catalog)
    launch = custom["launch"]
    assert launch["allowPreviewTags"] is stack.allow_preview_tags
    assert launch["previewTags"] == {}
    assert launch["gpu"] == {
        "count": 1,
        "resourceName": "nvidia.com/gpu",
        "nodeSelector": {stack.gpu.node_label_key: stack.gpu.node_label_value},
        "tolerations": [stack.gpu.taint.toleration()],
    }
    assert launch["gpu"]["tolerations"][0]["effect"] == "NoSchedule"
    assert launch["gpu"]["tolerations"][0]["operator"] in ("Exists", "Equal")


@pytest.mark.parametrize("name", STACKS)
def test_chart_prepuller_has_every_cpu_course_image_with_its_immutable_tag(
    stacks: dict[str, StackConfig], sample_catalog: Catalog, name: str
) -> None:
    """The images CPU servers run: CPU courses', and GPU courses' CPU images (`<slug>--cpu`);
    GPU courses' CUDA images are pulled on GPU nodes by infra's own DaemonSet (test_chart_render).
    """
    values = values_for(stacks[name], sample_catalog)
    extra = values["prePuller"]["extraImages"]
    image_map = image_map_for(sample_catalog)
    assert set(extra) == {c.slug for c in sample_catalog if not c.gpu} | {
        f"{c.slug}--cpu" for c in sample_catalog if c.gpu
    }
    assert values["prePuller"]["hook"] == {"enabled": False}
    for key, entry in extra.items():
        assert f"{entry['name']}:{entry['tag']}" == image_map[key]
        assert entry["tag"].startswith(key + "-") and len(entry["tag"]) == len(key) + 65
        assert entry["pullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize("name", STACKS)
def test_culling_comes_from_the_stack(
    stacks: dict[str, StackConfig], sample_catalog: Catalog, name: str
) -> None:
    """Written once: the stack's `culling` section as the hub reads it, the chart's culler off."""
    stack = stacks[name]
    values = values_for(stack, sample_catalog)
    assert values["cull"] == {"enabled": False}
    assert parse_culling(values["custom"]["culling"]) == stack.culling


def test_the_age_alert_follows_the_culler(stacks: dict[str, StackConfig]) -> None:
    """The dashboards' "past the maximum age" threshold is the culler's, and none without one."""
    stack = stacks["prod"]
    assert dashboard_settings(stack).culler_max_age_seconds == stack.culling.max_age > 0
    off = replace(stack, culling=replace(stack.culling, enabled=False))
    assert dashboard_settings(off).culler_max_age_seconds == 0


@pytest.mark.parametrize("name", STACKS)
def test_single_user_defaults(
    stacks: dict[str, StackConfig], sample_catalog: Catalog, name: str
) -> None:
    stack = stacks[name]
    singleuser = values_for(stack, sample_catalog)["singleuser"]
    assert singleuser["storage"] == {"type": "none"}
    assert singleuser["allowPrivilegeEscalation"] is False
    # The NetworkPolicy blocks the metadata server; iptables would need a root init container.
    assert singleuser["cloudMetadata"] == {"blockWithIptables": False}
    assert (singleuser["uid"], singleuser["fsGid"]) == (1000, 100)
    assert singleuser["networkPolicy"]["enabled"] is True
    assert singleuser["networkPolicy"]["egressAllowRules"]["cloudMetadataServer"] is False
    # GPU tolerations are applied per GPU course by the hub, never to every learner pod.
    assert singleuser["extraTolerations"] == []
    assert "profileList" not in singleuser
    # The chart pre-pulls singleuser.image: a (CPU) course image rather than the chart's sample.
    default = singleuser["image"]
    assert (
        f"{default['name']}:{default['tag']}"
        == image_map_for(sample_catalog)[
            "deep-learning-gpu--cpu"  # the first of the images CPU servers run
        ]
    )


def test_gpu_toleration_is_nowhere_a_learner_pod_gets_it_unconditionally(
    stacks: dict[str, StackConfig], sample_catalog: Catalog
) -> None:
    stack = stacks["prod"]
    values = values_for(stack, sample_catalog)
    toleration = stack.gpu.taint.toleration()
    assert toleration not in values["singleuser"]["extraTolerations"]
    # userPods tolerations stay the chart's defaults
    assert "tolerations" not in values["scheduling"]["userPods"]
    # Only the hub's launch plan (per GPU course) carries it; the chart's pre-puller (CPU images)
    # stays off GPU nodes.
    assert values["custom"]["launch"]["gpu"]["tolerations"] == [toleration]
    assert values["prePuller"]["extraTolerations"] == []


@pytest.mark.parametrize("name", STACKS)
def test_ingress_host_per_stack(
    stacks: dict[str, StackConfig], sample_catalog: Catalog, name: str
) -> None:
    stack = stacks[name]
    values = values_for(stack, sample_catalog)
    assert values["ingress"]["enabled"] is True
    # the hub's host, and learners' servers on `<user>.<domain>` (issue 25, finding 5)
    assert values["ingress"]["hosts"] == [stack.domain, f"*.{stack.domain}"]
    assert values["ingress"]["ingressClassName"] == stack.ingress.class_name
    assert values["proxy"]["service"]["type"] == "ClusterIP"


def test_hub_configuration_is_the_hubs_part_of_the_values(
    stacks: dict[str, StackConfig], sample_catalog: Catalog
) -> None:
    values = values_for(stacks["dev"], sample_catalog)
    config = hub_configuration(values)
    assert config["custom"] == values["custom"]
    assert config["hub"]["extraConfig"] == values["hub"]["extraConfig"]
    assert set(config["hub"]) == {"image", "config", "extraConfig", "db", "extraEnv"}
    assert "<" not in str(config["custom"])


def test_values_are_deterministic(stacks: dict[str, StackConfig], sample_catalog: Catalog) -> None:
    assert values_for(stacks["dev"], sample_catalog) == values_for(stacks["dev"], sample_catalog)


def test_long_slugs_get_a_short_prepuller_key() -> None:
    slug = "a" * 40 + "-" + "b" * 22
    key = prepull_key(slug)
    assert len("image-pull-" + key) <= 63 and key != prepull_key(slug[:-1] + "c")
    assert prepull_key("intro-ml") == "intro-ml"


# --- image references -----------------------------------------------------------------------


def _without_intro_ml(image_map: dict[str, str]) -> dict[str, str]:
    return {slug: ref for slug, ref in image_map.items() if slug != "intro-ml"}


def _intro_ml_tagged(tag: str) -> Callable[[dict[str, str]], dict[str, str]]:
    def change(image_map: dict[str, str]) -> dict[str, str]:
        name = image_map["intro-ml"].rsplit(":", 1)[0]
        return {**image_map, "intro-ml": f"{name}:{tag}"}

    return change


# (a change to the sample catalog's image map) -> the error
BAD_IMAGE_MAPS = [
    pytest.param(
        _without_intro_ml,
        "no image for intro-ml.*./pants package courses::",
        id="a-course-without-image",
    ),
    pytest.param(
        lambda image_map: {**image_map, "gone": image_map["intro-ml"]},
        "images of no course \\(gone\\)",
        id="an-image-without-course",
    ),
    pytest.param(_intro_ml_tagged("intro-ml"), "immutable content tag", id="the-moving-tag"),
    pytest.param(_intro_ml_tagged("latest"), "immutable content tag", id="latest"),
    pytest.param(
        _intro_ml_tagged(f"tf-basics-{'a' * 64}"),
        "immutable content tag",
        id="another-course-s-content-tag",
    ),
    pytest.param(
        lambda image_map: {
            **image_map,
            "intro-ml": image_map["intro-ml"].replace("ol-course-notebooks", "other"),
        },
        "repository",
        id="another-repository",
    ),
]


@pytest.mark.parametrize("change, error", BAD_IMAGE_MAPS)
def test_image_map_must_name_each_course_s_content_tag(
    sample_catalog: Catalog,
    change: Callable[[dict[str, str]], dict[str, str]],
    error: str,
) -> None:
    with pytest.raises(ImageError, match=error):
        course_images(sample_catalog, change(image_map_for(sample_catalog)))


def test_image_refs_parse_with_registry_ports() -> None:
    ref = ImageRef.parse("127.0.0.1:5000/ol-course-notebooks:intro-" + "0" * 64)
    assert ref.registry == "127.0.0.1:5000"
    assert ref.repository == "ol-course-notebooks"
    assert str(ref) == "127.0.0.1:5000/ol-course-notebooks:intro-" + "0" * 64
    with pytest.raises(ImageError):
        ImageRef.parse("127.0.0.1:5000/ol-course-notebooks")
    with pytest.raises(ImageError):
        hub_image(HUB_IMAGE.rsplit(":", 1)[0] + ":latest")


def test_hub_image_from_pants_docker_info() -> None:
    name = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ol-course-hub"
    tags = [
        {"template": "latest", "tag": "latest", "name": f"{name}:latest"},
        {"template": "{pants.hash}", "tag": "ab" * 32, "name": f"{name}:{'ab' * 32}"},
    ]
    info = {
        "version": 1,
        "registries": [
            {
                "alias": "ecr",
                "address": name.split("/")[0],
                "repository": "ol-course-hub",
                "tags": tags,
            }
        ],
    }
    assert hub_image_from_docker_info(info) == f"{name}:{'ab' * 32}"
    with pytest.raises(ImageError):
        hub_image_from_docker_info({"registries": [{"tags": tags[:1] * 2}]})


# --- preview tags -----------------------------------------------------------------------------

H1, H2, H3 = "1" * 64, "2" * 64, "3" * 64


@pytest.mark.parametrize(
    ("published", "limit", "expected"),
    [
        pytest.param(
            [(f"intro-ml-{H1}", "2026-01-01"), (f"intro-ml-{H2}", "2026-03-01")],
            5,
            {"intro-ml": [f"intro-ml-{H2}", f"intro-ml-{H1}"]},
            id="newest-first",
        ),
        pytest.param(
            [(f"intro-ml-{H1}", "2026-01-01"), (f"intro-ml-{H2}", "2026-03-01")],
            1,
            {"intro-ml": [f"intro-ml-{H2}"]},
            id="at-most-limit",
        ),
        pytest.param(
            [("intro-ml", "2026-05-01"), ("latest", "2026-05-01"), (f"intro-ml-{H1}x", "2026")],
            5,
            {},
            id="moving-and-malformed-tags-ignored",
        ),
        pytest.param(
            [(f"gone-course-{H1}", "2026-01-01"), (f"tf-basics-{H3}", "2026-02-01")],
            5,
            {"tf-basics": [f"tf-basics-{H3}"]},
            id="other-courses-ignored",
        ),
        pytest.param([(f"intro-ml-{H1}", "2026-01-01")], 0, {}, id="limit-zero"),
    ],
)
def test_preview_tags_are_the_newest_published_content_tags(
    sample_catalog: Catalog,
    published: list[tuple[str, str]],
    limit: int,
    expected: dict[str, list[str]],
) -> None:
    assert preview_tags(sample_catalog, published, limit) == expected


@pytest.mark.parametrize("name", STACKS)
def test_preview_tags_reach_the_hub_where_the_stack_allows_them(
    stacks: dict[str, StackConfig], sample_catalog: Catalog, name: str
) -> None:
    stack = stacks[name]
    images = course_images(sample_catalog, image_map_for(sample_catalog))
    tags = {"intro-ml": [f"intro-ml-{H1}"]}
    values = helm_values(
        stack, sample_catalog, images, hub_image(HUB_IMAGE), DB_HOST, preview_tags=tags
    )
    launch = values["custom"]["launch"]
    assert launch["previewTags"] == (tags if stack.allow_preview_tags else {})
