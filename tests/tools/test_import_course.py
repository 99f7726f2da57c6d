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

from catalog import read_course
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
    texts = {
        f: (root / f).read_text()
        for f in sizes
        if f.endswith("Dockerfile") or f.endswith("requirements.txt")
    }
    return plan_import(sizes, texts, {"data/big.bin": "ab" * 32}, LIMIT)


LEFT_OUT = (
    "left out of the learner's home, as the repository's own: {} (copy one into the course if "
    "learners need it)"
)
APT = "RUN apt-get install graphviz: Debian packages; a course Dockerfile of its own (README: add a course) or the base image"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(
            "plain",
            ImportPlan(
                flavor="pytorch",
                # README.md is the repository's: `COPY .` does not take it into the home.
                files={"data/prices.csv": "data/prices.csv", "week1.ipynb": "week1.ipynb"},
                requirements=("tabulate==0.9.0",),
                notebooks=("week1.ipynb",),
                data={"data/big.bin": (6000, "ab" * 32)},
                unconverted=(LEFT_OUT.format("README.md"),),
            ),
            id="plain",
        ),
        pytest.param(
            "subfolder",
            ImportPlan(
                flavor="pytorch",
                # Not the README, LICENSE, Makefile or the Dockerfile's docker/ folder.
                files={"notebooks/train.ipynb": "notebooks/train.ipynb"},
                # docker/requirements.txt, through its COPY to /tmp and `pip install -r`; the
                # cleanup after it (rm, fix-permissions) needs no converting.
                requirements=("tabulate==0.9.0",),
                notebooks=("notebooks/train.ipynb",),
                unconverted=(LEFT_OUT.format("LICENSE, Makefile, README.md"),),
            ),
            id="dockerfile-in-a-folder-and-pip-install-r",
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


#: What every imported course is left with unless --description gives it: words for learners.
DESCRIBE = ("metadata", "course.toml", "description: still the placeholder")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(
            "plain",
            [("metadata", "course.toml", "data[0].url")],  # the description comes next
            id="plain-the-big-files-address",
        ),
        pytest.param("nested", [DESCRIBE], id="nested"),
        pytest.param(
            "tensorflow",
            [DESCRIBE, ("requirements-pinned", "requirements.txt", "keras-tuner")],
            id="tensorflow-the-version",
        ),
        pytest.param("apt", [DESCRIBE], id="apt-in-course-toml-comments"),
        pytest.param("subfolder", [DESCRIBE], id="subfolder"),
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


def test_what_is_left_to_decide_is_said_line_by_line_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "courses").mkdir()
    import_course.main([str(REPOS / "subfolder"), "--root", str(tmp_path), "--description", "D."])
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == ["import-course"] * 3
    assert lines[1] == "import-course: 1 files, notebooks: notebooks/train.ipynb"
    assert lines[2].startswith("import-course: not converted: left out of the learner's home")
    assert lines[3].startswith("Next: ")
    assert read_course(tmp_path / "courses/subfolder").description == "D."


def test_an_existing_course_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "courses" / "plain").mkdir(parents=True)
    with pytest.raises(SystemExit):
        import_course.main([str(REPOS / "plain"), "--root", str(tmp_path)])
    assert list((tmp_path / "courses" / "plain").iterdir()) == []


@pytest.mark.parametrize(
    ("run", "requirements", "unconverted"),
    [
        pytest.param(
            "pip install --no-cache-dir -r /tmp/requirements.txt && rm -rf /tmp/*",
            ("tabulate==0.9.0",),
            (),
            id="install-then-cleanup",
        ),
        pytest.param(
            "pip install nltk==3.9.1 && python -m nltk.downloader punkt",
            ("nltk==3.9.1", "tabulate==0.9.0"),
            ("RUN python -m nltk.downloader punkt: no equivalent; decide whether it matters",),
            id="install-then-a-download",
        ),
        pytest.param(
            "pip install -r extra-requirements.txt",
            ("tabulate==0.9.0",),
            ("RUN pip install -r extra-requirements.txt: extra-requirements.txt is not a file "
             "of the repository",),
            id="a-requirements-file-the-repository-lacks",
        ),
    ],
)  # fmt: skip
def test_run_lines_command_by_command(
    run: str, requirements: tuple[str, ...], unconverted: tuple[str, ...]
) -> None:
    dockerfile = (
        "FROM quay.io/jupyter/pytorch-notebook:2024-10-07\n"
        "COPY requirements.txt /tmp/\n"
        f"RUN {run}\n"
        "COPY a.ipynb /home/jovyan/\n"
    )
    texts = {"Dockerfile": dockerfile, "requirements.txt": "tabulate==0.9.0\n"}
    sizes = {"Dockerfile": 1, "requirements.txt": 1, "a.ipynb": 1}
    plan = plan_import(sizes, texts)
    assert (plan.requirements, plan.unconverted, dict(plan.files)) == (
        requirements,
        unconverted,
        {"a.ipynb": "a.ipynb"},
    )


@pytest.mark.parametrize(
    ("dockerfile", "paths", "files", "requirements", "unconverted"),
    [
        pytest.param(
            "COPY . /home/jovyan/\nRUN rm -rf /home/jovyan/solutions\n",
            ["a.ipynb", "solutions/a.ipynb"],
            {"a.ipynb": "a.ipynb", "solutions/a.ipynb": "solutions/a.ipynb"},
            (),
            ("RUN rm -rf /home/jovyan/solutions: no equivalent; decide whether it matters",),
            id="removing-course-files-is-no-cleanup",
        ),
        pytest.param(
            "COPY start.sh /usr/local/bin/\nCOPY a.ipynb /opt/course/\nCOPY b.ipynb /home/jovyan/\n",
            ["a.ipynb", "b.ipynb", "start.sh"],
            {"b.ipynb": "b.ipynb"},
            (),
            ("COPY a.ipynb /opt/course/: not into the learner's home",
             "COPY start.sh /usr/local/bin/: not into the learner's home"),
            id="files-copied-elsewhere-are-reported",
        ),
        pytest.param(
            "WORKDIR /home/jovyan\nCOPY requirements.txt ./\nRUN pip install -r requirements.txt\n",
            ["a.ipynb", "requirements.txt"],
            {"a.ipynb": "a.ipynb"},
            ("tabulate==0.9.0",),
            (),
            id="requirements-copied-into-the-home-are-the-builds",
        ),
        pytest.param(
            "WORKDIR /app\nCOPY env/requirements.txt .\nRUN pip install -r requirements.txt\n"
            "COPY a.ipynb /home/jovyan/\n",
            ["a.ipynb", "requirements.txt", "env/requirements.txt"],
            {"a.ipynb": "a.ipynb"},
            ("seaborn==0.13.2", "tabulate==0.9.0"),
            (),
            id="a-copy-into-the-working-folder",
        ),
    ],
)  # fmt: skip
def test_what_each_copy_and_run_becomes(
    dockerfile: str, paths: list[str], files: dict, requirements: tuple, unconverted: tuple
) -> None:
    texts = {
        "Dockerfile": "FROM quay.io/jupyter/pytorch-notebook:2024-10-07\n" + dockerfile,
        "requirements.txt": "tabulate==0.9.0\n",
        "env/requirements.txt": "seaborn==0.13.2\n",
    }
    paths = ["Dockerfile", *paths]
    plan = plan_import({p: 1 for p in paths}, {p: texts[p] for p in texts if p in paths})
    assert (dict(plan.files), plan.requirements, plan.unconverted) == (
        files,
        requirements,
        unconverted,
    )
