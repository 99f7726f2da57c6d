"""The pure launch function: link arguments -> launch plan or a learner-facing launch error."""

from __future__ import annotations

import string
from dataclasses import replace
from typing import Any
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from catalog import Catalog, KeptWork, normalize_notebook_path
from hub.launch import (
    KeptWorkSettings,
    LaunchError,
    LaunchPlan,
    LaunchSettings,
    WorkVolume,
    image_with_tag,
    lab_url,
    launchable_courses,
    parse_bool,
    plan_launch,
    query_arguments,
)
from tests.hub.hub_data import CATALOG, GPU, IMAGE_MAP, LOCAL, PREVIEW, PRODUCTION, REGISTRY, GiB

DA = "data-analytics"
DL = "deep-learning-gpu"
NB = "lectures/01-dataframes/dataframes.ipynb"


def plan(query_string: str, launch: LaunchSettings = PRODUCTION) -> LaunchPlan:
    return plan_launch(query_arguments(query_string), CATALOG, IMAGE_MAP, launch)


# --- Input/expected pairs ---------------------------------------------------------------------

#: Whole plans for the test catalog's courses without notebook, tag or GPU; cases change fields.
PLAN_DA = LaunchPlan(
    course=DA,
    notebook=None,
    image=IMAGE_MAP[DA],
    memory_limit=1 * GiB,
    memory_guarantee=GiB // 2,
    cpu_limit=2.0,
    cpu_guarantee=0.5,
    url="/lab",
)
PLAN_ML = replace(
    PLAN_DA,
    course="intro-ml",
    image=IMAGE_MAP["intro-ml"],
    memory_limit=3 * GiB,
    memory_guarantee=3 * GiB // 2,
)
PLAN_DL_CPU = replace(
    PLAN_DA,
    course=DL,
    image=IMAGE_MAP[f"{DL}--cpu"],
    memory_limit=4 * GiB,
    memory_guarantee=2 * GiB,
)
PLAN_DL_GPU = replace(
    PLAN_DL_CPU,
    image=IMAGE_MAP[DL],
    gpu_count=1,
    gpu_resource_name="nvidia.com/gpu",
    node_selector={"k8s.amazonaws.com/accelerator": "nvidia-tesla-t4"},
    tolerations=({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},),
)
PLAN_DA_NB = replace(PLAN_DA, notebook=NB, url=f"/lab/tree/{NB}")

# --- Kept work ---------------------------------------------------------------------------------

KEEP = replace(PRODUCTION, kept_work=KeptWorkSettings(days=30, storage_class="efs-sc"))
PERSON = "0123456789abcdef0123"
WORK_DA = WorkVolume(f"work-{PERSON}-{DA}", PERSON, DA, GiB)


def _catalog_with(slug: str, kept_work: KeptWork) -> Catalog:
    return Catalog(
        tuple(replace(c, kept_work=kept_work) if c.slug == slug else c for c in CATALOG.courses)
    )


@pytest.mark.parametrize(
    ("query_string", "launch", "person", "catalog", "expected"),
    [
        pytest.param(f"course={DA}", KEEP, PERSON, CATALOG, WORK_DA, id="kept"),
        pytest.param(
            f"course=%20{DA}%20&notebook={NB}&needs_gpu=no",
            KEEP,
            PERSON,
            CATALOG,
            WORK_DA,
            id="named-from-person-and-slug-not-the-links-text",
        ),
        pytest.param(f"course={DA}", KEEP, None, CATALOG, None, id="no-person-no-gate"),
        pytest.param(f"course={DA}", PRODUCTION, PERSON, CATALOG, None, id="deployment-keeps-none"),
        pytest.param(
            f"course={DA}",
            KEEP,
            PERSON,
            _catalog_with(DA, KeptWork(enabled=False)),
            None,
            id="course-opts-out",
        ),
        pytest.param(
            f"course={DA}",
            KEEP,
            PERSON,
            _catalog_with(DA, KeptWork(size=2 * GiB)),
            replace(WORK_DA, size=2 * GiB),
            id="course-size",
        ),
        pytest.param(
            f"course={DL}",
            KEEP,
            PERSON,
            CATALOG,
            WorkVolume(f"work-{PERSON}-{DL}", PERSON, DL, GiB),
            id="one-volume-per-course",
        ),
    ],
)
def test_kept_work(
    query_string: str,
    launch: LaunchSettings,
    person: str | None,
    catalog: Catalog,
    expected: WorkVolume | None,
) -> None:
    planned = plan_launch(query_arguments(query_string), catalog, IMAGE_MAP, launch, person)
    assert planned.work == expected


