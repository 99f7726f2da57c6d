"""Static checks: every sample course passes; each broken fixture fails with a precise finding."""

from __future__ import annotations

import json
import os
from pathlib import Path
from xml.etree import ElementTree

import pytest

from catalog import load_catalog
from catalog.course import MAX_REPO_FILE_BYTES
from tools.course_check import check_cli
from tools.course_check.cli_common import course_directories
from tools.course_check.dependencies import (
    Flavor,
    load_flavors,
    missing_module_advice,
    modules_of_requirements,
    parse_requirements,
)
from tools.course_check.model import CHECKS, CheckReport, Finding
from tools.course_check.report import check_junit
from tools.course_check.static import CourseFiles, check_course, check_course_files
from tools.lock import LOCK_FILE, course_lock, pinned_by

FIXTURES = Path("tests/fixtures/broken-courses")
CATALOG = load_catalog()


def only(report: CheckReport):
    assert len(report.findings) == 1, [f.render() for f in report.findings]
    return report.findings[0]


@pytest.mark.parametrize("slug", CATALOG.slugs)
def test_every_sample_course_passes(slug: str) -> None:
    report = check_course(Path("courses") / slug)
    assert report.passed, [f.render() for f in report.findings]


def test_missing_dependency_names_notebook_cell_module_and_distribution() -> None:
    finding = only(check_course(FIXTURES / "missing-dependency"))
    assert finding.check == "missing-dependency"
    assert (finding.file, finding.cell) == ("notebooks/plots.ipynb", 3)
    assert finding.details["module"] == "plotly"
    assert finding.details["distribution"] == "plotly"
    assert "neither the pytorch base image nor requirements.txt" in finding.message
    assert "`plotly==<version>`" in finding.message


def test_missing_data_names_the_file_as_written_and_resolved() -> None:
    finding = only(check_course(FIXTURES / "missing-data"))
    assert (finding.check, finding.file, finding.cell) == (
        "missing-data",
        "notebooks/prices.ipynb",
        4,
    )
    assert "'../data/prices.csv'" in finding.message and "data/prices.csv" in finding.message


def test_moved_notebook_points_to_where_it_went() -> None:
    finding = only(check_course(FIXTURES / "moved-notebook"))
    assert (finding.check, finding.file) == ("metadata", "course.toml")
    assert "notebooks/intro.ipynb" in finding.message
    assert "it is now at lectures/intro.ipynb" in finding.message


def test_syntax_error_names_the_cell() -> None:
    finding = only(check_course(FIXTURES / "syntax-error"))
    assert (finding.check, finding.file, finding.cell) == ("syntax", "notebooks/typo.ipynb", 3)
    assert "was never closed" in finding.message


def test_an_unlisted_notebook_gets_every_check() -> None:
    """Whatever is in the directory ships to learners: not only the notebooks with a link."""
    finding = only(check_course(FIXTURES / "unlisted-notebook"))
    assert (finding.check, finding.file, finding.cell) == (
        "missing-dependency",
        "notebooks/extra.ipynb",
        2,
    )
    assert finding.details["module"] == "plotly"


@pytest.mark.parametrize("slug", ["memory-hog", "hangs", "needs-network"])
def test_runtime_only_problems_pass_the_static_checks(slug: str) -> None:
    assert check_course(FIXTURES / slug).passed


def course(tmp_path: Path, slug: str = "demo", **files: str | bytes) -> Path:
    directory = tmp_path / slug
    base = {
        "course.toml": 'title = "Demo"\nflavor = "pytorch"\nnotebooks = ["a.ipynb"]\n',
        "requirements.txt": "",
        "a.ipynb": json.dumps(
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "id": "c1",
                        "source": "import numpy",
                        "metadata": {},
                        "outputs": [],
                        "execution_count": None,
                    }
                ],
                "metadata": {},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        ),
    }
    files = {**base, **files}
    if LOCK_FILE not in files:
        files[LOCK_FILE] = locked(files["requirements.txt"])  # type: ignore[arg-type]
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return directory


