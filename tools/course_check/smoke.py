"""Smoke test: every notebook of a course run in the course's real image (the Docker adapter).

One container per notebook, as learners get it: the production memory limit (`--memory` and
`--memory-swap` at `resources.memory_limit`, so no swap), no network unless course.toml's
`smoke_test.network` says so for the course or that notebook (a cell that fails to reach the
network is reported as such, not as a failure of its code), and nbclient running the notebook inside the container with the
notebook's folder as the working directory (in_container.py, passed with `python3 -c`). The
container is killed at `smoke_test.timeout_seconds` and always removed.

`interpret()` turns what the container said and how it ended into a NotebookResult; it is pure,
so every outcome is tested without Docker.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from catalog import Course, read_course
from tools.course_check.dependencies import load_flavors, missing_module_advice
from tools.course_check.drift import output_drift
from tools.course_check.expected import Expected, judge
from tools.course_check.in_container import MARKER
from tools.course_check.model import NotebookResult, SmokeResult, Status, human_memory

#: Where course images put the course directory (the learner's home; docker-stacks' user).
COURSE_HOME = "/home/jovyan"
CONTAINER_LABEL = "ol-course-smoke-test"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NO_MODULE = re.compile(r"No module named '([^']+)'")
LOG_TAIL_LINES = 25
#: Seconds after the course's timeout at which the runner stops the container itself, should
#: this process die before it does (killed CI job): no notebook runs on forever.
DEADLINE_MARGIN = 60
#: Output lines that say nothing about the notebook.
_NOISE = ("Kernel is running over TCP without encryption",)

Log = Callable[[str], None]


def runner_source() -> str:
    """The text of in_container.py, run in the image with `python3 -c`."""
    return resources.files(__package__).joinpath("in_container.py").read_text(encoding="utf-8")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


@dataclass(frozen=True)
class ContainerOutcome:
    """How one notebook's container ended: plain data from the Docker API."""

    output: str
    exit_code: int | None
    oom_killed: bool
    timed_out: bool
    duration_seconds: float
    #: Measured from outside (Docker stats) when the runner could not say, e.g. on a timeout.
    peak_memory_bytes: int | None = None