def test_kept_work_changes_nothing_else_in_the_plan() -> None:
    planned = plan_launch(query_arguments(f"course={DA}"), CATALOG, IMAGE_MAP, KEEP, PERSON)
    assert planned == replace(PLAN_DA, work=WORK_DA)


# (query string, settings, the whole plan)
GOOD = [
    pytest.param(
        f"course={DA}&notebook={NB}", PRODUCTION, PLAN_DA_NB, id="cpu-course-with-notebook"
    ),
    pytest.param(f"course={DA}", PRODUCTION, PLAN_DA, id="no-notebook"),
    pytest.param(f"course={DA}&notebook=", PRODUCTION, PLAN_DA, id="empty-notebook"),
    pytest.param(
        f"course={DA}&notebook=lectures%2F01-dataframes%2Fdataframes.ipynb",
        PRODUCTION,
        PLAN_DA_NB,
        id="encoded-slashes-decoded",
    ),
    pytest.param(
        f"course={DA}&notebook=./lectures//01-dataframes/./dataframes.ipynb",
        PRODUCTION,
        PLAN_DA_NB,
        id="normalized",
    ),
    pytest.param(
        "course=intro-ml&notebook=notebooks/My%20Notebook.ipynb",
        PRODUCTION,
        replace(
            PLAN_ML,
            notebook="notebooks/My Notebook.ipynb",
            url="/lab/tree/notebooks/My%20Notebook.ipynb",
        ),
        id="space-quoted-in-url",
    ),
    pytest.param(
        "course=intro-ml&notebook=notebooks/100%25%20sure.ipynb",
        PRODUCTION,
        replace(
            PLAN_ML,
            notebook="notebooks/100% sure.ipynb",
            url="/lab/tree/notebooks/100%25%20sure.ipynb",
        ),
        id="percent-in-name",
    ),
    pytest.param(
        f"course={DL}",
        replace(PRODUCTION, memory_request_is_limit=True),
        replace(PLAN_DL_GPU, memory_guarantee=PLAN_DL_GPU.memory_limit),
        id="memory-request-is-the-limit",
    ),
    pytest.param(f"course={DL}", PRODUCTION, PLAN_DL_GPU, id="gpu-course-gets-gpu"),
    pytest.param(f"course={DL}&needs_gpu=true", PRODUCTION, PLAN_DL_GPU, id="gpu-true"),
    pytest.param(f"course={DL}&needs_gpu=YES", PRODUCTION, PLAN_DL_GPU, id="gpu-yes"),
    pytest.param(f"course={DL}&needs_gpu=1", PRODUCTION, PLAN_DL_GPU, id="gpu-1"),
    pytest.param(f"course={DL}&needs_gpu=false", PRODUCTION, PLAN_DL_CPU, id="gpu-false"),
    pytest.param(f"course={DL}&needs_gpu=0", PRODUCTION, PLAN_DL_CPU, id="gpu-0"),
    pytest.param(f"course={DL}&needs_gpu=no", PRODUCTION, PLAN_DL_CPU, id="gpu-no"),
    pytest.param(f"course={DL}&needs_gpu=%20False%20", PRODUCTION, PLAN_DL_CPU, id="gpu-False"),
    pytest.param(f"course={DA}&needs_gpu=true", PRODUCTION, PLAN_DA, id="cpu-course-ignores-gpu"),
    # Empty or blank: not given, so the course decides (one meaning for both spellings).
    pytest.param(f"course={DL}&needs_gpu=", PRODUCTION, PLAN_DL_GPU, id="gpu-empty-is-unset"),
    pytest.param(f"course={DL}&needs_gpu=%20", PRODUCTION, PLAN_DL_GPU, id="gpu-blank-is-unset"),
    pytest.param(f"course={DL}", LOCAL, PLAN_DL_CPU, id="no-gpus-in-deployment"),
    # `gpu = ["train.ipynb"]`: that notebook's link plans a GPU (the CUDA image), the others and
    # the home folder a CPU server (the CPU image) unless the link asks for a GPU.
    pytest.param(
        "course=vision-lab&notebook=train.ipynb",
        PRODUCTION,
        replace(
            PLAN_DL_GPU,
            course="vision-lab",
            notebook="train.ipynb",
            url="/lab/tree/train.ipynb",
            image=IMAGE_MAP["vision-lab"],
        ),
        id="gpu-notebook-gets-gpu",
    ),
    pytest.param(
        "course=vision-lab&notebook=explore.ipynb",
        PRODUCTION,
        replace(
            PLAN_DL_CPU,
            course="vision-lab",
            notebook="explore.ipynb",
            url="/lab/tree/explore.ipynb",
            image=IMAGE_MAP["vision-lab--cpu"],
        ),
        id="other-notebook-of-gpu-course-plans-cpu",
    ),
    pytest.param(
        "course=vision-lab",
        PRODUCTION,
        replace(PLAN_DL_CPU, course="vision-lab", image=IMAGE_MAP["vision-lab--cpu"]),
        id="home-of-per-notebook-gpu-course-plans-cpu",
    ),
    pytest.param(
        "course=vision-lab&notebook=explore.ipynb&needs_gpu=true",
        PRODUCTION,
        replace(
            PLAN_DL_GPU,
            course="vision-lab",
            notebook="explore.ipynb",
            url="/lab/tree/explore.ipynb",
            image=IMAGE_MAP["vision-lab"],
        ),
        id="other-notebook-asks-for-gpu",
    ),
    pytest.param(
        "course=vision-lab&notebook=train.ipynb",
        LOCAL,
        replace(
            PLAN_DL_CPU,
            course="vision-lab",
            notebook="train.ipynb",
            url="/lab/tree/train.ipynb",
            image=IMAGE_MAP["vision-lab--cpu"],
        ),
        id="gpu-notebook-without-gpus-runs-cpu-image",
    ),
    pytest.param(
        f"course={DA}&tag=pr-42",
        PREVIEW,
        replace(PLAN_DA, image=f"{REGISTRY}:pr-42", tag="pr-42"),
        id="published-preview-tag",
    ),
    pytest.param(f"course={DA}&tag=", PRODUCTION, PLAN_DA, id="empty-tag"),
    pytest.param(
        f"opt-course={DA}&opt-notebook={NB}",
        PRODUCTION,
        PLAN_DA_NB,
        id="opt-prefix",
    ),
    pytest.param(f"opt-course={DA}&course=unknown", PRODUCTION, PLAN_DA, id="opt-prefix-wins"),
    pytest.param(f"course={DA}&course={DA}", PRODUCTION, PLAN_DA, id="same-course-twice"),
    pytest.param(
        f"course={DA}&utm_source=mail&next=/evil", PRODUCTION, PLAN_DA, id="others-ignored"
    ),
    pytest.param(f"course=%20{DA}%20", PRODUCTION, PLAN_DA, id="spaces-around-course"),
]