def locked(requirements: str, flavor: str = "pytorch", **changes: str) -> str:
    """A lock of `requirements` as pin-requirements writes it (with stand-in hashes), pinning
    what the flavor does not have; `changes` replace pinned versions."""
    installed = load_flavors()[flavor].installed
    exact = [r.text.replace(" ", "").split("==") for r in parse_requirements(requirements)[0]]
    pins = "".join(
        f"{name}=={changes.get(name, version)} \\\n    --hash=sha256:{'0' * 64}\n"
        for name, version in (pin for pin in exact if len(pin) == 2)
        if not pinned_by(version, installed.get(name, ""))
    )
    return course_lock("demo", flavor, requirements, pins)


def test_a_minimal_course_passes(tmp_path: Path) -> None:
    assert check_course(course(tmp_path)).passed


def test_invalid_notebooks(tmp_path: Path) -> None:
    report = check_course(course(tmp_path, **{"a.ipynb": "{not json", "old.ipynb": '{"cells": 3}'}))
    findings = {(f.file, f.check) for f in report.findings}
    assert findings == {("a.ipynb", "notebook-format"), ("old.ipynb", "notebook-format")}


def test_a_file_over_the_limit_points_to_fetch_at_build(tmp_path: Path) -> None:
    directory = course(tmp_path)
    big = directory / "data" / "big.parquet"
    big.parent.mkdir()
    with big.open("wb") as f:  # sparse: no disk used
        f.truncate(MAX_REPO_FILE_BYTES + 1)
    finding = only(check_course(directory))
    assert (finding.check, finding.file) == ("file-size", "data/big.parquet")
    assert "[[data]]" in finding.message and "fetch-course-data" in finding.message


def test_what_an_archive_unpacks_at_build_time_is_there(tmp_path: Path) -> None:
    toml = (
        'title = "Demo"\nflavor = "pytorch"\nnotebooks = ["a.ipynb"]\n[[data]]\n'
        f"path = 'corpus'\nurl = 'https://x/c.zip'\nsha256 = '{'a' * 64}'\nunpack = true\n"
    )
    source = 'open("corpus/stop/english.txt").read()\nopen("corpora/other.txt").read()'
    findings = check_course(course(tmp_path, **{"course.toml": toml, "a.ipynb": notebook(source)}))
    assert [f.details["path"] for f in findings.findings] == ["corpora/other.txt"]


def test_unpinned_and_option_requirements(tmp_path: Path) -> None:
    text = "tabulate==0.9.0\nseaborn>=0.13\n-r other.txt\nrich\nnumpy == 2.4.6  # provides: np\n"
    report = check_course(course(tmp_path, **{"requirements.txt": text}))
    messages = sorted(f.message for f in report.findings if f.check == "requirements-pinned")
    assert len(messages) == 3
    assert any("line 2: 'seaborn>=0.13' is not pinned" in m for m in messages)
    assert any("line 3" in m and "not allowed" in m for m in messages)
    assert any("line 4: 'rich' is not pinned" in m for m in messages)


def test_requirement_parsing() -> None:
    requirements, problems = parse_requirements(
        "# comment\n\nA_B.c[extra]==1.0 ; python_version>='3.9'\n"
        "pkg==2.0 \\\n    --hash=sha256:abc\nx @ https://h/x.whl#sha256=00\ny~=1.0\n"
    )
    assert problems == []
    assert [(r.name, r.pinned, r.line, r.version) for r in requirements] == [
        ("A_B.c", True, 3, "1.0"),
        ("pkg", True, 4, "2.0"),
        ("x", True, 6, None),
        ("y", False, 7, None),
    ]


def test_requirements_provide_modules() -> None:
    requirements, _ = parse_requirements(
        "scikit-image==0.24.0\ntensorflow-cpu==2.21.0\nodd-name==1.0  # provides: odd, other\n"
    )
    modules = modules_of_requirements(requirements, load_flavors())
    assert modules["skimage"] == "scikit-image"
    assert modules["tensorflow"] == "tensorflow-cpu"
    assert modules["odd"] == modules["other"] == "odd-name"


