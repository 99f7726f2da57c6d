"""The catalog's rules for one course's metadata: parametrized input -> expected pairs."""

from __future__ import annotations

import json

import pytest

from catalog import (
    CatalogError,
    course_from_dict,
    course_to_dict,
    format_memory,
    normalize_notebook_path,
    parse_course,
    parse_memory,
)

FILES = ["course.toml", "requirements.txt", "lectures/l1/intro.ipynb", "a2.ipynb", "data/x.csv"]
GOOD = """
title = "Intro"
flavor = "pytorch"
notebooks = ["lectures/l1/intro.ipynb", "a2.ipynb"]
"""


def test_minimal_course_gets_defaults() -> None:
    course = parse_course("intro", GOOD, FILES)
    assert course.slug == "intro"
    assert course.title == "Intro"
    assert course.flavor == "pytorch"
    assert course.gpu is False
    assert course.notebooks == ("lectures/l1/intro.ipynb", "a2.ipynb")
    assert course.resources.memory_limit == 2 * 2**30
    assert course.resources.memory_guarantee <= course.resources.memory_limit
    assert course.base_image == "images/base:pytorch"
    assert course.has_dockerfile is False
    assert course.smoke_test.network is False


def test_full_course() -> None:
    text = """
title = "Deep learning"
description = "GPU course"
flavor = "tensorflow"
gpu = true
notebooks = ["./lectures/l1/intro.ipynb"]
[resources]
memory_limit = "4G"
memory_guarantee = "512Mi"
cpu_limit = 2
cpu_guarantee = 0.5
[smoke_test]
timeout_seconds = 120
network = true
[[data]]
path = "data/big.parquet"
url = "https://example.org/big.parquet"
sha256 = "%s"
""" % (
        "a" * 64
    )
    course = parse_course("dl", text, [*FILES, "Dockerfile"])
    assert course.gpu is True
    assert course.notebooks == ("lectures/l1/intro.ipynb",)
    assert course.resources.memory_limit == 4_000_000_000
    assert course.resources.memory_guarantee == 512 * 2**20
    assert course.resources.cpu_limit == 2.0
    assert course.smoke_test.timeout_seconds == 120 and course.smoke_test.network
    assert course.data[0].path == "data/big.parquet"
    assert course.has_dockerfile