# (query string, settings, status, reason)
BAD = [
    pytest.param("", PRODUCTION, 400, "no-course", id="nothing"),
    pytest.param(f"notebook={NB}", PRODUCTION, 400, "no-course", id="no-course"),
    pytest.param("course=", PRODUCTION, 400, "no-course", id="empty-course"),
    pytest.param("course=nope", PRODUCTION, 404, "unknown-course", id="unknown-course"),
    pytest.param("course=DATA-ANALYTICS", PRODUCTION, 404, "unknown-course", id="case-matters"),
    pytest.param("course=unbuilt", PRODUCTION, 503, "course-unavailable", id="no-image"),
    pytest.param(f"course={DA}&course={DL}", PRODUCTION, 400, "ambiguous-course", id="two-courses"),
    pytest.param(
        f"course={DA}&notebook=/etc/passwd", PRODUCTION, 400, "unsafe-notebook", id="absolute"
    ),
    pytest.param(
        f"course={DA}&notebook=/home/jovyan/{NB}",
        PRODUCTION,
        400,
        "unsafe-notebook",
        id="absolute-home",
    ),
    pytest.param(
        f"course={DA}&notebook=../../etc/passwd", PRODUCTION, 400, "unsafe-notebook", id="dotdot"
    ),
    pytest.param(
        f"course={DA}&notebook=lectures/../{NB}",
        PRODUCTION,
        400,
        "unsafe-notebook",
        id="dotdot-inside",
    ),
    pytest.param(
        f"course={DA}&notebook=%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        PRODUCTION,
        400,
        "unsafe-notebook",
        id="encoded-dotdot",
    ),
    pytest.param(
        f"course={DA}&notebook=%252e%252e%252fetc%252fpasswd",
        PRODUCTION,
        400,
        "unsafe-notebook",
        id="double-encoded-dotdot",
    ),
    pytest.param(
        f"course={DA}&notebook=%252Fetc%252Fpasswd",
        PRODUCTION,
        400,
        "unsafe-notebook",
        id="double-encoded-abs",
    ),
    pytest.param(
        f"course={DA}&notebook=..%5C..%5Cwindows",
        PRODUCTION,
        400,
        "unsafe-notebook",
        id="backslash",
    ),
    pytest.param(f"course={DA}&notebook=a%00.ipynb", PRODUCTION, 400, "unsafe-notebook", id="nul"),
    pytest.param(
        f"course={DA}&notebook=a%0a.ipynb", PRODUCTION, 400, "unsafe-notebook", id="newline"
    ),
    pytest.param(
        f"course={DA}&notebook=a%c2%85.ipynb", PRODUCTION, 400, "unsafe-notebook", id="c1-control"
    ),
    pytest.param(
        f"course={DA}&notebook=other.ipynb", PRODUCTION, 404, "unknown-notebook", id="not-in-course"
    ),
    pytest.param(
        f"course={DA}&notebook=lectures/lecture1/tensors.ipynb",
        PRODUCTION,
        404,
        "unknown-notebook",
        id="other-course-notebook",
    ),
    pytest.param(
        f"course={DA}&notebook=lectures", PRODUCTION, 404, "unknown-notebook", id="directory"
    ),
    pytest.param(
        f"course={DA}&notebook=lectures%252F01-dataframes%252Fdataframes.ipynb",
        PRODUCTION,
        404,
        "unknown-notebook",
        id="double-encoded-is-not-decoded-twice",
    ),
    pytest.param(
        f"course={DL}&needs_gpu=maybe", PRODUCTION, 400, "bad-needs-gpu", id="needs-gpu-garbage"
    ),
    pytest.param(f"course={DA}&tag=pr-42", PRODUCTION, 403, "tag-refused", id="tags-disabled"),
    pytest.param(f"course={DA}&tag=latest", PREVIEW, 403, "tag-refused", id="unpublished-tag"),
    pytest.param(f"course={DL}&tag=pr-42", PREVIEW, 403, "tag-refused", id="tag-of-other-course"),
    pytest.param(
        f"course={DA}&tag=pr-42@sha256:00", PREVIEW, 403, "tag-refused", id="tag-with-digest"
    ),
]


