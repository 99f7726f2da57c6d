"""Launch links (URL shape, encoding, base URL per stack) and the new-course scaffold."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from catalog import CatalogError, load_catalog
from hub.launch import launchable_courses, query_arguments
from tools import links, new_course
from tools.course_check.static import check_course
from tools.links import LinkError

INFRA = Path("infra")


def test_link_shape_and_encoding() -> None:
    url = links.launch_link("https://h.example.org/", "intro-ml", "lectures/01 intro/a&b#1+ü.ipynb")
    assert url == (
        "https://h.example.org/tmplogin?course=intro-ml"
        "&notebook=lectures/01%20intro/a%26b%231%2B%C3%BC.ipynb"
    )
    assert (
        links.launch_link("http://127.0.0.1:8000", "x") == "http://127.0.0.1:8000/tmplogin?course=x"
    )


@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60).map(
        lambda s: s + ".ipynb"
    )
)
def test_the_hub_reads_back_exactly_the_notebook_the_link_names(notebook: str) -> None:
    url = urlsplit(links.launch_link(links.LOCAL_BASE_URL, "course-1", notebook))
    assert url.path == "/tmplogin" and not url.fragment
    assert query_arguments(url.query) == {"course": ["course-1"], "notebook": [notebook]}


NO_FILE, NO_KEY = "<no file>", "<no key>"


def stack_files(directory: Path, dev_domain: str) -> Path:
    """The real stack files, with dev's domain replaced (or its key or its file left out)."""
    directory.mkdir()
    for path in INFRA.glob("Pulumi.*.yaml"):
        document = yaml.safe_load(path.read_text())
        if path.name == "Pulumi.dev.yaml":
            if dev_domain == NO_FILE:
                continue
            document["config"].pop("ol-course-platform:domain")
            if dev_domain != NO_KEY:
                document["config"]["ol-course-platform:domain"] = dev_domain
        (directory / path.name).write_text(yaml.safe_dump(document))
    return directory


@pytest.mark.parametrize(
    "stack, dev_domain, expected",
    [
        pytest.param(None, "x.example.org", links.LOCAL_BASE_URL, id="no-stack-is-the-local-hub"),
        pytest.param("local", "x.example.org", links.LOCAL_BASE_URL, id="local"),
        pytest.param("dev", "qa.example.org", "https://qa.example.org", id="the-stack's-domain"),
        pytest.param(
            "dev",
            "https://qa.example.org",
            LinkError(
                "infra/Pulumi.dev.yaml: ol-course-platform:domain: 'https://qa.example.org' "
                "is not valid here"
            ),
            id="a-domain-is-no-url",
        ),
        pytest.param(
            "dev",
            NO_KEY,
            LinkError("infra/Pulumi.dev.yaml: ol-course-platform:domain: is required"),
            id="no-domain",
        ),
        pytest.param(
            "dev",
            NO_FILE,
            LinkError("infra/Pulumi.dev.yaml: is missing; stacks are dev, stage, prod"),
            id="no-stack-file",
        ),
        pytest.param(
            "qa",
            "x.example.org",
            LinkError("infra/Pulumi.qa.yaml: is missing; stacks are dev, stage, prod"),
            id="unknown-stack",
        ),
    ],
)
def test_base_url_per_stack(
    tmp_path: Path, stack: str | None, dev_domain: str, expected: str | LinkError
) -> None:
    infra = stack_files(tmp_path / "infra", dev_domain)
    if isinstance(expected, LinkError):
        with pytest.raises(LinkError) as raised:
            links.base_url(stack, infra)
        assert str(raised.value) == str(expected)
    else:
        assert links.base_url(stack, infra) == expected


@pytest.mark.skipif(not (INFRA / "Pulumi.prod.yaml").is_file(), reason="infra/ has no prod stack")
def test_base_url_of_the_real_stacks() -> None:
    for stack in ("dev", "stage", "prod"):
        if (INFRA / f"Pulumi.{stack}.yaml").is_file():
            url = links.base_url(stack, INFRA)
            assert url.startswith("https://") and "." in url


def test_every_notebook_of_every_course_gets_a_link() -> None:
    catalog = load_catalog()
    all_links = [link for c in catalog for link in links.course_links(c, "https://h")]
    assert len(all_links) == sum(len(c.notebooks) for c in catalog)
    text = links.render(all_links, {c.slug: c.title for c in catalog}, "https://h")
    for course in catalog:
        assert f"{course.slug}: {course.title}" in text