def test_imports_from_requirements_local_modules_and_the_flavor(tmp_path: Path) -> None:
    notebook = json.loads((course(tmp_path, "x") / "a.ipynb").read_text())
    notebook["cells"][0][
        "source"
    ] = "import tabulate, helpers, sklearn, json\nfrom lib.util import f\nimport tensorflow"
    directory = course(
        tmp_path,
        **{
            "a.ipynb": json.dumps(notebook),
            "requirements.txt": "tabulate==0.9.0\n",
            "helpers.py": "",
            "lib/util.py": "",
        },
    )
    finding = only(check_course(directory))
    assert finding.details["module"] == "tensorflow"  # the tensorflow flavor has it, pytorch not
    flavor = 'flavor = "tensorflow"'
    # The fix is the flavor that has it, never a pin of the version installed there.
    assert f"the tensorflow flavor provides it: set `{flavor}` in course.toml" in finding.message
    assert "tensorflow==" not in finding.message and "tensorflow-cpu==" not in finding.message
    toml = (directory / "course.toml").read_text().replace('flavor = "pytorch"', flavor)
    (directory / "course.toml").write_text(toml)
    (directory / LOCK_FILE).write_text(locked("tabulate==0.9.0\n", "tensorflow"))
    assert check_course(directory).passed


def test_checks_use_the_given_inventory() -> None:
    files = CourseFiles.read(Path("courses") / CATALOG.slugs[0])
    empty = {name: Flavor(name, frozenset({"os", "sys"}), {}) for name in ("pytorch", "tensorflow")}
    report = check_course_files(files, empty)
    assert report.findings and {f.check for f in report.findings} == {"missing-dependency"}