@pytest.mark.parametrize("query_string, launch, expected", GOOD)
def test_good_links(query_string: str, launch: LaunchSettings, expected: LaunchPlan) -> None:
    assert plan(query_string, launch) == expected


@pytest.mark.parametrize("query_string, launch, status, reason", BAD)
def test_bad_links(query_string: str, launch: LaunchSettings, status: int, reason: str) -> None:
    with pytest.raises(LaunchError) as caught:
        plan(query_string, launch)
    error = caught.value
    assert (error.status, error.reason) == (status, reason)
    assert error.message and "Traceback" not in error.message
    # The learner is always offered the courses that can be launched, and only those.
    assert [c.slug for c in error.courses] == [
        "data-analytics",
        "deep-learning-gpu",
        "intro-ml",
        "vision-lab",
    ]


def test_gpu_course_without_its_cpu_image_is_unavailable_without_a_gpu() -> None:
    """A map that lacks a GPU course's CPU image (built before there was one) never puts the
    CUDA image on a CPU server: such a launch is a 503; with a GPU it starts."""
    image_map = {k: v for k, v in IMAGE_MAP.items() if k != f"{DL}--cpu"}
    assert plan_launch(query_arguments(f"course={DL}"), CATALOG, image_map, PRODUCTION).gpu
    with pytest.raises(LaunchError) as caught:
        plan_launch(query_arguments(f"course={DL}&needs_gpu=false"), CATALOG, image_map, PRODUCTION)
    assert (caught.value.status, caught.value.reason) == (503, "course-unavailable")


