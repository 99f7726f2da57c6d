"""The smoke test on this machine's Python (the host adapter), for GPU machines without a
container engine:

    ./pants run tools:smoke-test -- <slug> --host [--gpus] [--python PYTHON]
    python3 -m tools.course_check.smoke_cli <slug> --host --gpus   (a machine without Pants)

The same runner (in_container.py) and the same judging (`smoke.interpret`, expected failures) as
in the course image, on a copy of the course directory. What differs from the image is said in
the report rather than hidden: the packages are the machine's (`host_facts` lists the versions of
those that matter and where they differ from the image's locks), no memory limit is enforced (the
peak is that of the largest process, the kernel), the network is the machine's, and `[[data]]`
files are there only if the course directory has them. Without `--gpus` the notebooks see no GPU
(`CUDA_VISIBLE_DEVICES` empty), so a GPU machine runs both sides of a comparison.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from catalog import Course
from tools.course_check.dependencies import parse_requirements
from tools.course_check.expected import Expected
from tools.course_check.model import NotebookResult, SmokeResult
from tools.course_check.smoke import (
    DEADLINE_MARGIN,
    TORCH_PROBE,
    ContainerOutcome,
    Log,
    accelerator_report,
    course_result,
    interpret,
    run_notebooks,
    runner_source,
)
from tools.lock import REQUIREMENTS_FILE, normalize

#: Tells the runner that it has no cgroup of its own (in_container.py: memory from the kernel's
#: rusage, no OOM counter).
ON_HOST_ENV = "SMOKE_TEST_ON_HOST"
#: Packages whose host versions the report always names (with the course's own requirements).
KEY_PACKAGES = (
    "torch", "torchvision", "tensorflow", "numpy", "pandas", "scikit-learn", "matplotlib",
    "nbclient", "ipykernel",
)  # fmt: skip

#: What the host's Python has: its version, what PyTorch sees, and the named packages' versions.
FACTS_SCRIPT = (
    TORCH_PROBE
    + r"""
import platform, sys
from importlib import metadata
versions = {}
for name in sys.argv[1:]:
    try:
        versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        versions[name] = None
print(json.dumps({**probe, "python": platform.python_version(), "versions": versions}))
"""
)


def runner_environment(gpus: bool, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a runner on the host: the machine's own Python, not a Pants or pex
    one, and no GPU unless `gpus`."""
    env = {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if k != "PYTHONPATH" and not k.startswith("PEX_")
    }
    env.update({ON_HOST_ENV: "1", "PYTHONUNBUFFERED": "1"})
    if not gpus:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def host_facts(python: str, gpus: bool, packages: Iterable[str]) -> dict[str, Any]:
    """What `python` has: `python` (its version), what PyTorch sees (smoke.TORCH_PROBE)
    and `versions` of `packages` (None where not installed). Raises OSError or RuntimeError where
    that Python cannot run or say."""
    names = sorted(set(packages))
    result = subprocess.run(
        [python, "-c", FACTS_SCRIPT, *names],
        env=runner_environment(gpus),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(f"{python} could not say what it has: {result.stderr.strip()[-2000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def requirement_names(directory: Path) -> set[str]:
    """The packages the course's requirements.txt names (normalized)."""
    path = directory / REQUIREMENTS_FILE
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    return {normalize(requirement.name) for requirement in parse_requirements(text)[0]}


def package_report(versions: Mapping[str, str | None], locked: Mapping[str, str]) -> str:
    """`name version` per package, with the image's locked version where it differs; pure."""
    parts = []
    for name in sorted(versions):
        host, image = versions[name], locked.get(name)
        if host is None:
            parts.append(f"{name} absent" + (f" (image {image})" if image else ""))
        elif image and host != image:
            parts.append(f"{name} {host} (image {image})")
        else:
            parts.append(f"{name} {host}")
    return ", ".join(parts)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc): the kernel, which jupyter_client starts in a
    session of its own, and whatever the notebook started."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:  # gone meanwhile
            continue
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


def stop_tree(pid: int) -> None:
    """Kills `pid` and every process below it (a container's end, on the host)."""
    for victim in [*descendants(pid), pid]:
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_on_host(
    python: str, course_copy: Path, notebook: str, timeout_seconds: int, gpus: bool
) -> ContainerOutcome:
    """Runs the runner for one notebook with `python` in `course_copy`, killed with its kernel and
    what that started at `timeout_seconds`; the outcome as the container adapter reports it."""
    started = time.monotonic()
    process = subprocess.Popen(
        [python, "-c", runner_source(), notebook, str(timeout_seconds + DEADLINE_MARGIN)],
        cwd=course_copy,
        env=runner_environment(gpus),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    timed_out = False
    try:
        output, _ = process.communicate(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        stop_tree(process.pid)
        try:
            output, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired as still_open:  # a process that escaped holds the pipe
            partial = still_open.output or b""
            output = partial.decode(errors="replace") if isinstance(partial, bytes) else partial
    finally:
        if process.poll() is None:
            stop_tree(process.pid)
            process.wait()
    return ContainerOutcome(
        output=output,
        exit_code=process.returncode,
        oom_killed=False,
        timed_out=timed_out,
        duration_seconds=time.monotonic() - started,
    )


def smoke_test_on_host(
    course: Course,
    directory: Path,
    python: str,
    locked: Mapping[str, str],
    log: Log = print,
    notebooks: Sequence[str] | None = None,
    gpus: bool = False,
    expected: Expected | None = None,
) -> SmokeResult:
    """Runs the course's notebooks with `python` on a copy of `directory`; `locked`: the image's
    package versions (its flavor's locks and the course's), which the report compares with the
    host's. With `gpus`, PyTorch must see a GPU, as in the image."""
    where = f"this machine's Python ({python})"
    packages = {*KEY_PACKAGES, *requirement_names(directory)}
    try:
        facts = host_facts(python, gpus, packages)
    except (OSError, RuntimeError, subprocess.TimeoutExpired, ValueError) as e:
        return course_result(course, where, (), error=f"--host: {e}")
    where = f"this machine's Python {facts['python']} ({python})"
    log(f"smoke-test: {course.slug}: on the host: {where}")
    log(f"smoke-test: {course.slug}: packages: {package_report(facts['versions'], locked)}")
    accelerator, error = accelerator_report(course.gpu, gpus, facts, on_host=True)
    if error:
        return course_result(course, where, (), error=error)
    timeout = course.smoke_test.timeout_seconds
    with tempfile.TemporaryDirectory(prefix=f"smoke-{course.slug}-") as tmp:
        copy = Path(tmp) / course.slug
        shutil.copytree(directory, copy)

        def run(notebook: str) -> NotebookResult:
            outcome = run_on_host(python, copy, notebook, timeout, gpus)
            network = course.smoke_test.has_network(notebook)
            return interpret(
                notebook, outcome, course.resources.memory_limit, timeout, course.flavor, network
            )

        results = run_notebooks(course, run, log, notebooks, gpus, expected)
    return course_result(course, where, results, accelerator=f"on the host; {accelerator}")