def test_the_command_line_writes_json_and_junit(tmp_path: Path, capsys) -> None:
    status = check_cli.main(
        [
            str(FIXTURES / "syntax-error"),
            "courses/" + CATALOG.slugs[0],
            "--output-dir",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert status == 1
    assert "notebooks/typo.ipynb: cell 3: [syntax]" in out
    assert "1 of 2 course(s) passed" in out
    data = json.loads((tmp_path / "syntax-error.course-check.json").read_text())
    assert data["kind"] == "course-check" and not data["passed"]
    assert CheckReport.from_dict(data).findings[0].cell == 3
    assert "<failure" in (tmp_path / "syntax-error.course-check.xml").read_text()
    assert os.path.exists(tmp_path / f"{CATALOG.slugs[0]}.course-check.json")


FIX = "run `./pants run tools:pin-requirements -- demo`"


@pytest.mark.parametrize(
    ("requirements", "lock", "expected"),
    [
        (
            "tabulate==0.9.0\n",
            None,
            [
                (
                    "requirements.lock",
                    "requirements.lock is missing (the image installs exactly that lock)",
                )
            ],
        ),
        (
            "tabulate==0.9.0\nplotly==6.0.0\n",
            locked("tabulate==0.9.0\n"),
            [
                ("requirements.lock", "requirements.txt changed since requirements.lock was made"),
                (
                    "requirements.txt",
                    "line 2: plotly is not covered: neither requirements.lock nor the pytorch flavor "
                    "has it",
                ),
            ],
        ),
        (
            "tabulate==0.9.0\n",
            "# input: requirements.txt sha256:" + "0" * 64 + "\ntabulate==0.9.0\n",
            [("requirements.lock", "requirements.lock, line 2: 'tabulate==0.9.0' has no --hash")],
        ),
        (
            "tabulate==0.9.0\n",
            locked("tabulate==0.9.0\n", tabulate="0.8.10"),
            [
                (
                    "requirements.txt",
                    "line 1: 'tabulate==0.9.0' asks for 0.9.0, but requirements.lock has "
                    "tabulate==0.8.10",
                )
            ],
        ),
    ],
    ids=["missing", "stale-and-uncovered", "no-hash", "other-version"],
)
def test_the_lock_must_cover_requirements(
    tmp_path: Path, requirements: str, lock: str | None, expected: list[tuple[str, str]]
) -> None:
    directory = course(tmp_path, **{"requirements.txt": requirements, LOCK_FILE: lock or ""})
    if lock is None:
        (directory / LOCK_FILE).unlink()
    report = check_course(directory)
    found = [(f.file, f.message) for f in report.findings if f.check == "requirements-lock"]
    assert found == [(file, f"{message}; {FIX}") for file, message in expected]


def test_a_requirement_the_flavor_has_at_that_version_needs_no_pin(tmp_path: Path) -> None:
    numpy = load_flavors()["pytorch"].installed["numpy"]
    directory = course(tmp_path, **{"requirements.txt": f"numpy=={numpy}\n"})
    assert "numpy==" not in (directory / LOCK_FILE).read_text()
    assert check_course(directory).passed


def notebook(source: str) -> str:
    cell = {"cell_type": "code", "id": "c1", "source": source, "metadata": {}, "outputs": []}
    return json.dumps(
        {"cells": [{**cell, "execution_count": None}], "metadata": {}, "nbformat": 4,
         "nbformat_minor": 5}
    )  # fmt: skip


#: PyTorch's release in the flavors' inventory (`2.14.1`), from the images.
TORCH_RELEASE = load_flavors()["pytorch"].installed["torch"].split("+")[0]


@pytest.mark.parametrize(
    ("flavor", "requirements"),
    [
        ("pytorch", ""),
        ("pytorch", f"torch=={TORCH_RELEASE}\n"),
        ("tensorflow", ""),  # built FROM the pytorch flavor, as production's images are
    ],
    ids=["torch-from-the-flavor", "torch-asked-at-the-flavors-release", "tensorflow-flavor"],
)
def test_torch_comes_from_the_flavor(tmp_path: Path, flavor: str, requirements: str) -> None:
    directory = course(
        tmp_path,
        **{
            "course.toml": f'title = "T"\nflavor = "{flavor}"\nnotebooks = ["a.ipynb"]\n',
            "requirements.txt": requirements,
            LOCK_FILE: locked(requirements, flavor),
            "a.ipynb": notebook("import torch\nfrom torch import nn"),
        },
    )
    assert "torch==" not in (directory / LOCK_FILE).read_text()
    report = check_course(directory)
    assert report.passed, report.findings


def test_tensorflow_on_the_pytorch_flavor_names_the_flavor_that_has_it(tmp_path: Path) -> None:
    directory = course(tmp_path, **{"a.ipynb": notebook("import tensorflow as tf")})
    finding = only(check_course(directory))
    assert (finding.check, finding.details["module"]) == ("missing-dependency", "tensorflow")
    assert 'flavor = "tensorflow"' in finding.message, finding.message


def taught(tags: list[str]) -> str:
    """A notebook whose cells fail on purpose: a syntax error, a missing module, a missing file."""
    sources = ["print('hello'", "import not_installed_anywhere", "open('../no/such/file.csv')"]
    cells = [
        {"cell_type": "code", "id": f"c{i}", "source": source, "metadata": {"tags": tags},
         "outputs": [], "execution_count": None}
        for i, source in enumerate(sources)
    ]  # fmt: skip
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        pytest.param(["raises-exception"], [], id="tagged-raises-exception"),
        pytest.param(
            ["other"],
            [("syntax", 1), ("missing-dependency", 2), ("missing-data", 3)],
            id="untagged",
        ),
    ],
)
def test_cells_tagged_raises_exception_fail_on_purpose(
    tmp_path: Path, tags: list[str], expected: list[tuple[str, int]]
) -> None:
    report = check_course(course(tmp_path, **{"a.ipynb": taught(tags)}))
    assert [(f.check, f.cell) for f in report.findings] == expected


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        pytest.param(
            '["a.ipynb"]\n1 = "SyntaxError"\n'
            '2 = { exception = "ModuleNotFoundError", reason = "a lecture shows it" }\n'
            '3 = { exception = "FileNotFoundError", reason = "a lecture shows it" }\n',
            [],
            id="every-cell-recorded",
        ),
        pytest.param(
            '["a.ipynb"]\n1 = "SyntaxError"\n',
            [("missing-dependency", 2), ("missing-data", 3)],
            id="one-cell-recorded",
        ),
        pytest.param(
            '["a.ipynb"]\n9 = "SyntaxError"\n',
            [
                ("syntax", 1),
                ("missing-dependency", 2),
                ("missing-data", 3),
                ("expected-failures", None),
            ],
            id="a-wrong-file-records-nothing",
        ),
    ],
)
def test_cells_recorded_in_expected_failures_fail_on_purpose(
    tmp_path: Path, recorded: str, expected: list[tuple[str, int | None]]
) -> None:
    """A student's blank that does not parse (`def ...`), once recorded by `--accept-failures`,
    is no syntax finding: the static checks honour the file as the smoke test does."""
    files = {"a.ipynb": taught(["other"]), "expected-failures.toml": recorded}
    report = check_course(course(tmp_path, **files))
    assert [(f.check, f.cell) for f in report.findings] == expected