def test_unknown_course_message_names_it_safely() -> None:
    with pytest.raises(LaunchError) as caught:
        plan("course=" + quote("x" * 500 + "\x1b[31m"))
    message = caught.value.message
    assert len(message) < 300 and "\x1b" not in message


def test_notebook_error_lists_the_course_notebooks() -> None:
    with pytest.raises(LaunchError) as caught:
        plan(f"course={DA}&notebook=nope.ipynb")
    assert all(notebook in caught.value.message for notebook in CATALOG[DA].notebooks)


# JupyterHub hands `options_from_query` lists of strings; the REST API hands any JSON.
# (options as they arrive, settings) -> the whole plan
OPTIONS = [
    pytest.param({"course": [DA], "notebook": [NB]}, PRODUCTION, PLAN_DA_NB, id="lists-of-strings"),
    pytest.param({"course": DA}, PRODUCTION, PLAN_DA, id="a-plain-string"),
]
# (options as they arrive, settings) -> the refusal's reason
BAD_OPTIONS = [
    pytest.param({"course": 5}, PREVIEW, "bad-course", id="a-number"),
    pytest.param({"course": {"a": 1}}, PREVIEW, "bad-course", id="a-mapping"),
    pytest.param({"course": [None]}, PREVIEW, "bad-course", id="a-list-of-null"),
    pytest.param({"course": [DA], "tag": 1}, PREVIEW, "bad-tag", id="a-number-tag"),
]


@pytest.mark.parametrize("options, launch, expected", OPTIONS)
def test_values_as_jupyterhub_passes_them(
    options: dict[str, Any], launch: LaunchSettings, expected: LaunchPlan
) -> None:
    assert plan_launch(options, CATALOG, IMAGE_MAP, launch) == expected


@pytest.mark.parametrize("options, launch, reason", BAD_OPTIONS)
def test_values_that_are_not_text_are_refused(
    options: dict[str, Any], launch: LaunchSettings, reason: str
) -> None:
    with pytest.raises(LaunchError) as caught:
        plan_launch(options, CATALOG, IMAGE_MAP, launch)
    assert (caught.value.status, caught.value.reason) == (400, reason)


def test_every_plan_starts_clean() -> None:
    """Nothing of an earlier plan (GPU, image, URL) leaks into the next one."""
    gpu = plan(f"course={DL}&notebook=lectures/lecture1/tensors.ipynb")
    cpu = plan(f"course={DA}")
    assert gpu.gpu and not cpu.gpu
    assert cpu == plan(f"course={DA}")
    assert (cpu.image, cpu.url, cpu.tolerations, cpu.node_selector) == (
        IMAGE_MAP[DA],
        "/lab",
        (),
        {},
    )


