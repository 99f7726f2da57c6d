"""Every course of the repository, through the launch planning and KubeSpawner's real manifest:
every notebook has a working link, and every course's pod validates with its own resources (with
images mapped as `./pants package courses::` would)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from traitlets.config import Config

from catalog import Catalog, load_catalog
from hub.launch import lab_url, plan_launch, query_arguments
from hub.settings import HubSettings
from tests.hub.hub_data import PRODUCTION, REGISTRY
from tests.hub.kube import manifests, use_unreachable_kubeconfig, validate


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    try:
        return load_catalog()
    except FileNotFoundError:
        pytest.skip("no courses/ directory here (the test needs courses:content)")


def image_map(catalog: Catalog) -> dict[str, str]:
    return {key: f"{REGISTRY}:{key}-x" for key in catalog.image_keys}


def test_every_notebook_plans(catalog: Catalog) -> None:
    for course in catalog:
        for notebook in course.notebooks:
            query = query_arguments(f"course={course.slug}&notebook={quote(notebook)}")
            result = plan_launch(query, catalog, image_map(catalog), PRODUCTION)
            assert result.notebook == notebook and result.url == lab_url(notebook)
            assert result.gpu == course.gpu_by_default(notebook)
            assert result.image == image_map(catalog)[course.image_key(result.gpu)]


def test_every_course_pod_validates(
    catalog: Catalog, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_unreachable_kubeconfig(tmp_path_factory, monkeypatch)
    c = Config()
    c.CourseSpawner.hub_settings = HubSettings(catalog, image_map(catalog), PRODUCTION)
    pods = manifests(c, *({"course": slug} for slug in catalog.slugs))
    for course, pod in zip(catalog, pods):
        validate(pod)
        (container,) = pod["spec"]["containers"]
        gpu = course.gpu_by_default(None)  # a link without a notebook
        assert container["image"] == image_map(catalog)[course.image_key(gpu)]
        assert container["resources"]["limits"]["memory"] == course.resources.memory_limit
        assert (container["resources"]["limits"].get("nvidia.com/gpu") == "1") == gpu