@pytest.mark.parametrize(
    ("slug", "text", "files", "field", "message"),
    [
        ("Bad_Slug", GOOD, FILES, "", "image tag"),
        ("x", "title = ", FILES, "", "not valid TOML"),
        ("x", GOOD + 'colour = "red"\n', FILES, "colour", "unknown field"),
        ("x", GOOD.replace('title = "Intro"', ""), FILES, "title", "required"),
        ("x", GOOD.replace("pytorch", "jax"), FILES, "flavor", "pytorch, tensorflow"),
        ("x", GOOD + "gpu = 'yes'\n", FILES, "gpu", "must be true (every link"),
        ("x", GOOD + "gpu = []\n", FILES, "gpu", "or the notebooks that need one"),
        ("x", GOOD + "gpu = ['data/x.csv']\n", FILES, "gpu", "'data/x.csv' is not one of"),
        ("a--cpu", GOOD, FILES, "", "single '-'"),
        ("x" * 59, GOOD + "gpu = true\n", FILES, "", "at most 58 characters"),
        ("x", GOOD, ["lectures/l1/intro.ipynb", "a2.ipynb"], "requirements.txt", "missing"),
        ("x", GOOD.replace("a2.ipynb", "gone.ipynb"), FILES, "notebooks", "does not exist"),
        ("x", GOOD.replace("a2.ipynb", "../a2.ipynb"), FILES, "notebooks", "relative path"),
        ("x", GOOD.replace("a2.ipynb", "/abs.ipynb"), FILES, "notebooks", "relative path"),
        ("x", GOOD.replace("a2.ipynb", "data/x.csv"), FILES, "notebooks", ".ipynb"),
        ("x", GOOD.replace('"a2.ipynb"', '"a2.ipynb", "a2.ipynb"'), FILES, "notebooks", "twice"),
        (
            "x",
            GOOD.replace('notebooks = ["lectures/l1/intro.ipynb", "a2.ipynb"]', "notebooks = []"),
            FILES,
            "notebooks",
            "must list",
        ),
        (
            "x",
            GOOD + "[resources]\nmemory_limit = 'lots'\n",
            FILES,
            "resources.memory_limit",
            "memory size",
        ),
        (
            "x",
            GOOD + "[resources]\nmemory_limit = '1G'\nmemory_guarantee = '2G'\n",
            FILES,
            "resources.memory_guarantee",
            "exceed",
        ),
        ("x", GOOD + "[resources]\ncpu_limit = 0\n", FILES, "resources.cpu_limit", "> 0"),
        (
            "x",
            GOOD + "[resources]\ncpu_limit = 1\ncpu_guarantee = 2\n",
            FILES,
            "resources.cpu_guarantee",
            "exceed",
        ),
        ("x", GOOD + "[resources]\ndisk = '1G'\n", FILES, "resources.disk", "unknown field"),
        (
            "x",
            GOOD + "[smoke_test]\ntimeout_seconds = -1\n",
            FILES,
            "smoke_test.timeout_seconds",
            "> 0",
        ),
        (
            "x",
            GOOD + "[smoke_test]\nnetwork = ['nope.ipynb']\n",
            FILES,
            "smoke_test.network",
            "'nope.ipynb' is not a notebook of the course directory",
        ),
        (
            "x",
            GOOD + "[smoke_test]\noutputs = 'exact'\n",
            FILES,
            "smoke_test.outputs",
            'must be "warn"',
        ),
        (
            "x",
            GOOD + "[smoke_test]\nnetwork = 'yes'\n",
            FILES,
            "smoke_test.network",
            "must be true, false or the notebooks that need it",
        ),
        (
            "x",
            GOOD + "[smoke_test]\nskip = ['a2.ipynb']\n",
            FILES,
            "smoke_test.skip",
            "must be a table",
        ),
        (
            "x",
            GOOD + "[smoke_test]\nskip = {'lab.ipynb' = 'needs a GPU'}\n",
            FILES,
            "smoke_test.skip",
            "'lab.ipynb' is not a notebook of the course directory",
        ),
        (
            "x",
            GOOD + "[smoke_test]\nskip = {'a2.ipynb' = ' '}\n",
            FILES,
            "smoke_test.skip.a2.ipynb",
            "needs a reason",
        ),
        (
            "x",
            GOOD + "[[data]]\npath = 'd'\nurl = 'http://x'\nsha256 = '%s'\n" % ("a" * 64),
            FILES,
            "data[0].url",
            "https",
        ),
        (
            "x",
            GOOD + "[[data]]\npath = 'd'\nurl = 'https://x'\nsha256 = 'abc'\n",
            FILES,
            "data[0].sha256",
            "sha256",
        ),
        (
            "x",
            GOOD + "[[data]]\npath = '../d'\nurl = 'https://x'\nsha256 = '%s'\n" % ("a" * 64),
            FILES,
            "data[0].path",
            "inside",
        ),
        (
            "x",
            GOOD
            + "[[data]]\npath = 'd'\nurl = 'https://x'\nsha256 = '%s'\nunpack = 'yes'\n"
            % ("a" * 64),
            FILES,
            "data[0].unpack",
            "true or false",
        ),
    ],
)
def test_bad_metadata_names_file_field_and_rule(
    slug: str, text: str, files: list[str], field: str, message: str
) -> None:
    with pytest.raises(CatalogError) as error:
        parse_course(slug, text, files)
    assert error.value.field_name == field
    assert message in str(error.value)
    assert f"courses/{slug}" in str(error.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2G", 2_000_000_000),
        ("512Mi", 512 * 2**20),
        ("1.5Gi", 3 * 2**29),
        (1024, 1024),
        ("100", 100),
    ],
)
def test_memory_sizes(value: object, expected: int) -> None:
    assert parse_memory(value, "f", "m") == expected


@pytest.mark.parametrize("value", ["", "2GB", "-1G", "0", True, 0, "1 G G"])
def test_bad_memory_sizes(value: object) -> None:
    with pytest.raises(CatalogError):
        parse_memory(value, "f", "m")


@pytest.mark.parametrize(
    ("amount", "text"), [(2**31, "2Gi"), (10**9, "1G"), (1536 * 2**20, "1536Mi"), (7, "7")]
)
def test_format_memory_round_trips(amount: int, text: str) -> None:
    assert format_memory(amount) == text
    assert parse_memory(text, "f", "m") == amount


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a.ipynb", "a.ipynb"),
        ("./l/../a.ipynb", "a.ipynb"),
        ("l//x.ipynb", "l/x.ipynb"),
        ("../a.ipynb", None),
        ("l/../../a.ipynb", None),
        ("/etc/passwd", None),
        ("a\x00.ipynb", None),
        ("a\nb.ipynb", None),
        ("a\\b.ipynb", None),
        ("", None),
        (".", None),
    ],
)
def test_normalize_notebook_path(path: str, expected: str | None) -> None:
    assert normalize_notebook_path(path) == expected


