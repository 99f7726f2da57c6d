"""The smoke test on the host (`tools:smoke-test -- <slug> --host`), for GPU machines without a
container engine: the real runner and real Jupyter kernels, with this test's own Python (the
resolve has nbclient and ipykernel, not PyTorch, as a machine whose PyTorch is missing or
sees no GPU)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
import pytest

from catalog import parse_course
from tools.course_check.model import Status
from tools.course_check.on_host import package_report, runner_environment, smoke_test_on_host


def write_course(directory: Path, notebooks: dict[str, list[str]], extra: str = "") -> None:
    directory.mkdir(parents=True)
    listed = ", ".join(f'"{name}"' for name in notebooks)
    (directory / "course.toml").write_text(
        'title = "Host"\ndescription = "Runs on the host."\nflavor = "pytorch"\n'
        f"notebooks = [{listed}]\n{extra}"
    )
    (directory / "requirements.txt").write_text("plotly==6.0.0\n")
    for name, cells in notebooks.items():
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        (directory / name).write_text(nbformat.writes(notebook))


def read(directory: Path):
    files = {p.name: p.read_text() for p in directory.iterdir()}
    return parse_course(directory.name, files.pop("course.toml"), files)


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """This test's interpreter with its packages, as a machine's `python3` would have them: the
    runner drops PYTHONPATH and PEX_* (a Pants or pex environment is not the machine's), so the
    path travels in a wrapper."""
    wrapper = tmp_path_factory.mktemp("host") / "python3"
    path = os.pathsep.join(p for p in sys.path if p)
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{path}" exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def test_notebooks_run_with_the_hosts_python_and_say_what_it_has(
    tmp_path: Path, python: str
) -> None:
    directory = tmp_path / "host-course"
    write_course(
        directory,
        {
            "ok.ipynb": [
                "import os\nassert os.environ['CUDA_VISIBLE_DEVICES'] == ''  # no GPU: a CPU run",
                "open('written.txt', 'w').write('x')",
            ],
            "broken.ipynb": ["x = 1", "1 / 0"],
        },
    )
    course = read(directory)
    lines: list[str] = []
    result = smoke_test_on_host(
        course, directory, python, {"nbclient": "0.0.1", "plotly": "6.0.0"}, log=lines.append
    )
    ok, broken = result.notebooks
    assert ok.status is Status.PASSED, ok
    assert ok.peak_memory_bytes and ok.peak_memory_bytes > 10_000_000  # the kernel's, in bytes
    assert (broken.status, broken.cell, broken.exception) == (
        Status.FAILED,
        2,
        "ZeroDivisionError",
    )
    assert result.image.startswith(f"this machine's Python {sys.version.split()[0]} ")
    assert not (directory / "written.txt").exists(), "the course directory itself was written"
    packages = next(line for line in lines if "packages:" in line)
    assert "nbclient 0.10.2 (image 0.0.1)" in packages and "plotly absent (image 6.0.0)" in packages
    assert "torch absent" in packages


def test_gpus_without_a_pytorch_that_sees_one_is_an_error(tmp_path: Path, python: str) -> None:
    directory = tmp_path / "gpu-course"
    write_course(directory, {"a.ipynb": ["1"]}, "gpu = true\n")
    result = smoke_test_on_host(read(directory), directory, python, {}, log=print, gpus=True)
    assert not result.passed and result.notebooks == ()
    assert result.error.startswith("--gpus: ") and "PyTorch" in result.error, result.error


def test_a_notebook_past_its_timeout_is_stopped_with_all_it_started(
    tmp_path: Path, python: str
) -> None:
    """As a container's end would: the runner, its kernel (in a session of its own) and a
    process the notebook started are gone, not left to run for the 600 s they asked for."""
    directory = tmp_path / "slow-course"
    pid_file = tmp_path / "sleeper.pid"
    cell = (
        "import subprocess, time\n"
        "sleeper = subprocess.Popen(['sleep', '600'], start_new_session=True)\n"
        f"open({str(pid_file)!r}, 'w').write(str(sleeper.pid))\n"
        "time.sleep(600)"
    )
    write_course(directory, {"slow.ipynb": [cell]}, "\n[smoke_test]\ntimeout_seconds = 20\n")
    result = smoke_test_on_host(read(directory), directory, python, {}, log=print)
    (slow,) = result.notebooks
    assert slow.status is Status.TIMED_OUT and slow.cell == 1, slow
    assert 20 <= slow.duration_seconds < 60
    assert not running(int(pid_file.read_text())), "a process of the notebook still runs"


def running(pid: int) -> bool:
    """Whether `pid` runs, within 5 s: gone, or a zombie nobody reaped yet, is not running."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
        except (OSError, IndexError):
            return False
        if state in "ZX":
            return False
        time.sleep(0.2)
    return True


@pytest.mark.parametrize(
    ("versions", "locked", "expected"),
    [
        ({"numpy": "2.1.0"}, {"numpy": "2.1.0"}, "numpy 2.1.0"),
        ({"numpy": "2.0.0"}, {"numpy": "2.1.0"}, "numpy 2.0.0 (image 2.1.0)"),
        ({"torch": None}, {"torch": "2.14.1"}, "torch absent (image 2.14.1)"),
        ({"torch": None}, {}, "torch absent"),
        ({"b": "1", "a": "2"}, {}, "a 2, b 1"),
    ],
)
def test_package_report(versions: dict, locked: dict, expected: str) -> None:
    assert package_report(versions, locked) == expected


def test_the_runner_environment_is_the_machines_and_cpu_only_unless_gpus() -> None:
    base = {"PATH": "/usr/bin", "PYTHONPATH": "/pants", "PEX_ROOT": "/x", "HOME": "/h"}
    cpu = runner_environment(False, base)
    assert cpu == {
        "PATH": "/usr/bin",
        "HOME": "/h",
        "SMOKE_TEST_ON_HOST": "1",
        "PYTHONUNBUFFERED": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    gpu = runner_environment(True, {**base, "CUDA_VISIBLE_DEVICES": "0"})
    assert gpu["CUDA_VISIBLE_DEVICES"] == "0" and "PYTHONPATH" not in gpu
