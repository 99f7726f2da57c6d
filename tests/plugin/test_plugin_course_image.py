"""A course image's pure parts (pants-plugins/course_targets/course_image.py), without Pants: the
shared template filled in, the image's names, and the published reference."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from catalog import Course, DataFile, Resources
from catalog.image_facts import image_key, image_target, image_target_name
from course_targets.course_image import (
    BASE_IMAGE_ARG,
    COURSE_TEMPLATE,
    DATA_MARKER,
    EXECUTABLES_MARKER,
    CourseImageError,
    ImageNaming,
    course_instructions,
    image_naming,
    own_dockerfile_for,
    own_dockerfile_problem,
    published_reference,
)

RESOURCES = Resources(memory_limit=2**30, memory_guarantee=2**29, cpu_limit=1.0, cpu_guarantee=0.25)
SHA_A = "a" * 64
CACHE = "--mount=type=cache,id=course-data,target=/tmp/course-data,uid=1000,gid=100"
SHA_B = "b" * 64
HASH = "0123456789abcdef" * 4


def course(flavor: str = "pytorch", data: tuple[DataFile, ...] = ()) -> Course:
    return Course(
        slug="intro",
        title="Intro",
        flavor=flavor,
        gpu=False,
        resources=RESOURCES,
        notebooks=("a.ipynb",),
        data=data,
    )


@dataclass(frozen=True)
class Fails:
    """The call raises CourseImageError, whose message has every one of `parts`."""

    parts: tuple[str, ...]


def check(call: Callable[..., object], args: tuple, expected: object) -> None:
    """`call(*args)` returns `expected`, or fails as `expected` says."""
    if isinstance(expected, Fails):
        with pytest.raises(CourseImageError) as raised:
            call(*args)
        missing = [part for part in expected.parts if part not in str(raised.value)]
        assert not missing, f"{str(raised.value)!r} lacks {missing}"
    else:
        assert call(*args) == expected


# --- the shared template, filled in --------------------------------------------------------

TEMPLATE = """\
ARG BASE_IMAGE=images/base:pytorch
FROM ${BASE_IMAGE} AS files
COPY . /tmp/course/
# @course-executables
FROM ${BASE_IMAGE}
# @course-data
COPY --from=files /tmp/course/ /home/jovyan/
"""


@pytest.mark.parametrize(
    ("template", "course_", "executables", "expected"),
    [
        pytest.param(
            TEMPLATE,
            course(),
            (),
            """\
ARG BASE_IMAGE=images/base:pytorch
FROM ${BASE_IMAGE} AS files
COPY . /tmp/course/
FROM ${BASE_IMAGE}
COPY --from=files /tmp/course/ /home/jovyan/""",
            id="no data and no executables: the markers go",
        ),
        pytest.param(
            TEMPLATE,
            course("tensorflow"),
            (),
            """\
ARG BASE_IMAGE=images/base:tensorflow
FROM ${BASE_IMAGE} AS files
COPY . /tmp/course/
FROM ${BASE_IMAGE}
COPY --from=files /tmp/course/ /home/jovyan/""",
            id="the base image is the course's flavor",
        ),
        pytest.param(
            TEMPLATE,
            course(),
            ("bin/setup.sh", "run me.sh", "a.sh"),
            """\
ARG BASE_IMAGE=images/base:pytorch
FROM ${BASE_IMAGE} AS files
COPY . /tmp/course/
RUN chmod 0755 a.sh bin/setup.sh 'run me.sh'
FROM ${BASE_IMAGE}
COPY --from=files /tmp/course/ /home/jovyan/""",
            id="executables: one chmod line, sorted, quoted",
        ),
        pytest.param(
            TEMPLATE,
            course(
                data=(
                    DataFile("data/z.csv", "https://example.org/z.csv", SHA_A),
                    DataFile("data/my b.csv", "https://example.org/b?x=1&y=2", SHA_B),
                    DataFile("nltk_data", "https://example.org/punkt.zip", SHA_A, unpack=True),
                )
            ),
            (),
            f"""\