def test_links_that_plan_a_gpu_are_marked() -> None:
    """`gpu = [notebooks]`: only those notebooks' links plan a GPU server (and say so)."""
    from dataclasses import replace

    course = replace(load_catalog().courses[0], gpu=True)
    per_notebook = replace(course, gpu_notebooks=course.notebooks[-1:])
    marks = [
        [link.gpu for link in links.course_links(c, "https://h")]
        for c in (course, per_notebook, replace(course, gpu=False))
    ]
    count = len(course.notebooks)
    assert marks == [[True] * count, [False] * (count - 1) + [True], [False] * count]
    text = links.render(links.course_links(per_notebook, "https://h"), {}, "https://h")
    assert [line.endswith("(GPU)") for line in text.splitlines()[1:]] == marks[1]


class FakeContainers:
    def __init__(self, present: set[str]) -> None:
        self.present = present

    def run(self, image: str, command: list[str], **kwargs) -> bytes:
        assert kwargs["network_mode"] == "none" and kwargs["remove"]
        return str([p in self.present for p in command[3:]]).lower().encode()


class FakeClient:
    def __init__(self, present: set[str]) -> None:
        self.containers = FakeContainers(present)


def test_check_links_marks_notebooks_missing_from_the_image() -> None:
    course = load_catalog().courses[0]
    found, problems = links.check_links(
        links.course_links(course, "https://h"),
        {course.slug: "r/c:1"},
        FakeClient(set(course.notebooks[1:])),
    )
    assert [link.in_image for link in found] == [False, *[True] * (len(course.notebooks) - 1)]
    assert problems == []
    _, problems = links.check_links(links.course_links(course, "https://h"), {}, FakeClient(set()))
    assert problems == [
        f"{course.slug}: dist/courses/image-map.json has no image for {course.slug}: "
        "rebuild it with `./pants package courses::`"
    ]


# --- new-course ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flavor, gpu",
    [("pytorch", False), ("pytorch", True), ("tensorflow", False), ("tensorflow", True)],
)
def test_a_scaffolded_course_passes_every_check_and_is_listed_by_the_hub(
    tmp_path: Path, flavor: str, gpu: bool
) -> None:
    directory = new_course.scaffold(
        tmp_path, "my-course", flavor, gpu, "My Course", "Tensors, then a network."
    )
    assert (directory / "BUILD").read_text() == "course()\n"
    catalog = load_catalog(tmp_path)
    course = catalog["my-course"]
    assert (course.title, course.flavor, course.gpu) == ("My Course", flavor, gpu)
    assert course.description == "Tensors, then a network."
    report = check_course(directory)
    assert report.passed, [f.render() for f in report.findings]
    # The hub lists every catalog course that has an image in the image map.
    listed = launchable_courses(catalog, {"my-course": "r/ol-course-notebooks:my-course-1"})
    assert [c.slug for c in listed] == ["my-course"]


def test_a_course_without_a_description_of_its_own_fails_its_check(tmp_path: Path) -> None:
    """The hub lists it (a course under construction launches locally), but the gate that
    publishes it names what learners would read."""
    assert new_course.main(["no-words", "--root", str(tmp_path)]) == 0
    directory = tmp_path / "courses/no-words"
    assert load_catalog(tmp_path)["no-words"].description.startswith("TODO")
    findings = check_course(directory).findings
    assert [(f.check, f.file, f.details) for f in findings] == [
        ("metadata", "course.toml", {"field": "description"})
    ]
    assert "description: still the placeholder" in findings[0].message
    toml = directory / "course.toml"
    toml.write_text(toml.read_text().replace("TODO: one or two", "One or two"))
    assert check_course(directory).passed


def test_the_scaffold_refuses_bad_slugs_and_existing_courses(tmp_path: Path) -> None:
    with pytest.raises(CatalogError):
        new_course.scaffold(tmp_path, "Not_A_Slug", "pytorch", False)
    assert not (tmp_path / "courses" / "Not_A_Slug").exists()
    new_course.scaffold(tmp_path, "taken", "pytorch", False)
    with pytest.raises(FileExistsError):
        new_course.scaffold(tmp_path, "taken", "pytorch", False)
    assert new_course.main(["taken", "--root", str(tmp_path)]) == 1
    assert (
        new_course.main(["fresh", "--flavor", "tensorflow", "--gpu", "--root", str(tmp_path)]) == 0
    )
    assert load_catalog(tmp_path)["fresh"].gpu