def markdown(*sources: str) -> str:
    cells = [{"cell_type": "markdown", "id": f"m{i}", "source": s, "metadata": {}}
             for i, s in enumerate(sources)]  # fmt: skip
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("![a plot](img/plot.png)", [], id="present"),
        pytest.param("![a plot](../lectures/img/plot.png 'title')", [], id="relative-with-title"),
        pytest.param('<img src="img/plot%20two.png" width=300>', [], id="html-url-encoded"),
        pytest.param(
            "![x](https://example.org/x.png) ![y](attachment:y.png) ![z](data:image/png;base64,AA)",
            [],
            id="urls-attachments-data-are-not-files",
        ),
        pytest.param(
            "text\n\n![diagram](img/diagram.png)",
            [("img/diagram.png", "lectures/img/diagram.png")],
            id="missing-markdown",
        ),
        pytest.param(
            "<IMG SRC='figures/plot.png'>",
            [("figures/plot.png", "lectures/figures/plot.png")],
            id="missing-html",
        ),
    ],
)
def test_images_shown_by_markdown_are_in_the_course(
    tmp_path: Path, source: str, expected: list[tuple[str, str]]
) -> None:
    files = {
        "course.toml": 'title = "T"\nflavor = "pytorch"\nnotebooks = ["lectures/a.ipynb"]\n',
        "lectures/a.ipynb": markdown("# Title", source),
        "lectures/img/plot.png": "(an image)",
        "lectures/img/plot two.png": "(an image)",
    }
    directory = course(tmp_path, **files)
    (directory / "a.ipynb").unlink()
    found = [f for f in check_course(directory).findings if f.check == "missing-image"]
    assert [(f.details["path"], f.details["resolved"]) for f in found] == expected
    assert all(f.file == "lectures/a.ipynb" and f.cell == 2 for f in found)


@pytest.mark.parametrize(
    ("modules", "expected"),
    [
        pytest.param({"foo-grader": ["foo"]}, [], id="the-lock-says-what-it-installs"),
        pytest.param({}, [("missing-dependency", "foo")], id="no-word-of-foo"),
    ],
)
def test_import_names_come_from_the_locked_distributions(
    tmp_path: Path, modules: dict, expected: list[tuple[str, str]]
) -> None:
    """A requirement whose import name differs needs no `# provides:` when its lock says it."""
    requirements = "foo-grader==1.0\n"
    pin = f"foo-grader==1.0 \\\n    --hash=sha256:{'0' * 64}\n"
    directory = course(
        tmp_path,
        **{
            "requirements.txt": requirements,
            LOCK_FILE: course_lock("demo", "pytorch", requirements, pin, modules=modules),
            "a.ipynb": notebook("import foo\nfrom foo.grade import check"),
        },
    )
    found = [(f.check, f.details.get("module")) for f in check_course(directory).findings]
    assert found == expected


def test_an_expected_failures_file_must_name_the_courses_cells(tmp_path: Path) -> None:
    directory = course(tmp_path, **{"expected-failures.toml": '["a.ipynb"]\n7 = "NameError"\n'})
    finding = only(check_course(directory))
    assert (finding.check, finding.file) == ("expected-failures", "expected-failures.toml")
    assert finding.message == (
        '["a.ipynb"]: 7 is not a code cell of the notebook (its code cells: 1)'
    )


MISSING_TOML = "is missing; every directory under courses/ is a course (see README: add a course)"
LISTED = 'notebooks = ["a.ipynb"]\n'
DATA = f"[[data]]\npath = 'd/ok.csv'\nurl = 'https://x/ok'\nsha256 = '{'a' * 64}'\n"


