"""The catalog's lenient reading: a course directory -> every problem of it, as data.

One table, whole input -> whole expected output, one id per case: the files of a course
directory, and the full list of problems (file, key, message) the catalog finds in it. The
strict reading (`read_course`) raises the first of the same problems.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from catalog import (
    CatalogError,
    DataFile,
    Problem,
    find_course_directories,
    parse_course_leniently,
    read_course,
    read_course_leniently,
)

NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
SHA = "a" * 64
GOOD = 'title = "Demo"\nflavor = "pytorch"\nnotebooks = ["a.ipynb", "lectures/b.ipynb"]\n'
#: A valid course directory; each case replaces or removes (None) some of its files.
BASE: dict[str, str | None] = {
    "course.toml": GOOD,
    "requirements.txt": "",
    "a.ipynb": NOTEBOOK,
    "lectures/b.ipynb": NOTEBOOK,
}
MISSING_TOML = (
    "course.toml",
    "",
    "is missing; every directory under courses/ is a course (see README: add a course)",
)
MISSING_REQUIREMENTS = (
    "requirements.txt",
    "",
    "is missing; an empty file means no extra packages",
)
TOP_LEVEL = "data, description, flavor, gpu, kept_work, notebooks, resources, smoke_test, title"


def toml_error(text: str) -> str:
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return str(e)
    raise AssertionError(f"{text!r} is valid TOML")


CASES = [
    pytest.param("demo", {}, [], id="valid"),
    pytest.param("demo", {"course.toml": None}, [MISSING_TOML], id="no-course-toml"),
    pytest.param(
        "demo",
        {name: None for name in BASE},
        [MISSING_TOML, MISSING_REQUIREMENTS],
        id="empty-directory",
    ),
    pytest.param(
        "Demo_1",
        {"course.toml": None},
        [
            MISSING_TOML,
            (
                "",
                "",
                "a course directory name is its image tag: lowercase letters and digits in "
                "words joined by single '-', at most 63 characters",
            ),
        ],
        id="no-course-toml-and-a-bad-directory-name",
    ),
    pytest.param(
        "demo",
        {"course.toml": "title = ", "requirements.txt": None},
        [
            ("course.toml", "", f"is not valid TOML: {toml_error('title = ')}"),
            MISSING_REQUIREMENTS,
        ],
        id="invalid-toml-and-no-requirements",
    ),
    pytest.param(
        "demo",
        {
            "course.toml": (
                'flavor = "jax"\ngpu = "yes"\ncolour = "red"\ndescription = 3\n'
                'notebooks = ["b.ipynb", "gone.ipynb", "../up.ipynb", "data.csv", '
                '"a.ipynb", "./a.ipynb", 7]\n'
            ),
        },
        [
            ("course.toml", "colour", f"unknown field; allowed fields are {TOP_LEVEL}"),
            ("course.toml", "title", "is required: the course's name as learners see it"),
            ("course.toml", "description", "must be a string"),
            (
                "course.toml",
                "flavor",
                "'jax' is not a base image flavor; use one of pytorch, tensorflow",
            ),
            (
                "course.toml",
                "notebooks",
                "b.ipynb does not exist in the course directory; it is now at "
                "lectures/b.ipynb: update `notebooks`",
            ),
            (
                "course.toml",
                "notebooks",
                "gone.ipynb does not exist in the course directory; restore it, or remove it "
                "from `notebooks`",
            ),
            ("course.toml", "notebooks", "'../up.ipynb' is not a relative path to an .ipynb file"),
            ("course.toml", "notebooks", "'data.csv' is not a relative path to an .ipynb file"),
            ("course.toml", "notebooks", "a.ipynb is listed twice"),
            ("course.toml", "notebooks", "7 is not a relative path to an .ipynb file"),
            (
                "course.toml",
                "gpu",
                "must be true (every link plans a GPU server), false, or the notebooks that "
                "need one, like ['lectures/train.ipynb']",
            ),
        ],
        id="every-top-level-field-wrong",
    ),
    pytest.param(
        "demo",
        {"course.toml": GOOD.replace('["a.ipynb", "lectures/b.ipynb"]', "[]")},
        [
            (
                "course.toml",
                "notebooks",
                "must list the course's notebooks, like ['lectures/01-intro.ipynb']",
            )
        ],
        id="no-notebooks",
    ),
    pytest.param(
        "demo",
        {"course.toml": GOOD + "[resources]\nmemory_limit = 'lots'\ncpu_limit = 0\ndisk = '1G'\n"},
        [
            (
                "course.toml",
                "resources.disk",
                "unknown field; allowed fields are cpu_guarantee, cpu_limit, memory_guarantee, "
                "memory_limit",
            ),
            (
                "course.toml",
                "resources.memory_limit",
                "'lots' is not a memory size; use a number with K, M, G, Ki, Mi or Gi, like '2G'",
            ),
            ("course.toml", "resources.cpu_limit", "0 is not a CPU count; use a number > 0"),
        ],
        id="resources-unreadable",
    ),
    pytest.param(
        "demo",
        {
            "course.toml": GOOD
            + "[resources]\nmemory_limit = '1G'\nmemory_guarantee = '2G'\n"
            + "cpu_limit = 1\ncpu_guarantee = 2\n"
        },
        [
            ("course.toml", "resources.memory_guarantee", "must not exceed memory_limit"),
            ("course.toml", "resources.cpu_guarantee", "must not exceed cpu_limit"),
        ],
        id="guarantees-over-limits",
    ),
    pytest.param(
        "demo",
        {"course.toml": GOOD + "resources = 3\nsmoke_test = 'fast'\ndata = 'big'\n"},
        [
            ("course.toml", "resources", "must be a table, like [resources]"),
            ("course.toml", "data", "must be a list of [[data]] tables"),
            ("course.toml", "smoke_test", "must be a table, like [smoke_test]"),
        ],
        id="tables-that-are-not",
    ),
    pytest.param(
        "demo",
        {
            "course.toml": GOOD
            + f"[[data]]\npath = 'd/ok.csv'\nurl = 'https://x/ok'\nsha256 = '{SHA}'\n"
            + "[[data]]\npath = '../d'\nurl = 'http://x'\nsha256 = 'abc'\nsize = 1\n"
        },
        [
            (
                "course.toml",
                "data[1].size",
                "unknown field; allowed fields are path, sha256, unpack, url",
            ),
            ("course.toml", "data[1].path", "must be a relative path inside the course"),
            ("course.toml", "data[1].url", "must be an https:// URL"),
            (
                "course.toml",
                "data[1].sha256",
                "must be the file's 64-character lowercase sha256",
            ),
        ],
        id="one-data-entry-of-two-wrong",
    ),
    pytest.param(
        "demo",
        {"course.toml": GOOD + "[kept_work]\nenabled = 'no'\nsize = 'lots'\nwhere = 'efs'\n"},
        [
            ("course.toml", "kept_work.where", "unknown field; allowed fields are enabled, size"),
            ("course.toml", "kept_work.enabled", "must be true or false"),
        ],
        id="kept-work-wrong",
    ),
    pytest.param(
        "demo",
        {"course.toml": GOOD + "[kept_work]\nsize = 'lots'\n"},
        [
            (
                "course.toml",
                "kept_work.size",
                "'lots' is not a memory size; use a number with K, M, G, Ki, Mi or Gi, like '2G'",
            ),
        ],
        id="kept-work-size-wrong",
    ),
    pytest.param(
        "demo",
        {
            "course.toml": GOOD
            + "[smoke_test]\noutputs = 'exact'\ntimeout_seconds = -1\nretries = 2\n"
            + "network = ['a.ipynb', 'nope.ipynb']\n"
            + "skip = {'gone.ipynb' = 'why', 'a.ipynb' = ' '}\n"
        },
        [
            (
                "course.toml",
                "smoke_test.retries",
                "unknown field; allowed fields are network, outputs, skip, timeout_seconds",
            ),
            (
                "course.toml",
                "smoke_test.outputs",
                'must be "warn" (outputs that differ from the saved ones are reported) or '
                '"strict" (they fail the notebook)',
            ),
            (
                "course.toml",
                "smoke_test.timeout_seconds",
                "must be a whole number of seconds > 0",
            ),
            (
                "course.toml",
                "smoke_test.network",
                "'nope.ipynb' is not a notebook of the course directory",
            ),
            (
                "course.toml",
                "smoke_test.skip",
                "'gone.ipynb' is not a notebook of the course directory",
            ),
            (
                "course.toml",
                "smoke_test.skip.a.ipynb",
                "needs a reason: why the notebook cannot run",
            ),
        ],
        id="smoke-test-table-wrong",
    ),
    pytest.param(
        "demo",
        {"course.toml": GOOD + "[smoke_test]\nnetwork = 'yes'\nskip = ['a.ipynb']\n"},
        [
            (
                "course.toml",
                "smoke_test.network",
                "must be true, false or the notebooks that need it, like "
                "['data/download.ipynb']",
            ),
            (
                "course.toml",
                "smoke_test.skip",
                'must be a table like {"lab/x.ipynb" = "why it cannot run"}',
            ),
        ],
        id="smoke-test-values-of-the-wrong-type",
    ),
    pytest.param(
        "demo",
        {
            "course.toml": GOOD.replace('"a.ipynb", ', "")
            + "[smoke_test]\nskip = {'a.ipynb' = 'trains for hours'}\n",
        },
        [],
        id="an-unlisted-notebook-can-be-skipped",
    ),
    pytest.param(
        "demo",
        {
            "course.toml": GOOD.replace('"a.ipynb"', '".ipynb_checkpoints/a.ipynb"'),
            ".ipynb_checkpoints/a.ipynb": NOTEBOOK,
        },
        [
            (
                "course.toml",
                "notebooks",
                ".ipynb_checkpoints/a.ipynb does not exist in the course directory; it is now "
                "at a.ipynb: update `notebooks`",
            )
        ],
        id="checkpoints-are-not-course-files",
    ),
]


def write_course(root: Path, slug: str, changes: dict[str, str | None]) -> Path:
    directory = root / "courses" / slug
    directory.mkdir(parents=True)
    for name, text in {**BASE, **changes}.items():
        if text is not None:
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_text(text)
    return directory


@pytest.mark.parametrize(("slug", "changes", "expected"), CASES)
def test_every_problem_of_a_course_directory(
    tmp_path: Path, slug: str, changes: dict[str, str | None], expected: list[tuple[str, str, str]]
) -> None:
    directory = write_course(tmp_path, slug, changes)
    reading = read_course_leniently(directory)
    assert [(p.file, p.key, p.message) for p in reading.problems] == expected
    assert reading.valid is (not expected)
    assert (reading.course is None) is bool(expected)


@pytest.mark.parametrize(("slug", "changes", "expected"), CASES)
def test_the_strict_reading_raises_the_first_problem(
    tmp_path: Path, slug: str, changes: dict[str, str | None], expected: list[tuple[str, str, str]]
) -> None:
    directory = write_course(tmp_path, slug, changes)
    if not expected:
        assert read_course(directory) == read_course_leniently(directory).course
        return
    with pytest.raises(CatalogError) as error:
        read_course(directory)
    assert error.value.message == expected[0][2]
    assert str(error.value).startswith(f"courses/{slug}")


@pytest.mark.parametrize(
    ("text", "flavor", "data"),
    [
        pytest.param(GOOD, "pytorch", (), id="valid"),
        pytest.param(
            GOOD.replace('title = "Demo"\n', "")
            + f"[[data]]\npath = 'd/ok.csv'\nurl = 'https://x/ok'\nsha256 = '{SHA}'\n"
            + f"[[data]]\npath = 'd/bad.csv'\nurl = 'http://x'\nsha256 = '{SHA}'\n",
            "pytorch",
            (DataFile("d/ok.csv", "https://x/ok", SHA),),
            id="invalid-course-with-a-flavor-and-one-valid-data-entry",
        ),
        pytest.param(GOOD.replace("pytorch", "jax"), None, (), id="unknown-flavor"),
        pytest.param(None, None, (), id="no-course-toml"),
    ],
)
def test_what_can_be_read_despite_problems(
    text: str | None, flavor: str | None, data: tuple[DataFile, ...]
) -> None:
    """The static checks go on with the flavor and the valid [[data]] entries."""
    files = ["requirements.txt", "a.ipynb", "lectures/b.ipynb"]
    reading = parse_course_leniently("demo", text, files)
    assert (reading.flavor, reading.data) == (flavor, data)


@pytest.mark.parametrize(
    ("problem", "rendered"),
    [
        pytest.param(
            Problem("course.toml", "title", "is required"),
            "courses/x/course.toml: title: is required",
            id="a-field",
        ),
        pytest.param(
            Problem("requirements.txt", "", "is missing"),
            "courses/x/requirements.txt: is missing",
            id="a-file",
        ),
        pytest.param(Problem("", "", "bad name"), "courses/x: bad name", id="the-directory"),
    ],
)
def test_a_problem_says_where(problem: Problem, rendered: str) -> None:
    assert problem.render("courses/x") == rendered


def test_missing_notebooks_can_be_allowed(tmp_path: Path) -> None:
    """The smoke test reads a course whose listed notebook is gone, to report it missing."""
    directory = write_course(tmp_path, "demo", {"a.ipynb": None})
    with pytest.raises(CatalogError, match="a.ipynb does not exist"):
        read_course(directory)
    course = read_course(directory, allow_missing_notebooks=True)
    assert course.notebooks == ("a.ipynb", "lectures/b.ipynb")
    assert course.other_notebooks == ()
    other = write_course(tmp_path / "2", "demo", {"a.ipynb": None, "requirements.txt": None})
    with pytest.raises(CatalogError, match="requirements.txt"):
        read_course(other, allow_missing_notebooks=True)


def test_every_directory_under_courses_is_a_course(tmp_path: Path) -> None:
    """One rule for the catalog and the tools: a directory without course.toml is a course
    with that problem, not something to skip."""
    write_course(tmp_path, "zeta", {})
    (tmp_path / "courses" / "half-done").mkdir()
    (tmp_path / "courses" / ".hidden").mkdir()
    (tmp_path / "courses" / "BUILD").write_text("course_image_map()\n")
    directories = find_course_directories(tmp_path)
    assert [d.name for d in directories] == ["half-done", "zeta"]
    assert [p.file for p in read_course_leniently(directories[0]).problems] == [
        "course.toml",
        "requirements.txt",
    ]
