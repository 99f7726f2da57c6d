"""`./pants publish` pushes course images to the configured registry, after an ECR-style login:
their content tags only. The moving `:<slug>` tag stays on this machine (pants.toml's local-only
registry, `skip_push`), and CI builds (whose registries replace pants.toml's) have none.

Real parts: the Docker engine, Debian's `docker-registry` (the Distribution registry) on a loopback
port, and Pants itself on a copy of the repo. ECR cannot run here: moto's server mode stands in for
its `GetAuthorizationToken` API (the published contract boto3 speaks), on loopback too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import tomllib

from catalog import load_catalog
from tests.monorepo.registry import free_port, wait_for_http
from tools import registry_login
from tools.repo_copy import PantsFailed, run_pants

# pants.toml's local-only registry, which names the moving tag, and CI's registries (which
# replace pants.toml's, as .github/workflows/main.yml does).
MOVING_TAG_REPOSITORY = "localhost/ol-course-notebooks"
CI_REGISTRIES = repr(
    {"ecr": {"address": "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "default": True}}
)


@pytest.fixture
def fake_ecr(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/moto-api/")
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def test_token_decoding_and_address_parsing() -> None:
    assert registry_login.ecr_region_and_account(
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    ) == (
        "eu-west-1",
        "123456789012",
    )
    assert registry_login.ecr_region_and_account("127.0.0.1:5000") == (None, None)
    token = {"authorizationData": [{"authorizationToken": "QVdTOnNlY3JldA=="}]}  # AWS:secret
    assert registry_login.credentials_from_token(token) == registry_login.Credentials(
        "AWS", "secret"
    )
    with pytest.raises(ValueError):
        registry_login.credentials_from_token({"authorizationData": []})


def test_login_and_publish_one_course(
    registry: str,
    fake_ecr: str,
    repo: Path,
    restore: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))

    assert registry_login.main(["--registry", registry]) == 0
    auths = json.loads((docker_config / "config.json").read_text())["auths"]
    assert registry in auths, "docker login did not record the registry"

    course = next(iter(load_catalog(repo)))
    # Pants parses dict options as Python literals; "+" keeps pants.toml's other registries,
    # replacing where `courses` points, and the local-only one's address with one of this test's
    # own: the moving tag is the Docker engine's, which other tests' builds of the course (with
    # edits of their own) move meanwhile.
    moving = f"localhost/publish-{uuid.uuid4().hex[:8]}"
    local = {"address": moving, "skip_push": True, "extra_image_tags": ["{build_args.COURSE_SLUG}"]}
    registries = "+" + repr({"courses": {"address": registry, "default": True}, "local": local})
    env = {"PANTS_DOCKER_REGISTRIES": registries, "DOCKER_CONFIG": os.environ["DOCKER_CONFIG"]}
    run_pants(repo, "publish", f"courses/{course.slug}#image", env=env)
    with urllib.request.urlopen(f"http://{registry}/v2/ol-course-notebooks/tags/list") as answer:
        tags = json.load(answer)["tags"]
    # The content tag alone: ECR's repositories are immutable, a moving tag could not move.
    assert len(tags) == 1 and re.fullmatch(
        rf"{re.escape(course.slug)}-[0-9a-f]{{64}}", tags[0]
    ), tags
    with urllib.request.urlopen(f"http://{registry}/v2/_catalog") as answer:
        repositories = json.load(answer)["repositories"]
    assert repositories == ["ol-course-notebooks"], "base images must not be pushed"

    # The engine still has the moving tag, on the image it pushed.
    client = docker.from_env()
    pushed = client.images.get(f"{registry}/ol-course-notebooks:{tags[0]}")
    assert client.images.get(f"{moving}/ol-course-notebooks:{course.slug}").id == pushed.id
    for name in [tag for tag in pushed.tags if tag.startswith(f"{moving}/")]:
        client.images.remove(name)  # the test's own names go; the image stays

    # The image map names the content tag in the registry pushed to, never a local-only name
    # (with a registry whose address sorts after `localhost`).
    (repo / "one-course").mkdir()
    (repo / "one-course" / "BUILD").write_text(
        f'course_image_map(name="map", courses_directory="courses/{course.slug}")\n'
    )
    later = {"courses": {"address": "registry.test", "default": True}}
    run_pants(repo, "package", "one-course:map", env={"PANTS_DOCKER_REGISTRIES": f"+{later!r}"})
    image_map = json.loads((repo / "dist" / "courses" / "image-map.json").read_text())
    # (Another hash: the base image's reference, a build arg, names its registry.)
    assert list(image_map) == [course.slug]
    assert re.fullmatch(
        rf"registry\.test/ol-course-notebooks:{re.escape(course.slug)}-[0-9a-f]{{64}}",
        image_map[course.slug],
    ), image_map


def _peek_image(repo: Path, slug: str, env: dict[str, str] | None = None) -> dict:
    (target,) = json.loads(run_pants(repo, "peek", f"courses/{slug}#image", env=env))
    return target


def test_only_local_builds_have_the_moving_tag_and_never_push_it(repo: Path) -> None:
    """Pants 2.17 cannot keep one tag of an image from being pushed, but skips a whole registry
    (`skip_push`): the moving tag is a tag of pants.toml's local-only registry alone, whose tags
    take the slug from the COURSE_SLUG build arg. CI's registries have no such registry: no
    moving tag, and no COURSE_SLUG build arg changing CI's content tags."""
    slug = next(iter(load_catalog(repo))).slug
    local = _peek_image(repo, slug)
    assert local["image_tags"] == [f"{slug}-{{pants.hash}}"]
    assert local["registries"] == ["<all default registries>", "@local"]
    assert local["extra_build_args"] == [f"COURSE_SLUG={slug}"]
    config = tomllib.loads((repo / "pants.toml").read_text())["docker"]["registries"]
    assert config["local"] == {
        "address": MOVING_TAG_REPOSITORY.split("/")[0],
        "skip_push": True,
        "extra_image_tags": ["{build_args.COURSE_SLUG}"],
    }
    assert not config["courses"].get("extra_image_tags")

    ci = _peek_image(repo, slug, env={"PANTS_DOCKER_REGISTRIES": CI_REGISTRIES})
    assert ci["image_tags"] == [f"{slug}-{{pants.hash}}"]
    assert ci["registries"] == ["<all default registries>"]
    assert not ci["extra_build_args"]


def test_a_local_registry_that_would_push_the_moving_tag_is_refused(repo: Path) -> None:
    slug = next(iter(load_catalog(repo))).slug
    pushed = {"local": {"address": "localhost", "extra_image_tags": ["{build_args.COURSE_SLUG}"]}}
    with pytest.raises(PantsFailed) as failure:
        _peek_image(repo, slug, env={"PANTS_DOCKER_REGISTRIES": f"+{pushed!r}"})
    assert "[docker.registries.local]" in str(failure.value)
    assert "skip_push = true" in str(failure.value)
