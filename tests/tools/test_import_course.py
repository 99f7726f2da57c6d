"""Importing a course repository of the system this replaces (tools/import_course.py).

Fixture repositories shaped like the old per-course template (tests/fixtures/course-repos/):
`plain` (COPY . into the home, data over the limit), `nested` (COPY lines that rearrange folders),
`tensorflow` (an unpinned `pip install` line) and `apt` (Debian packages and other RUN lines).
The plan is a pure function of the files; the command writes the course, whose static checks
then name exactly what a person must still decide.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import import_course
from tools.course_check.static import check_course
from tools.import_course import ImportPlan, plan_import

REPOS = Path("tests/fixtures/course-repos")
LIMIT = 5000  # stands for the 100 MB repository limit: plain/data/big.bin is over it


def plan_of(name: str) -> ImportPlan:
    root = REPOS / name
    sizes = {
        p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()
    }
    dockerfile, requirements = root / "Dockerfile", root / "requirements.txt"
    return plan_import(
        sizes,
        dockerfile.read_text() if dockerfile.is_file() else None,
        requirements.read_text() if requirements.is_file() else None,
        {"data/big.bin": "ab" * 32},
        LIMIT,
    )


APT = "RUN apt-get install graphviz: Debian packages; a course Dockerfile of its own (README: add a course) or the base image"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(
            "plain",
            ImportPlan(
                flavor="pytorch",
                files={"README.md": "README.md", "data/prices.csv": "data/prices.csv",
                       "week1.ipynb": "week1.ipynb"},
                requirements=("tabulate==0.9.0",),
                notebooks=("week1.ipynb",),
                data={"data/big.bin": (6000, "ab" * 32)},
            ),
            id="plain",
        ),
        pytest.param(
            "nested",
            ImportPlan(
                flavor="pytorch",
                files={
                    "data/x.txt": "data/x.txt",
                    "labs/helpers.py": "lab1/helpers.py",
                    "labs/lab.ipynb": "lab1/lab.ipynb",
                    "lectures/01-intro/intro.ipynb": "notebooks/01-intro/intro.ipynb",
                    "lectures/02-more/more.ipynb": "notebooks/02-more/more.ipynb",
                },
                requirements=(),
                notebooks=("labs/lab.ipynb", "lectures/01-intro/intro.ipynb",
                           "lectures/02-more/more.ipynb"),
            ),
            id="nested-copy-lines",
        ),
        pytest.param(
            "tensorflow",
            ImportPlan(
                flavor="tensorflow",
                files={"keras.ipynb": "keras.ipynb"},
                requirements=("keras-tuner",),
                notebooks=("keras.ipynb",),
            ),
            id="tensorflow-and-a-pip-line",
        ),
        pytest.param(
            "apt",
            ImportPlan(
                flavor="pytorch",
                files={"work/graph.ipynb": "graph.ipynb"},
                requirements=("graphviz==0.20.3",),
                notebooks=("work/graph.ipynb",),
                unconverted=(
                    APT,
                    "ENV MPLBACKEND=Agg",
                    "RUN jupyter labextension disable @jupyterlab/announcements: no equivalent; "
                    "decide whether it matters",
                ),
            ),
            id="apt-packages-and-other-run-lines",
        ),
    ],
)  # fmt: skip
def test_plan(name: str, expected: ImportPlan) -> None:
    assert plan_of(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(
            "plain",
            [("metadata", "course.toml", "data[0].url")],
            id="plain-the-big-files-address",
        ),
        pytest.param("nested", [], id="nested"),
        pytest.param(
            "tensorflow",
            [("requirements-pinned", "requirements.txt", "keras-tuner")],
            id="tensorflow-the-version",
        ),
        pytest.param("apt", [], id="apt-in-course-toml-comments"),
    ],
)
def test_an_imported_course_names_what_is_left_to_decide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, expected: list
) -> None:
    monkeypatch.setattr(import_course, "MAX_REPO_FILE_BYTES", LIMIT)
    (tmp_path / "courses").mkdir()
    status = import_course.main([str(REPOS / name), "--root", str(tmp_path), "--slug", name])
    assert status == 0
    directory = tmp_path / "courses" / name
    assert (directory / "BUILD").read_text() == "course()\n"
    metadata = (directory / "course.toml").read_text()
    for item in plan_of(name).unconverted:
        assert f"#   {item}\n" in metadata
    findings = [
        f for f in check_course(directory).findings if f.check != "requirements-lock"
    ]  # the lock is the next step: ./pants run tools:pin-requirements
    assert [(f.check, f.file) for f in findings] == [(c, file) for c, file, _ in expected]
    for finding, (_, _, word) in zip(findings, expected):
        assert word in finding.message


def test_an_existing_course_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "courses" / "plain").mkdir(parents=True)
    with pytest.raises(SystemExit):
        import_course.main([str(REPOS / "plain"), "--root", str(tmp_path)])
    assert list((tmp_path / "courses" / "plain").iterdir()) == []