@pytest.mark.parametrize(
    "query_string, launch, user_options",
    [
        pytest.param(
            f"course={DL}&needs_gpu=no",
            PRODUCTION,
            {"course": DL, "needs_gpu": "false"},
            id="gpu-course-without-gpu",
        ),
        pytest.param(
            f"course={DA}&notebook={NB}&tag=pr-42",
            PREVIEW,
            {"course": DA, "needs_gpu": "false", "notebook": NB, "tag": "pr-42"},
            id="notebook-and-tag",
        ),
        pytest.param(
            "course=intro-ml&notebook=notebooks/100%25%20sure.ipynb",
            PRODUCTION,
            {"course": "intro-ml", "needs_gpu": "false", "notebook": "notebooks/100% sure.ipynb"},
            id="percent-in-name",
        ),
    ],
)
def test_user_options_reproduce_the_plan(
    query_string: str, launch: LaunchSettings, user_options: dict[str, str]
) -> None:
    first = plan(query_string, launch)
    assert first.user_options() == user_options
    assert plan_launch(user_options, CATALOG, IMAGE_MAP, launch) == first


@pytest.mark.parametrize(
    "text, value",
    [("true", True), ("1", True), ("yes", True), ("On", True), ("false", False), ("0", False)]
    + [("no", False), ("OFF", False), ("", None), (" ", None), ("maybe", None), ("2", None)],
)
def test_parse_bool(text: str, value: bool | None) -> None:
    assert parse_bool(text) is value


@pytest.mark.parametrize(
    "reference, tag, expected",
    [
        (f"{REGISTRY}:x-1", "pr-1", f"{REGISTRY}:pr-1"),
        ("repo:old", "new", "repo:new"),
        ("repo", "new", "repo:new"),
        ("reg:5000/a/b@sha256:" + "0" * 64, "t", "reg:5000/a/b:t"),
    ],
)
def test_image_with_tag(reference: str, tag: str, expected: str) -> None:
    assert image_with_tag(reference, tag) == expected


def test_lab_url_quotes() -> None:
    assert lab_url("a b/c#d?.ipynb") == "/lab/tree/a%20b/c%23d%3F.ipynb"


# --- Properties over arbitrary query strings --------------------------------------------------

ALL_SETTINGS = (PRODUCTION, PREVIEW, LOCAL, LaunchSettings(allow_preview_tags=True))
LAUNCHABLE = tuple(c.slug for c in launchable_courses(CATALOG, IMAGE_MAP))


def allowed_images(launch: LaunchSettings) -> set[str]:
    images = set(IMAGE_MAP.values())
    if launch.allow_preview_tags:
        for slug, tags in launch.preview_tags.items():
            images.update(image_with_tag(IMAGE_MAP[slug], tag) for tag in tags)
    return images


def url_inside_home(url: str) -> bool:
    if url == "/lab":
        return True
    if not url.startswith("/lab/tree/"):
        return False
    path = unquote(url[len("/lab/tree/") :])
    return (
        normalize_notebook_path(path) == path and quote(path, safe="/") == url[len("/lab/tree/") :]
    )


def argument_of(query: Any, name: str) -> str | None:
    """The one non-blank text a planned query gave for `name`, without the surrounding
    whitespace that links pasted from documents carry (None: not given)."""
    raw = query.get(name)
    values = raw if isinstance(raw, (list, tuple)) else [] if raw is None else [raw]
    texts = {v.decode() if isinstance(v, bytes) else v for v in values}
    texts = {t for t in texts if t.strip()}
    assert len(texts) <= 1, (name, raw)
    return texts.pop().strip() if texts else None