def parse_events(output: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(runner events, other output lines)."""
    events, lines = [], []
    for line in output.splitlines():
        if any(noise in line for noise in _NOISE):
            continue
        if line.startswith(MARKER):
            try:
                events.append(json.loads(line[len(MARKER) :]))
            except json.JSONDecodeError:
                lines.append(line)
        else:
            lines.append(line)
    return events, lines


#: Exceptions that mean "could not reach the network" (urllib, socket, requests/urllib3), and
#: what the resolver and the kernel say when there is no network at all.
NETWORK_EXCEPTIONS = frozenset(
    {
        "URLError", "gaierror", "ConnectionError", "ConnectionRefusedError",
        "NewConnectionError", "MaxRetryError", "ConnectTimeout", "NameResolutionError",
    }
)  # fmt: skip
_NETWORK_WORDS = re.compile(
    r"Temporary failure in name resolution|Name or service not known|Network is unreachable|"
    r"No route to host|Failed to establish a new connection"
)


def is_network_failure(exception: str | None, text: str) -> bool:
    return exception in NETWORK_EXCEPTIONS or bool(_NETWORK_WORDS.search(text))


def _network_advice(network: bool) -> str:
    if network:
        return "the network could not be reached from the smoke test: not a failure of the code"
    return (
        "this notebook has no network in the smoke test: if it must download something, list "
        "it in course.toml's smoke_test.network"
    )


def _advice_for(exception: str | None, message: str, flavor: str | None) -> str:
    if exception == "ModuleNotFoundError":
        match = _NO_MODULE.search(message)
        if match:
            return f" ({missing_module_advice(match.group(1), load_flavors(), flavor)})"
    if exception == "FileNotFoundError":
        return " (add the file to the course directory, or list it as [[data]] in course.toml)"
    return ""


def interpret(
    notebook: str,
    outcome: ContainerOutcome,
    memory_limit: int,
    timeout_seconds: int,
    flavor: str | None = None,
    network: bool = False,
) -> NotebookResult:
    """What happened to one notebook, from the runner's events and the container's state
    (`network`: whether the notebook's container had network)."""
    events, lines = parse_events(strip_ansi(outcome.output))
    cells = [e["cell"] for e in events if e.get("event") == "cell"]
    last_cell = cells[-1] if cells else None
    result = next((e for e in reversed(events) if e.get("event") == "result"), None)
    tail = "\n".join(lines[-LOG_TAIL_LINES:])
    peak = result.get("peak_memory_bytes") if result else None
    duration = round(outcome.duration_seconds, 3)

    drift = output_drift(result.get("outputs", ())) if result else ()

    def make(status: Status, **fields: Any) -> NotebookResult:
        return NotebookResult(
            path=notebook, status=status, duration_seconds=duration, drift=drift, **fields
        )

    where = f" in cell {last_cell}" if last_cell else " before the first cell ran"
    if outcome.timed_out:
        return make(
            Status.TIMED_OUT,
            cell=last_cell,
            peak_memory_bytes=outcome.peak_memory_bytes,
            message=f"still running after {timeout_seconds} s{where} "
            "(course.toml smoke_test.timeout_seconds); the container was killed",
            log_tail=tail,
        )
    oom = outcome.oom_killed or outcome.exit_code == 137
    if (
        (result and result.get("status") == "out-of-memory")
        or (oom and result is None)
        or (oom and result and result.get("status") == "kernel-died")
    ):
        cell = (result or {}).get("cell") or last_cell
        where = f" in cell {cell}" if cell else ""
        return make(
            Status.OUT_OF_MEMORY,
            cell=cell,
            peak_memory_bytes=peak or memory_limit,
            message=f"killed for memory{where}: it needs more than the course's memory limit "
            f"of {human_memory(memory_limit)} (course.toml resources.memory_limit)",
            log_tail=tail,
        )
    if result is None:
        return make(
            Status.ERROR,
            cell=last_cell,
            message=f"the runner exited with code {outcome.exit_code} without a result",
            log_tail=tail,
        )
    status = result.get("status")
    if status == "passed":
        return make(Status.PASSED, peak_memory_bytes=peak)
    if status == "missing":
        return make(Status.MISSING, message=str(result.get("message", "")), log_tail=tail)
    exception = result.get("exception")
    message = str(result.get("message", "")).strip()
    if status == "kernel-died":
        message = f"the kernel died{where}: {message}"
    detail = strip_ansi(str(result.get("traceback", ""))).strip()
    if status != "kernel-died" and is_network_failure(exception, f"{message}\n{detail}"):
        return make(
            Status.NETWORK,
            cell=result.get("cell"),
            exception=exception,
            message=f"{message} ({_network_advice(network)})",
            peak_memory_bytes=peak,
            log_tail="\n".join((detail or tail).splitlines()[-LOG_TAIL_LINES:]),
        )
    return make(
        Status.FAILED,
        cell=result.get("cell"),
        exception=exception,
        failures=tuple((f["cell"], f["exception"]) for f in result.get("failures", ())),
        message=message + _advice_for(exception, message, flavor),
        peak_memory_bytes=peak,
        log_tail="\n".join((detail or tail).splitlines()[-LOG_TAIL_LINES:]),
    )


# --- GPUs -------------------------------------------------------------------------------------

#: `docker run --gpus all` in the Docker API: every GPU, through the NVIDIA container runtime.
GPU_REQUEST = {"count": -1, "capabilities": [["gpu"]]}
ON_CPU = "GPU course smoke-tested on CPU"

#: Python that sets `probe` to what PyTorch sees (every flavor has PyTorch).
TORCH_PROBE = r"""
import json
try:
    import torch
except ImportError:
    probe = {"torch": None}
else:
    cuda = torch.cuda.is_available()
    device = "cuda:0 (%s)" % torch.cuda.get_device_name(0) if cuda else "cpu"
    probe = {"torch": torch.__version__, "cuda_available": cuda, "device": device}
"""
#: What PyTorch sees in the container, as one JSON line.
PROBE_SCRIPT = TORCH_PROBE + "print(json.dumps(probe))\n"


def accelerator_report(
    gpu_course: bool, gpus: bool, probe: dict[str, Any] | None, on_host: bool = False
) -> tuple[str, str]:
    """(the report's accelerator line, an error that stops the smoke test or "").

    With `gpus`, the notebooks must see a GPU: a run that asked for one and got the CPU is an
    error, never a pass. Without, a GPU course says that it was tested on the CPU. `on_host`:
    the notebooks ran with the machine's Python (on_host.py), not in the image's container.
    """
    if not gpus:
        return (f"{ON_CPU} (smoke-test --gpus runs it on a GPU)" if gpu_course else ""), ""
    if not probe or not probe.get("torch"):
        runner = "this machine's Python" if on_host else "the image"
        return "", f"--gpus: {runner} has no PyTorch to say whether the GPU is used"
    seen = f"torch {probe['torch']}: torch.cuda.is_available() = {probe['cuda_available']}"
    if not probe["cuda_available"]:
        where, visible = ("here", "here") if on_host else ("in the container", "to the container")
        return "", (
            f"--gpus: {seen} {where}: the GPU is not used (a CPU build of PyTorch, "
            f"or no GPU visible {visible})"
        )
    return f"run with GPUs: {seen}, device {probe['device']}", ""


def probe_accelerator(client: Any, image: str, gpus: bool) -> dict[str, Any]:
    """What PyTorch sees in a container of `image` (with every GPU if `gpus`); always removed."""
    container = client.containers.create(
        image,
        ["python3", "-I", "-c", PROBE_SCRIPT],
        working_dir="/",
        network_mode="none",
        device_requests=[GPU_REQUEST] if gpus else None,
    )
    try:
        container.start()  # where Docker has no GPU to give, this raises
        container.wait(timeout=120)
        output = container.logs(stdout=True, stderr=False).decode()
    finally:
        container.remove(force=True)
    return dict(json.loads(output.strip().splitlines()[-1]))


# --- Docker -----------------------------------------------------------------------------------


def _container_peak_memory(container: Any) -> int | None:
    try:
        stats = container.stats(stream=False).get("memory_stats", {})
    except Exception:
        return None
    value = stats.get("max_usage") or stats.get("usage")
    return int(value) if value else None


def run_container(
    client: Any,
    image: str,
    notebook: str,
    *,
    memory_limit: int,
    timeout_seconds: int,
    network: bool,
    label: str,
    gpus: bool = False,
) -> ContainerOutcome:
    """Runs the runner for one notebook in a fresh container; always removes it."""
    import requests  # the docker SDK's transport; its timeouts surface as requests errors

    container = client.containers.create(
        image,
        ["python3", "-c", runner_source(), notebook, str(timeout_seconds + DEADLINE_MARGIN)],
        working_dir=COURSE_HOME,
        mem_limit=memory_limit,
        memswap_limit=memory_limit,
        network_mode="default" if network else "none",
        labels={CONTAINER_LABEL: label},
        environment={"PYTHONUNBUFFERED": "1"},
        device_requests=[GPU_REQUEST] if gpus else None,
    )
    try:
        started = time.monotonic()
        container.start()
        timed_out, peak = False, None
        try:
            status = container.wait(timeout=timeout_seconds)
            exit_code = status.get("StatusCode")
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            timed_out = True
            peak = _container_peak_memory(container)
            container.kill()
            exit_code = container.wait(timeout=60).get("StatusCode")
        duration = time.monotonic() - started
        container.reload()
        state = container.attrs.get("State", {})
        output = container.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")
        return ContainerOutcome(
            output=output,
            exit_code=exit_code,
            oom_killed=bool(state.get("OOMKilled")),
            timed_out=timed_out,
            duration_seconds=duration,
            peak_memory_bytes=peak,
        )
    finally:
        container.remove(force=True)


def remove_stopped_containers(client: Any, label: str) -> None:
    """Containers a killed smoke test left behind (they stop themselves at their deadline)."""
    try:
        stale = client.containers.list(
            all=True, filters={"label": f"{CONTAINER_LABEL}={label}", "status": "exited"}
        )
        for container in stale:
            container.remove(force=True)
    except Exception:  # best effort: never fail a smoke test over housekeeping
        pass


def run_notebook(
    client: Any, image: str, course: Course, notebook: str, gpus: bool = False
) -> NotebookResult:
    limit = course.resources.memory_limit
    timeout = course.smoke_test.timeout_seconds
    try:
        outcome = run_container(
            client,
            image,
            notebook,
            memory_limit=limit,
            timeout_seconds=timeout,
            network=course.smoke_test.has_network(notebook),
            label=course.slug,
            gpus=gpus,
        )
    except Exception as e:  # docker.errors.* and transport errors: not the notebook's fault
        return NotebookResult(notebook, Status.ERROR, 0.0, message=f"Docker: {e}")
    return interpret(
        notebook, outcome, limit, timeout, course.flavor, course.smoke_test.has_network(notebook)
    )


def _format_bytes(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:.0f} MB"


def smoke_test_course(
    client: Any,
    course: Course,
    image: str,
    log: Log = print,
    notebooks: Sequence[str] | None = None,
    gpus: bool = False,
    expected: Expected | None = None,
) -> SmokeResult:
    """Runs every notebook of `course` (or the given ones) in `image`, one container each:
    listed or not, less those course.toml's `smoke_test.skip` leaves out (reported with reasons).

    `gpus`: every container gets every GPU (`docker run --gpus all`), and the result says what
    PyTorch saw there; it is an error if that is not a GPU. `expected`: the course's recorded
    failures (expected-failures.toml), which a notebook must fail exactly.
    """
    try:
        client.images.get(image)
    except Exception as e:
        return course_result(
            course,
            image,
            (),
            error=f"image {image} is not available ({e}); build it with "
            f"`./pants package courses/{course.slug}#image`",
        )
    probe = None
    if gpus:
        log(f"smoke-test: {course.slug}: asking Docker for every GPU (--gpus all)")
        try:
            probe = probe_accelerator(client, image, gpus=True)
        except Exception as e:  # docker.errors.*: no NVIDIA runtime, no GPU
            return course_result(
                course,
                image,
                (),
                error=f"--gpus: Docker could not start a container with GPUs: {e}",
            )
    accelerator, error = accelerator_report(course.gpu, gpus, probe)
    if error:
        return course_result(course, image, (), error=error)
    remove_stopped_containers(client, course.slug)
    results = run_notebooks(
        course,
        lambda notebook: run_notebook(client, image, course, notebook, gpus),
        log,
        notebooks,
        gpus,
        expected,
    )
    return course_result(course, image, results, accelerator=accelerator)


def course_result(
    course: Course,
    where: str,
    notebooks: tuple[NotebookResult, ...],
    error: str = "",
    accelerator: str = "",
) -> SmokeResult:
    """A course's smoke test result; `where`: the image, or the host's Python."""
    return SmokeResult(
        course=course.slug,
        image=where,
        memory_limit_bytes=course.resources.memory_limit,
        timeout_seconds=course.smoke_test.timeout_seconds,
        network=course.smoke_test.network,
        notebooks=notebooks,
        error=error,
        accelerator=accelerator,
        skipped=course.smoke_test.skip,
    )


def run_notebooks(
    course: Course,
    run: Callable[[str], NotebookResult],
    log: Log,
    notebooks: Sequence[str] | None,
    gpus: bool,
    expected: Expected | None,
) -> tuple[NotebookResult, ...]:
    """Every selected notebook through `run` (a container or the host), judged against its
    expected failures and, with `smoke_test.outputs = "strict"`, its saved outputs."""
    results = []
    selected = list(notebooks or course.smoke_tested_notebooks)
    for index, notebook in enumerate(selected, start=1):
        log(
            f"smoke-test: {course.slug} [{index}/{len(selected)}] {notebook}: running "
            f"(memory {human_memory(course.resources.memory_limit)}, "
            f"network {'on' if course.smoke_test.has_network(notebook) else 'off'}, "
            f"{'GPUs' if gpus else 'CPU'}, timeout {course.smoke_test.timeout_seconds} s)"
        )
        result = judge(run(notebook), (expected or {}).get(notebook, {}))
        if result.passed and result.drift and course.smoke_test.outputs == "strict":
            cells = ", ".join(sorted({str(cell) for cell, *_ in result.drift}, key=int))
            result = dataclasses.replace(
                result,
                status=Status.FAILED,
                cell=result.drift[0][0],
                message=f"the outputs of cell(s) {cells} differ from those saved in the notebook "
                '(course.toml smoke_test.outputs = "strict"; save the notebook with its new '
                "outputs if they are right)",
            )
        log(
            f"smoke-test: {course.slug} [{index}/{len(selected)}] {notebook}: {result.summary()} "
            f"({result.duration_seconds:.1f} s, peak {_format_bytes(result.peak_memory_bytes)})"
        )
        results.append(result)
    return tuple(results)


# --- which course -----------------------------------------------------------------------------


def read_course_for_smoke_test(directory: Path) -> Course:
    """The course's metadata, even when a listed notebook is missing from the directory.

    The smoke test then reports that notebook as missing from the image (where learners would
    miss it) instead of refusing to run; every other metadata error still raises.
    """
    return read_course(directory, allow_missing_notebooks=True)
