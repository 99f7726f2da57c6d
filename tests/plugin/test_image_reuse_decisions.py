"""The decisions of pants-plugins/image_reuse/reuse.py, without Docker: which tags a build makes,
when its image counts as built already, which registry a tag names, which manifest names an
image id. The wrapper itself, with Pants and a real engine and registry, is tested in
tests/monorepo/test_image_reuse.py."""

from __future__ import annotations

import pytest

from image_reuse.reuse import config_digest, is_loopback, registry_host, reusable_id, tags_of

ID_A = "sha256:" + "a" * 64
ID_B = "sha256:" + "b" * 64
CONTENT = "reg.example/ol-course-notebooks:intro-ml-" + "0" * 64
LOCAL_CONTENT = "localhost/ol-course-notebooks:intro-ml-" + "0" * 64
MOVING = "localhost/ol-course-notebooks:intro-ml"


def test_the_tags_of_a_docker_build_command_line() -> None:
    argv = ["/usr/bin/docker", "build", "--tag", CONTENT, "--tag", MOVING, "--build-arg",
            "--tag=x", "--file", "Dockerfile", "."]  # fmt: skip
    assert tags_of(argv) == [CONTENT, MOVING]
    assert tags_of(["/usr/bin/docker", "build", "."]) == []


@pytest.mark.parametrize(
    ("content_tags", "ids", "expected"),
    [
        pytest.param([CONTENT], {CONTENT: ID_A}, ID_A, id="one content tag, in the engine"),
        pytest.param(
            [CONTENT, LOCAL_CONTENT],
            {CONTENT: ID_A, LOCAL_CONTENT: ID_A, MOVING: ID_B},
            ID_A,
            id="the moving tag elsewhere: reused (and pointed at it)",
        ),
        pytest.param(
            [CONTENT, LOCAL_CONTENT],
            {CONTENT: ID_A, LOCAL_CONTENT: None},
            None,
            id="one content tag missing",
        ),
        pytest.param(
            [CONTENT, LOCAL_CONTENT],
            {CONTENT: ID_A, LOCAL_CONTENT: ID_B},
            None,
            id="content tags on two images",
        ),
        pytest.param([], {MOVING: ID_A}, None, id="no content tag: always built"),
        pytest.param([CONTENT], {}, None, id="nothing in the engine"),
    ],
)
def test_when_an_image_counts_as_built(
    content_tags: list[str], ids: dict[str, str | None], expected: str | None
) -> None:
    assert reusable_id(content_tags, ids) == expected


@pytest.mark.parametrize(
    ("tag", "registry", "loopback"),
    [
        ("127.0.0.1:5000/ol-course-notebooks:a", "127.0.0.1:5000", True),
        ("localhost/ol-course-notebooks:a", "localhost", True),
        ("localhost:5000/x:a", "localhost:5000", True),
        ("[::1]:5000/x:a", "[::1]:5000", True),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/x:a",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            False,
        ),
        ("registry.example:443/x:a", "registry.example:443", False),
        # Docker Hub's names: no registry is asked.
        ("ol-course-base:standin-1", None, None),
        ("library/debian:bookworm", None, None),
    ],
)
def test_the_registry_a_tag_names(tag: str, registry: str | None, loopback: bool | None) -> None:
    assert registry_host(tag) == registry
    if registry is not None:
        assert is_loopback(registry) is loopback


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (
            {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": ID_A},
            },
            ID_A,
        ),
        (
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {"digest": ID_B}},
            ID_B,
        ),
        (
            {
                "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
                "manifests": [{"digest": ID_A}],
            },
            None,
        ),
        ({"mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {}}, None),
        ({}, None),
    ],
)
def test_the_image_id_a_registry_manifest_names(manifest: dict, expected: str | None) -> None:
    assert config_digest(manifest) == expected