@pytest.mark.parametrize(
    ("slug", "files", "expected"),
    [
        pytest.param("demo", {}, [], id="valid"),
        pytest.param(
            "demo",
            {"course.toml": None},
            [("metadata", "course.toml", MISSING_TOML)],
            id="no-course-toml",
        ),
        pytest.param(
            "demo",
            {"course.toml": None, "requirements.txt": None},
            [
                ("metadata", "course.toml", MISSING_TOML),
                (
                    "metadata",
                    "requirements.txt",
                    "is missing; an empty file means no extra packages",
                ),
            ],
            id="no-course-toml-nor-requirements",
        ),
        pytest.param(
            "Demo",
            {},
            [
                (
                    "metadata",
                    None,
                    "a course directory name is its image tag: lowercase letters and digits in "
                    "words joined by single '-', at most 63 characters",
                )
            ],
            id="bad-directory-name",
        ),
        pytest.param(
            "demo",
            {
                "course.toml": 'flavor = "jax"\nnotebooks = ["lectures/a.ipynb", "b.ipynb"]\n',
                "requirements.txt": None,
            },
            [
                (
                    "metadata",
                    "course.toml",
                    "title: is required: the course's name as learners see it",
                ),
                (
                    "metadata",
                    "course.toml",
                    "flavor: 'jax' is not a base image flavor; use one of pytorch, tensorflow",
                ),
                (
                    "metadata",
                    "requirements.txt",
                    "is missing; an empty file means no extra packages",
                ),
                (
                    "metadata",
                    "course.toml",
                    "notebooks: lectures/a.ipynb does not exist in the course directory; it is "
                    "now at a.ipynb: update `notebooks`",
                ),
                (
                    "metadata",
                    "course.toml",
                    "notebooks: b.ipynb does not exist in the course directory; restore it, or "
                    "remove it from `notebooks`",
                ),
            ],
            id="every-metadata-problem-at-once",
        ),
        pytest.param(
            "demo",
            {
                "course.toml": f'flavor = "pytorch"\n{LISTED}{DATA}',
                "a.ipynb": notebook("import numpy\nopen('d/ok.csv')\nimport plotly"),
            },
            [
                (
                    "metadata",
                    "course.toml",
                    "title: is required: the course's name as learners see it",
                ),
                (
                    "missing-dependency",
                    "a.ipynb",
                    "imports `plotly` (line 3 of the cell), which neither the pytorch base image "
                    "nor requirements.txt provides; "
                    + missing_module_advice("plotly", load_flavors(), "pytorch"),
                ),
            ],
            id="invalid-metadata-still-gives-the-flavor-and-the-data",
        ),
    ],
)
def test_the_metadata_check_reports_every_problem(
    tmp_path: Path, slug: str, files: dict[str, str | None], expected: list[tuple]
) -> None:
    directory = course(tmp_path, slug, **{k: v for k, v in files.items() if v is not None})
    for name in (k for k, v in files.items() if v is None):
        (directory / name).unlink()
    report = check_course(directory)
    assert [(f.check, f.file, f.message) for f in report.findings] == expected


def test_the_tools_take_every_course_directory_as_the_catalog_does(tmp_path: Path) -> None:
    """A directory under courses/ without course.toml is a course with a problem, not skipped."""
    course(tmp_path / "courses", "zeta")
    (tmp_path / "courses" / "half-done").mkdir()
    (tmp_path / "courses" / ".cache").mkdir()
    directories = course_directories([], tmp_path)
    assert [d.name for d in directories] == ["half-done", "zeta"]
    assert [f.file for f in check_course(directories[0]).findings] == [
        "course.toml",
        "requirements.txt",
    ]


def test_the_junit_report_has_a_case_for_every_check() -> None:
    findings = (
        Finding("missing-image", "shows the image 'x.png'", "a.ipynb", 2),
        Finding("expected-failures", "names no notebook", "expected-failures.toml"),
    )
    suite = ElementTree.fromstring(check_junit(CheckReport("demo", findings)))
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases) == list(CHECKS)
    assert (suite.get("tests"), suite.get("failures")) == (str(len(CHECKS)), "2")
    failed = {name for name, case in cases.items() if case.find("failure") is not None}
    assert failed == {"missing-image", "expected-failures"}