ARG BASE_IMAGE=images/base:pytorch
FROM ${{BASE_IMAGE}} AS files
COPY . /tmp/course/
FROM ${{BASE_IMAGE}}
RUN {CACHE} fetch-course-data {SHA_A} https://example.org/z.csv data/z.csv
RUN {CACHE} fetch-course-data {SHA_B} 'https://example.org/b?x=1&y=2' 'data/my b.csv'
RUN {CACHE} fetch-course-data --unpack {SHA_A} https://example.org/punkt.zip nltk_data
COPY --from=files /tmp/course/ /home/jovyan/""",
            id="[[data]]: one fetch line per entry, in course.toml's order, quoted, one cache",
        ),
        pytest.param(
            TEMPLATE.replace("# @course-data\n", ""),
            course(),
            (),
            Fails((COURSE_TEMPLATE, "exactly one line starting with `# @course-data`")),
            id="no data marker",
        ),
        pytest.param(
            TEMPLATE + "# @course-executables\n",
            course(),
            (),
            Fails((COURSE_TEMPLATE, "exactly one line starting with `# @course-executables`")),
            id="two executables markers",
        ),
        pytest.param(
            TEMPLATE.replace("ARG BASE_IMAGE=images/base:pytorch\n", "ARG BASE=x\n"),
            course(),
            (),
            Fails((COURSE_TEMPLATE, "exactly one line starting with `ARG BASE_IMAGE=`")),
            id="no base image argument",
        ),
    ],
)
def test_course_instructions(
    template: str, course_: Course, executables: tuple[str, ...], expected: object
) -> None:
    if isinstance(expected, str):
        assert "\n".join(course_instructions(template, course_, executables)) == expected
    else:
        check(course_instructions, (template, course_, executables), expected)


def test_the_shared_template_fills_in() -> None:
    """The real template has each marker once, and nothing of them is left."""
    data = (DataFile("data/z.csv", "https://example.org/z.csv", SHA_A),)
    lines = course_instructions(
        Path(COURSE_TEMPLATE).read_text(), course("tensorflow", data), ["bin/setup.sh"]
    )
    assert [line for line in lines if line.startswith(BASE_IMAGE_ARG)] == [
        "ARG BASE_IMAGE=images/base:tensorflow"
    ]
    assert "RUN chmod 0755 bin/setup.sh" in lines
    assert f"RUN {CACHE} fetch-course-data {SHA_A} https://example.org/z.csv data/z.csv" in lines
    assert not [line for line in lines if line.startswith((DATA_MARKER, EXECUTABLES_MARKER))]


@pytest.mark.parametrize(
    ("course_", "dockerfile", "expected"),
    [
        pytest.param(
            course(),
            "ARG BASE_IMAGE=images/base:pytorch\nFROM ${BASE_IMAGE}\n",
            None,
            id="builds FROM its flavor",
        ),
        pytest.param(
            course(),
            "ARG BASE_IMAGE=images/base:tensorflow\nFROM ${BASE_IMAGE}\n",
            "must build FROM its flavor's base image: add the line "
            "`ARG BASE_IMAGE=images/base:pytorch` and use `FROM ${BASE_IMAGE}`",
            id="another flavor",
        ),
        pytest.param(
            course("tensorflow"),
            "FROM python:3.11\n",
            "must build FROM its flavor's base image: add the line "
            "`ARG BASE_IMAGE=images/base:tensorflow` and use `FROM ${BASE_IMAGE}`",
            id="no base image argument",
        ),
    ],
)
def test_own_dockerfile_problem(course_: Course, dockerfile: str, expected: str | None) -> None:
    assert own_dockerfile_problem(course_, dockerfile) == expected


def test_a_gpu_course_has_a_cuda_image_and_a_cpu_image() -> None:
    """A GPU course's `#image` builds FROM its flavor's CUDA variant, its `#image-cpu` (image map
    key `<slug>--cpu`) FROM the CPU base: the shared template and an own Dockerfile alike."""
    from dataclasses import replace

    gpu_course = replace(course("tensorflow"), gpu=True)
    bases = {
        image_target_name(key): [
            line
            for line in course_instructions(Path(COURSE_TEMPLATE).read_text(), gpu_course, (), key)
            if line.startswith(BASE_IMAGE_ARG)
        ]
        for key in gpu_course.image_keys
    }
    assert bases == {
        "image": ["ARG BASE_IMAGE=images/base:tensorflow-gpu"],
        "image-cpu": ["ARG BASE_IMAGE=images/base:tensorflow"],
    }
    assert [image_key("intro", name) for name in bases] == ["intro", "intro--cpu"]
    own = "ARG BASE_IMAGE=images/base:tensorflow-gpu\nFROM ${BASE_IMAGE}\nRUN true"
    assert own_dockerfile_problem(gpu_course, own) is None
    assert own_dockerfile_for(gpu_course, own, "intro--cpu") == [
        "ARG BASE_IMAGE=images/base:tensorflow",
        "FROM ${BASE_IMAGE}",
        "RUN true",
    ]
    assert own_dockerfile_for(gpu_course, own, "intro") == own.splitlines()
    assert course().image_keys == ("intro",) and image_target_name("intro") == "image"
    assert [image_target(key) for key in gpu_course.image_keys] == [
        "courses/intro#image",
        "courses/intro#image-cpu",
    ]


# --- the image's names ---------------------------------------------------------------------


@dataclass(frozen=True)
class Registry:
    """A `[docker.registries.<name>]` entry, as Pants' DockerRegistryOptions has it."""

    address: str
    default: bool = False
    skip_push: bool = False