def check_outcome(query: Any, launch: LaunchSettings) -> None:
    """Either a plan that obeys every rule, or a LaunchError; nothing else escapes."""
    try:
        result = plan_launch(query, CATALOG, IMAGE_MAP, launch)
    except LaunchError as error:
        event(f"error: {error.reason}")
        assert 400 <= error.status < 600 and error.message
        assert tuple(c.slug for c in error.courses) == LAUNCHABLE
        return
    event(
        "plan" + (" with notebook" if result.notebook else "") + (" with tag" if result.tag else "")
    )
    course = CATALOG[result.course]
    assert result.course in IMAGE_MAP
    assert result.image in allowed_images(launch)
    # The CUDA image (`<slug>`) exactly when the server has a GPU; a GPU course's server
    # without one runs its CPU image (`<slug>--cpu`).
    key = result.course if result.gpu or not course.gpu else f"{result.course}--cpu"
    assert result.image == IMAGE_MAP[key] or (
        launch.allow_preview_tags and result.tag in launch.preview_tags.get(result.course, ())
    )
    assert url_inside_home(result.url), result.url
    assert result.notebook is None or result.notebook in course.notebooks
    assert result.url == lab_url(result.notebook)
    assert result.memory_limit == course.resources.memory_limit
    assert result.cpu_guarantee == course.resources.cpu_guarantee
    if result.gpu:
        assert course.gpu and launch.gpu is not None
        assert result.tolerations == GPU.tolerations and result.node_selector == GPU.node_selector
    else:
        assert result.tolerations == () and result.node_selector == {}
    # The plan is its input's: the course the link names, the GPU its needs_gpu and the course
    # decide (worked out here from the raw query, not by the planner's own helpers).
    assert argument_of(query, "course") == result.course
    asked = argument_of(query, "needs_gpu")
    by_default = course.gpu and (
        not course.gpu_notebooks or result.notebook in course.gpu_notebooks
    )
    wants_gpu = (
        by_default
        if asked is None
        else asked.strip().lower() in {"true", "1", "yes", "on", "y", "t"}
    )
    assert result.gpu == (
        wants_gpu and course.gpu and launch.gpu is not None and launch.gpu.count > 0
    )
    # Same input, same plan; and the stored options give the same plan again (no carry-over).
    assert plan_launch(query, CATALOG, IMAGE_MAP, launch) == result
    assert plan_launch(result.user_options(), CATALOG, IMAGE_MAP, launch) == result


# Pieces that make interesting links: real names, traversal, encodings, controls, junk.
NAMES = st.sampled_from(
    ["course", "notebook", "needs_gpu", "tag", "opt-course", "opt-notebook", "next", "x"]
)
FRAGMENTS = st.sampled_from(
    [
        *LAUNCHABLE,
        "unbuilt",
        *CATALOG["data-analytics"].notebooks,
        *CATALOG["deep-learning-gpu"].notebooks,
        "notebooks/My%20Notebook.ipynb",
        "notebooks/100%25%20sure.ipynb",
        "..",
        "../",
        "%2e%2e%2f",
        "%252e%252e%252f",
        "/",
        "%2F",
        "./",
        "//",
        "\\",
        "%5C",
        "%00",
        "%0a",
        "%c2%85",
        "%ff",
        "%",
        "&",
        "=",
        "+",
        ";",
        "#",
        "true",
        "false",
        "0",
        "no",
        "pr-42",
        "data-analytics-next",
        "latest",
        "/home/jovyan/",
        "C:",
        "~",
        ".ipynb",
    ]
)
VALUES = st.lists(FRAGMENTS | st.text(max_size=8), max_size=4).map("".join)
QUERY_STRINGS = st.lists(st.tuples(NAMES, VALUES), max_size=6).map(
    lambda pairs: "&".join(f"{name}={value}" for name, value in pairs)
)
ALL_NOTEBOOKS = tuple(nb for course in CATALOG for nb in course.notebooks)
ENCODINGS = st.sampled_from(
    [
        lambda v: v,
        lambda v: quote(v, safe="/"),
        lambda v: quote(v, safe=""),
        lambda v: quote(quote(v, safe=""), safe=""),
    ]
)
COURSE_VALUES = st.sampled_from(LAUNCHABLE) | VALUES
NOTEBOOK_VALUES = st.one_of(
    st.sampled_from(ALL_NOTEBOOKS),
    st.tuples(VALUES, st.sampled_from(ALL_NOTEBOOKS), VALUES).map("".join),
    VALUES,
)
GPU_VALUES = st.sampled_from(["true", "false", "1", "0", "yes", "no", "YES", " off "]) | VALUES
TAG_VALUES = st.sampled_from(["pr-42", "data-analytics-next", "latest"]) | VALUES


def sometimes(draw: Any, percent: int) -> bool:
    return draw(st.integers(0, 99)) < percent