def test_every_notebook_of_the_directory_is_the_courses() -> None:
    """Unlisted notebooks get no launch link but are checked and smoke-tested; `skip` names the
    ones left out of the smoke test, each with its reason."""
    files = [*FILES, "extra/helper.ipynb", ".ipynb_checkpoints/a2-checkpoint.ipynb", "b.ipynb"]
    text = GOOD + "[smoke_test]\nskip = {'./b.ipynb' = 'trains for hours'}\n"
    course = parse_course("intro", text, files)
    assert course.notebooks == ("lectures/l1/intro.ipynb", "a2.ipynb")
    assert course.other_notebooks == ("b.ipynb", "extra/helper.ipynb")
    assert course.all_notebooks == (*course.notebooks, "b.ipynb", "extra/helper.ipynb")
    assert course.smoke_test.skip == (("b.ipynb", "trains for hours"),)
    assert course.smoke_tested_notebooks == (*course.notebooks, "extra/helper.ipynb")


@pytest.mark.parametrize(
    ("network", "expected", "with_network"),
    [
        ("true", True, {"a2.ipynb", "lectures/l1/intro.ipynb"}),
        ("false", False, set()),
        ("['./a2.ipynb']", ("a2.ipynb",), {"a2.ipynb"}),
    ],
    ids=["every-notebook", "none", "one-notebook"],
)
def test_network_per_notebook(network: str, expected: object, with_network: set[str]) -> None:
    course = parse_course("intro", GOOD + f"[smoke_test]\nnetwork = {network}\n", FILES)
    assert course.smoke_test.network == expected
    assert {n for n in course.all_notebooks if course.smoke_test.has_network(n)} == with_network
    assert course_from_dict(course_to_dict(course)) == course


@pytest.mark.parametrize(
    ("gpu", "gpu_notebooks", "by_default", "keys"),
    [
        # a CPU course: one image, never a GPU
        ("false", (), {None: False, "a2.ipynb": False}, ("x",)),
        # every link plans a GPU; a server without one runs the CPU image `x--cpu`
        ("true", (), {None: True, "a2.ipynb": True, "lectures/l1/intro.ipynb": True}, None),
        # one notebook needs the GPU: the others and the home folder plan a CPU server
        (
            "['./a2.ipynb', 'a2.ipynb']",
            ("a2.ipynb",),
            {None: False, "a2.ipynb": True, "lectures/l1/intro.ipynb": False},
            None,
        ),
    ],
)
def test_gpu_per_notebook(
    gpu: str,
    gpu_notebooks: tuple[str, ...],
    by_default: dict[str | None, bool],
    keys: tuple[str, ...] | None,
) -> None:
    course = parse_course("x", GOOD + f"gpu = {gpu}\n", FILES)
    assert course.gpu_notebooks == gpu_notebooks
    assert {nb: course.gpu_by_default(nb) for nb in by_default} == by_default
    assert course.image_keys == (keys or ("x", "x--cpu"))
    assert course.image_key(gpu=True) == "x"
    assert course.image_key(gpu=False) == course.image_keys[-1]
    assert [course.base_image_of(k) for k in course.image_keys] == (
        ["images/base:pytorch-gpu", "images/base:pytorch"]
        if course.gpu
        else ["images/base:pytorch"]
    )
    assert course_from_dict(json.loads(json.dumps(course_to_dict(course)))) == course


def test_course_round_trips_through_plain_data() -> None:
    text = GOOD + "[[data]]\npath = 'd/x'\nurl = 'https://x'\nsha256 = '%s'\n" % ("b" * 64)
    text += "[[data]]\npath = 'nltk_data'\nurl = 'https://y'\nsha256 = '%s'\nunpack = true\n" % (
        "c" * 64
    )
    text += "[smoke_test]\nskip = {'a2.ipynb' = 'why'}\n"
    course = parse_course("intro", text, [*FILES, "extra.ipynb"])
    assert course.other_notebooks and course.smoke_test.skip
    assert [d.unpack for d in course.data] == [False, True]
    data = course_to_dict(course)
    assert json.loads(json.dumps(data)) == data
    assert course_from_dict(data) == course