def registries(**by_alias: Registry) -> Mapping[str, Registry]:
    """Pants' `DockerRegistries.registries`: each entry by `@alias` and by address."""
    result: dict[str, Registry] = {}
    for alias, registry in by_alias.items():
        result[registry.address] = result[f"@{alias}"] = registry
    return result


ECR = Registry("123456789012.dkr.ecr.eu-west-1.amazonaws.com", default=True)
LOCAL = Registry("localhost", skip_push=True)
COURSES = Registry("127.0.0.1:5000", default=True)
CONTENT = ("intro-{pants.hash}",)
MOVING_TAG = ImageNaming(CONTENT, ("@local",), ("COURSE_SLUG=intro",))
REFUSED = Fails(
    ("[docker.registries.local]", "must never be pushed", "skip_push = true", "not be a default")
)


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        pytest.param({}, ImageNaming(CONTENT), id="no registries"),
        pytest.param(registries(courses=ECR), ImageNaming(CONTENT), id="CI: ECR alone"),
        pytest.param(registries(courses=COURSES, local=LOCAL), MOVING_TAG, id="local-only"),
        pytest.param(
            registries(courses=COURSES, local=Registry("localhost")), REFUSED, id="local pushed"
        ),
        pytest.param(
            registries(local=Registry("localhost", default=True, skip_push=True)),
            REFUSED,
            id="local is a default registry",
        ),
    ],
)
def test_image_naming(configured: Mapping[str, Registry], expected: object) -> None:
    check(image_naming, ("intro", configured), expected)


# --- the reference that is published (the image map's, the smoke test's) ------------------


def no_content_tag(names: str) -> Fails:
    """The rule's own words (catalog/image_facts.py's `content_reference`), the names the image
    has, and what to do."""
    return Fails(
        (
            "no content tag intro-<hash>",
            names,
            "in a registry that is pushed to: rebuild it, tagged `intro-{pants.hash}`",
        )
    )


@pytest.mark.parametrize(
    ("tags", "configured", "expected"),
    [
        pytest.param(
            (f"127.0.0.1:5000/ol-course-notebooks:intro-{HASH}",),
            (COURSES,),
            f"127.0.0.1:5000/ol-course-notebooks:intro-{HASH}",
            id="one content tag",
        ),
        pytest.param(
            (f"ol-course-notebooks:intro-{HASH}",),
            (),
            f"ol-course-notebooks:intro-{HASH}",
            id="no registry",
        ),
        pytest.param(
            (
                "localhost/ol-course-notebooks:intro",
                f"localhost/ol-course-notebooks:intro-{HASH}",
                f"registry.test/ol-course-notebooks:intro-{HASH}",
            ),
            (Registry("registry.test", default=True), LOCAL),
            f"registry.test/ol-course-notebooks:intro-{HASH}",
            id="never the local-only registry's name, though it sorts first",
        ),
        pytest.param(
            (
                f"registry.test/ol-course-notebooks:intro-{HASH}",
                f"127.0.0.1:5000/ol-course-notebooks:intro-{HASH}",
            ),
            (COURSES, Registry("registry.test", default=True)),
            f"127.0.0.1:5000/ol-course-notebooks:intro-{HASH}",
            id="two pushed registries: the first in sorted order",
        ),
        pytest.param(
            ("localhost/ol-course-notebooks:intro", f"localhost/ol-course-notebooks:intro-{HASH}"),
            (LOCAL,),
            no_content_tag(
                f"localhost/ol-course-notebooks:intro, localhost/ol-course-notebooks:intro-{HASH}"
            ),
            id="only local-only names",
        ),
        pytest.param(
            ("127.0.0.1:5000/ol-course-notebooks:intro",),
            (COURSES,),
            no_content_tag("127.0.0.1:5000/ol-course-notebooks:intro"),
            id="the moving tag is no content tag",
        ),
        pytest.param(
            (f"127.0.0.1:5000/ol-course-notebooks:intro-ml-{HASH}",),
            (COURSES,),
            no_content_tag(f"127.0.0.1:5000/ol-course-notebooks:intro-ml-{HASH}"),
            id="another course's content tag",
        ),
        pytest.param(
            ("127.0.0.1:5000/ol-course-notebooks:intro-latest",),
            (COURSES,),
            no_content_tag("127.0.0.1:5000/ol-course-notebooks:intro-latest"),
            id="a tag without the hash",
        ),
        pytest.param((), (COURSES,), no_content_tag("none"), id="no names at all"),
    ],
)
def test_published_reference(
    tags: tuple[str, ...], configured: tuple[Registry, ...], expected: object
) -> None:
    check(published_reference, ("intro", tags, configured), expected)