@st.composite
def links(draw: Any) -> str:
    """Query strings shaped like real launch links (mostly a real course and one of its
    notebooks), then mutated, encoded, prefixed and shuffled: where the interesting cases are."""
    real = st.sampled_from(LAUNCHABLE)
    course = draw(real) if sometimes(draw, 85) else draw(VALUES)
    notebooks = CATALOG[course].notebooks if course in CATALOG else ALL_NOTEBOOKS
    own = st.sampled_from(notebooks)
    pairs = [("course", course)]
    if sometimes(draw, 10):
        pairs.append(("course", draw(COURSE_VALUES)))
    if sometimes(draw, 70):
        if sometimes(draw, 60):
            notebook = draw(own)
        elif sometimes(draw, 50):
            notebook = draw(st.tuples(VALUES, own, VALUES).map("".join))
        else:
            notebook = draw(VALUES)
        pairs.append(("notebook", notebook))
    if sometimes(draw, 40):
        pairs.append(("needs_gpu", draw(GPU_VALUES)))
    if sometimes(draw, 30):
        pairs.append(("tag", draw(TAG_VALUES)))
    if sometimes(draw, 15):
        pairs.append((draw(NAMES), draw(VALUES)))
    all_prefixed = sometimes(draw, 10)
    parts = []
    for name, value in pairs:
        if all_prefixed or sometimes(draw, 3):
            name = f"opt-{name}"
        parts.append(f"{name}={draw(ENCODINGS)(value)}")
    return "&".join(draw(st.permutations(parts)))


LINKS = links()
PROPERTY_SETTINGS = settings(
    max_examples=10_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(
    query_string=st.one_of(LINKS, LINKS, LINKS, LINKS, st.text(), QUERY_STRINGS),
    launch=st.sampled_from(ALL_SETTINGS),
)
@example(query_string=f"course={DA}&notebook=%2e%2e/%2e%2e/etc/passwd", launch=PRODUCTION)
@example(
    query_string=f"course={DA}&notebook=lectures/01-dataframes/dataframes.ipynb%00",
    launch=PRODUCTION,
)
@example(query_string=f"course={DA}&tag=pr-42", launch=PREVIEW)
def test_property_arbitrary_query_strings(query_string: str, launch: LaunchSettings) -> None:
    check_outcome(query_arguments(query_string), launch)


SCALARS = st.none() | st.booleans() | st.integers() | FRAGMENTS | VALUES
JSONISH = (
    SCALARS
    | st.lists(SCALARS, max_size=3)
    | st.dictionaries(st.text(max_size=3), SCALARS, max_size=2)
)


@settings(max_examples=2_000, deadline=None, database=None)
@given(
    options=st.fixed_dictionaries(
        {"course": st.sampled_from(LAUNCHABLE) | JSONISH},
        optional={
            "notebook": NOTEBOOK_VALUES | JSONISH,
            "needs_gpu": GPU_VALUES | JSONISH,
            "tag": TAG_VALUES | JSONISH,
            "image": JSONISH,
        },
    )
    | st.dictionaries(NAMES, JSONISH, max_size=5),
    launch=st.sampled_from(ALL_SETTINGS),
)
@example(options={"course": "data-analytics", "image": "evil:latest"}, launch=PRODUCTION)
def test_property_arbitrary_user_options(options: dict[str, Any], launch: LaunchSettings) -> None:
    """user_options can also arrive through the REST API as any JSON: same guarantees."""
    check_outcome(options, launch)


@settings(max_examples=500, deadline=None, database=None)
@given(
    notebook=st.sampled_from(CATALOG["data-analytics"].notebooks),
    junk=st.text(string.printable, max_size=5),
)
def test_property_only_listed_notebooks_open(notebook: str, junk: str) -> None:
    query = {"course": DA, "notebook": notebook + junk}
    try:
        result = plan_launch(query, CATALOG, IMAGE_MAP, PRODUCTION)
    except LaunchError:
        return
    assert result.notebook in CATALOG[DA].notebooks
