"""The image facts (catalog/image_facts.py): tags, references and the image map, input -> output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from catalog import find_repo_root
from catalog.image_facts import (
    BASE_REPOSITORY,
    BUILD_COMMAND,
    HUB_REPOSITORY,
    HUB_TAG_TEMPLATE,
    IMAGE_MAP,
    IMAGE_MAP_OUTPUT,
    IMAGE_MAP_TARGET,
    TAG_PATTERN,
    ImageMapError,
    built_names,
    content_reference,
    content_tag,
    content_tag_name,
    content_tag_template,
    find_image_map,
    format_image_map,
    image_of,
    is_content_tag,
    parse_image_map,
    read_image_map,
    split_reference,
    stale_image,
)

HASH = "0123456789abcdef" * 4
OTHER = "f" * 64
REGISTRY = "127.0.0.1:5000/ol-course-notebooks"
REBUILD = "rebuild it with `./pants package courses::`"


@pytest.mark.parametrize(
    "name, expected",
    [
        pytest.param("intro-ml", "intro-ml-{pants.hash}", id="course"),
        pytest.param("hub", "hub-{pants.hash}", id="hub"),
    ],
)
def test_content_tag_template(name: str, expected: str) -> None:
    assert content_tag_template(name) == expected


def test_the_hub_tag_template() -> None:
    assert HUB_TAG_TEMPLATE == "hub-{pants.hash}"


@pytest.mark.parametrize(
    "name, digest, expected",
    [
        pytest.param("intro-ml", HASH, f"intro-ml-{HASH}", id="course"),
        pytest.param("intro-ml", "abc", ValueError, id="short-hash"),
        pytest.param("Intro", HASH, ValueError, id="not-a-slug"),
    ],
)
def test_content_tag(name: str, digest: str, expected: object) -> None:
    if expected is ValueError:
        with pytest.raises(ValueError, match="not a content tag"):
            content_tag(name, digest)
    else:
        assert content_tag(name, digest) == expected


@pytest.mark.parametrize(
    "reference, expected",
    [
        pytest.param("r/c:t", ("r/c", "t"), id="name-and-tag"),
        pytest.param(f"{REGISTRY}:a-{HASH}", (REGISTRY, f"a-{HASH}"), id="registry-with-port"),
        pytest.param(REGISTRY, (REGISTRY, ""), id="port-is-no-tag"),
        pytest.param("ubuntu", ("ubuntu", ""), id="bare-name"),
    ],
)
def test_split_reference(reference: str, expected: tuple[str, str]) -> None:
    assert split_reference(reference) == expected


@pytest.mark.parametrize(
    "tag, expected",
    [
        pytest.param(f"intro-ml-{HASH}", "intro-ml", id="course"),
        pytest.param(f"hub-{HASH}", "hub", id="hub"),
        pytest.param("intro-ml", None, id="moving-tag"),
        pytest.param(f"intro-ml-{HASH[:-1]}", None, id="short-hash"),
        pytest.param(f"intro-ml-{HASH.upper()}", None, id="upper-case-hash"),
        pytest.param(f"-{HASH}", None, id="no-name"),
        pytest.param("latest", None, id="latest"),
    ],
)
def test_content_tag_name(tag: str, expected: str | None) -> None:
    assert content_tag_name(tag) == expected


@pytest.mark.parametrize(
    "reference, name, expected",
    [
        pytest.param(f"{REGISTRY}:intro-ml-{HASH}", None, True, id="any-content-tag"),
        pytest.param(f"{REGISTRY}:intro-ml-{HASH}", "intro-ml", True, id="the-course's"),
        pytest.param(f"{REGISTRY}:intro-ml-{HASH}", "intro", False, id="another-course's"),
        pytest.param("localhost/ol-course-notebooks:intro-ml", None, False, id="moving-tag"),
        pytest.param(REGISTRY, None, False, id="no-tag"),
    ],
)
def test_is_content_tag(reference: str, name: str | None, expected: bool) -> None:
    assert is_content_tag(reference, name) == expected


@pytest.mark.parametrize(
    "tag, expected",
    [
        pytest.param(f"intro-ml-{HASH}", True, id="content-tag"),
        pytest.param("pr-42", True, id="preview-tag"),
        pytest.param("_x.y-z", True, id="underscore-first"),
        pytest.param("a" * 128, True, id="128-characters"),
        pytest.param("a" * 129, False, id="129-characters"),
        pytest.param("-a", False, id="dash-first"),
        pytest.param("a/b", False, id="slash"),
        pytest.param("", False, id="empty"),
    ],
)
def test_tag_pattern(tag: str, expected: bool) -> None:
    assert bool(TAG_PATTERN.match(tag)) == expected


LOCAL = "localhost/ol-course-notebooks"


@pytest.mark.parametrize(
    "names, skip, expected",
    [
        pytest.param(
            [f"{REGISTRY}:intro-ml-{HASH}", f"{LOCAL}:intro-ml"],
            (),
            f"{REGISTRY}:intro-ml-{HASH}",
            id="content-tag-not-moving-tag",
        ),
        pytest.param(
            [f"{LOCAL}:intro-ml-{HASH}", f"{REGISTRY}:intro-ml-{HASH}", f"{LOCAL}:intro-ml"],
            ("localhost",),
            f"{REGISTRY}:intro-ml-{HASH}",
            id="not-in-a-local-only-registry",
        ),
        pytest.param(
            [f"z.example/c:intro-ml-{HASH}", f"a.example/c:intro-ml-{OTHER}"],
            (),
            f"a.example/c:intro-ml-{OTHER}",
            id="first-when-several",
        ),
        pytest.param(
            [f"{LOCAL}:intro-ml", f"{REGISTRY}:intro-{HASH}"],
            (),
            "the image of intro-ml has no content tag intro-ml-<hash> (its names: "
            f"{REGISTRY}:intro-{HASH}, {LOCAL}:intro-ml)",
            id="never-another-course's-or-the-moving-tag",
        ),
        pytest.param(
            [f"{LOCAL}:intro-ml-{HASH}"],
            ("localhost",),
            "the image of intro-ml has no content tag intro-ml-<hash> (its names: "
            f"{LOCAL}:intro-ml-{HASH})",
            id="only-local-only-names",
        ),
    ],
)
def test_content_reference(names: list[str], skip: tuple[str, ...], expected: str) -> None:
    if "no content tag" in expected:
        with pytest.raises(ImageMapError) as raised:
            content_reference("intro-ml", names, skip)
        assert str(raised.value) == expected
    else:
        assert content_reference("intro-ml", names, skip) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param('{"b": "r/c:b-1", "a": "r/c:a-1"}', {"b": "r/c:b-1", "a": "r/c:a-1"}, id="ok"),
        pytest.param("{}", {}, id="empty"),
        pytest.param(
            "{",
            "m.json is not valid JSON (Expecting property name enclosed in double quotes: "
            f"line 1 column 2 (char 1)): {REBUILD}",
            id="bad-json",
        ),
        pytest.param(
            '["r/c:a-1"]',
            f"m.json is not a JSON object of course -> image reference: {REBUILD}",
            id="a-list",
        ),
        pytest.param(
            '{"a": 1, "b": "", "c": "r/c:c-1"}',
            f"m.json: the image of a, b is not an image reference: {REBUILD}",
            id="not-references",
        ),
    ],
)
def test_parse_image_map(text: str, expected: dict[str, str] | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(ImageMapError) as raised:
            parse_image_map(text, "m.json")
        assert str(raised.value) == expected
    else:
        assert parse_image_map(text, "m.json") == expected


def test_format_image_map_is_sorted_json_that_reads_back() -> None:
    text = format_image_map({"b": "r/c:b-1", "a": "r/c:a-1"})
    assert text == '{\n  "a": "r/c:a-1",\n  "b": "r/c:b-1"\n}\n'
    assert parse_image_map(text) == {"a": "r/c:a-1", "b": "r/c:b-1"}


def test_read_image_map(tmp_path: Path) -> None:
    path = tmp_path / "map.json"
    with pytest.raises(ImageMapError) as raised:
        read_image_map(path)
    assert str(raised.value) == (
        f"no image map at {path}: build the course images and the map with "
        "`./pants package courses::`"
    )
    path.write_text('{"a": "r/c:a-1"}')
    assert read_image_map(path) == {"a": "r/c:a-1"}


@pytest.mark.parametrize(
    "image_map, expected",
    [
        pytest.param({"a": "r/c:a-1"}, "r/c:a-1", id="mapped"),
        pytest.param({"b": "r/c:b-1"}, f"m.json has no image for a: {REBUILD}", id="missing"),
        pytest.param({"a": ""}, f"m.json has no image for a: {REBUILD}", id="empty"),
    ],
)
def test_image_of(image_map: dict[str, str], expected: str) -> None:
    if "no image" in expected:
        with pytest.raises(ImageMapError) as raised:
            image_of(image_map, "a", "m.json")
        assert str(raised.value) == expected
    else:
        assert image_of(image_map, "a", "m.json") == expected


@pytest.mark.parametrize(
    "files, expected",
    [
        pytest.param(
            ["sandbox/courses/image-map.json", "repo/dist/courses/image-map.json"],
            "sandbox/courses/image-map.json",
            id="the-map-a-test-carries",
        ),
        pytest.param(
            ["repo/dist/courses/image-map.json"],
            "repo/dist/courses/image-map.json",
            id="the-checkout's",
        ),
        pytest.param([], "repo/dist/courses/image-map.json", id="none-yet"),
    ],
)
def test_find_image_map(tmp_path: Path, files: list[str], expected: str) -> None:
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    (tmp_path / "sandbox").mkdir(exist_ok=True)
    found = find_image_map(tmp_path / "repo", here=tmp_path / "sandbox")
    assert found == tmp_path / expected
    assert IMAGE_MAP == "dist/courses/image-map.json"


@pytest.mark.parametrize(
    "build_file, field, expected",
    [
        pytest.param("hub/BUILD", "repository", [HUB_REPOSITORY], id="hub-repository"),
        pytest.param("hub/BUILD", "image_tags", [f'["{HUB_TAG_TEMPLATE}"]'], id="hub-tag"),
        pytest.param(
            "images/base/BUILD", "repository", [BASE_REPOSITORY] * 5, id="base-repository"
        ),
    ],
)
def test_build_files_agree_with_the_facts(build_file: str, field: str, expected: list[str]) -> None:
    """BUILD files cannot import the module: what they name must be what it says."""
    text = (find_repo_root() / build_file).read_text()
    found = re.findall(rf'^\s*{field}=(?:"([^"]*)"|(\[[^\]]*\]))', text, re.MULTILINE)
    assert [quoted or listed for quoted, listed in found] == expected


def test_the_image_map_target_is_the_one_courses_build_declares() -> None:
    directory, name = IMAGE_MAP_TARGET.split(":")
    text = (find_repo_root() / directory / "BUILD").read_text()
    assert f'course_image_map(name="{name}")' in text
    assert IMAGE_MAP_OUTPUT.startswith(f"{directory}/")


INFO = json.dumps(
    {
        "version": 1,
        "image_id": "sha256:" + "c" * 64,
        "registries": [
            {"alias": "courses", "tags": [{"name": f"r/ol-course-notebooks:intro-ml-{'b' * 64}"}]},
            {"alias": "local", "tags": [{"name": "localhost/ol-course-notebooks:intro-ml"}]},
        ],
    }
)


@pytest.mark.parametrize(
    ("mapped", "info", "stale"),
    [
        pytest.param(f"r/ol-course-notebooks:intro-ml-{'b' * 64}", INFO, False, id="current"),
        pytest.param(f"r/ol-course-notebooks:intro-ml-{'a' * 64}", INFO, True, id="older"),
        pytest.param(f"r/ol-course-notebooks:intro-ml-{'a' * 64}", "{}", False, id="no-record"),
    ],
)
def test_an_image_map_older_than_the_last_build_is_named(
    mapped: str, info: str, stale: bool
) -> None:
    """A course packaged alone after an edit leaves the map naming the image before it: the
    smoke test says so (tools/course_check/smoke_cli.py) instead of testing the old image."""
    message = stale_image("intro-ml", mapped, built_names(info))
    assert (message is not None) is stale
    if message:
        assert f"its last build is r/ol-course-notebooks:intro-ml-{'b' * 64}" in message
        assert BUILD_COMMAND in message
