"""Smoke-test results without Docker: interpreting a container's end, rendering, JSON, JUnit."""

from __future__ import annotations

import json
import re
from xml.etree import ElementTree

import pytest

from tools.course_check.in_container import MARKER
from tools.course_check.model import NotebookResult, SmokeResult, Status, human_memory
from tools.course_check.report import smoke_junit, smoke_summary
from tools.course_check.smoke import ON_CPU, ContainerOutcome, accelerator_report, interpret
from tools.course_check.smoke_cli import result_name

LIMIT = 1_000_000_000


def event(**data) -> str:
    return MARKER + json.dumps(data)


def outcome(*lines: str, exit_code: int = 0, oom: bool = False, timed_out: bool = False):
    return ContainerOutcome("\n".join(lines), exit_code, oom, timed_out, 4.25, None)


def test_passed() -> None:
    result = interpret(
        "a.ipynb",
        outcome(
            event(event="cell", cell=2), event(event="result", status="passed", peak_memory_bytes=5)
        ),
        LIMIT,
        60,
    )
    assert result == NotebookResult("a.ipynb", Status.PASSED, 4.25, peak_memory_bytes=5)


def test_failed_cell_with_module_advice() -> None:
    result = interpret(
        "a.ipynb",
        outcome(
            "\x1b[31mnoise\x1b[0m",
            event(event="cell", cell=3),
            event(
                event="result",
                status="failed",
                cell=3,
                exception="ModuleNotFoundError",
                message="No module named 'sklearn'",
                traceback="Traceback\nModuleNotFoundError: No module named 'sklearn'",
            ),
            exit_code=1,
        ),
        LIMIT,
        60,
    )
    assert (result.status, result.cell, result.exception) == (
        Status.FAILED,
        3,
        "ModuleNotFoundError",
    )
    assert "scikit-learn" in result.message and "requirements.txt" in result.message
    assert result.summary().startswith("failed: cell 3: ModuleNotFoundError: No module named")


@pytest.mark.parametrize(
    ("module", "flavor", "advice"),
    [
        # The flavor has it: something in the course's lock broke it; pinning is no fix.
        ("sklearn", "pytorch", "the pytorch flavor has it installed"),
        # The flavor has the package but not that module (an old package imports a module the
        # installed version removed): no "installed" hint, the version that is there.
        (
            "IPython.core.inputsplitter",
            "pytorch",
            "the pytorch flavor has `IPython` (ipython ",
        ),
        # Another flavor has it: that flavor is the fix, not its installed version as a pin.
        ("tensorflow", "pytorch", 'the tensorflow flavor provides it: set `flavor = "tensorflow"`'),
        ("plotly", "pytorch", "add `plotly==<version>` to requirements.txt"),
    ],
)
def test_module_advice_never_pins_an_installed_version(
    module: str, flavor: str, advice: str
) -> None:
    failure = event(
        event="result",
        status="failed",
        cell=1,
        exception="ModuleNotFoundError",
        message=f"No module named '{module}'",
    )
    result = interpret("a.ipynb", outcome(failure, exit_code=1), LIMIT, 60, flavor)
    assert advice in result.message
    assert not re.search(r"==\d", result.message), result.message


def test_timed_out_names_the_running_cell() -> None:
    result = interpret(
        "a.ipynb",
        outcome(
            event(event="cell", cell=2), event(event="cell", cell=5), timed_out=True, exit_code=137
        ),
        LIMIT,
        30,
    )
    assert (result.status, result.cell) == (Status.TIMED_OUT, 5)
    assert "still running after 30 s in cell 5" in result.message


@pytest.mark.parametrize(
    "lines, oom, exit_code",
    [
        # the kernel was killed and the runner saw the cgroup's oom_kill counter
        (
            [event(event="cell", cell=4), event(event="result", status="out-of-memory", cell=4)],
            False,
            1,
        ),
        # the kernel died and Docker says OOMKilled
        (
            [event(event="cell", cell=4), event(event="result", status="kernel-died", cell=4)],
            True,
            1,
        ),
        # the whole container was killed (the runner never reported)
        ([event(event="cell", cell=4)], False, 137),
    ],
)
def test_out_of_memory(lines: list[str], oom: bool, exit_code: int) -> None:
    result = interpret("a.ipynb", outcome(*lines, oom=oom, exit_code=exit_code), 384_000_000, 60)
    assert (result.status, result.cell) == (Status.OUT_OF_MEMORY, 4)
    assert "memory limit of 384M" in result.message
    assert result.peak_memory_bytes == 384_000_000


def test_missing_and_runner_errors() -> None:
    missing = interpret(
        "n/a.ipynb",
        outcome(
            event(event="result", status="missing", message="not found; notebooks there: b.ipynb"),
            exit_code=3,
        ),
        LIMIT,
        60,
    )
    assert missing.status is Status.MISSING and "b.ipynb" in missing.message
    crashed = interpret("a.ipynb", outcome("python3: not found", exit_code=127), LIMIT, 60)
    assert crashed.status is Status.ERROR and "code 127" in crashed.message
    assert "python3: not found" in crashed.log_tail


def test_kernel_died_without_oom_is_a_failure() -> None:
    result = interpret(
        "a.ipynb",
        outcome(
            event(event="result", status="kernel-died", cell=2, message="Kernel died"), exit_code=1
        ),
        LIMIT,
        60,
    )
    assert result.status is Status.FAILED and "the kernel died" in result.message


def test_human_memory() -> None:
    assert [human_memory(v) for v in (2**31, 10**9, 384 * 10**6, 512 * 2**20, 1234567)] == [
        "2Gi",
        "1G",
        "384M",
        "512Mi",
        "1 MB",
    ]


def results() -> list[SmokeResult]:
    ok = NotebookResult("lectures/a b.ipynb", Status.PASSED, 3.0, peak_memory_bytes=200_000_000)
    bad = NotebookResult(
        "b.ipynb", Status.FAILED, 2.5, 100, 3, "KeyError", "'x'", log_tail="Traceback <x>"
    )
    hung = NotebookResult("c.ipynb", Status.TIMED_OUT, 60.0, None, 2, None, "still running")
    return [
        SmokeResult("good", "r/img:good-1", 2**30, 300, False, (ok,)),
        SmokeResult("bad", "r/img:bad-1", 10**9, 60, True, (ok, bad, hung)),
        SmokeResult(
            "gone", "r/img:gone-1", 10**9, 60, False, (), error="image r/img:gone-1 missing"
        ),
        SmokeResult("gpu", "r/img:gpu-1", 2**31, 300, ("a.ipynb",), (ok,), accelerator=ON_CPU),
    ]


def test_json_round_trip() -> None:
    for result in results():
        data = json.loads(json.dumps(result.to_dict()))
        assert data["kind"] == "course-smoke-test"
        assert SmokeResult.from_dict(data) == result
        assert data["passed"] == (result.course in ("good", "gpu"))


def test_summary_table() -> None:
    text = smoke_summary(results())
    lines = text.splitlines()
    assert lines[0].split() == [
        "course",
        "notebook",
        "result",
        "time",
        "(s)",
        "peak",
        "memory",
        "limit",
    ]
    assert any(line.split()[:3] == ["bad", "b.ipynb", "failed"] for line in lines)
    assert "bad: b.ipynb: failed: cell 3: KeyError: 'x'" in text
    assert "bad: c.ipynb: timed-out: cell 2: still running" in text
    assert "gone: image r/img:gone-1 missing" in text
    assert "gpu: GPU course smoke-tested on CPU" in text
    assert text.endswith("2 of 4 course(s) passed")


def test_a_course_whose_every_notebook_is_skipped_says_why_it_failed() -> None:
    skipped = SmokeResult(
        "quiet", "r/img:quiet-1", 2**30, 300, False, (), skipped=(("a.ipynb", "needs a GPU"),)
    )
    text = smoke_summary([skipped])
    assert "quiet: a.ipynb: not run (course.toml smoke_test.skip: needs a GPU)" in text
    assert "quiet: failed: no notebook ran (smoke_test.skip or --notebook left out" in text
    assert text.endswith("0 of 1 course(s) passed")
    suite = ElementTree.fromstring(smoke_junit(skipped))
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("1", "1", "0")


def test_junit() -> None:
    suite = ElementTree.fromstring(smoke_junit(results()[1]))
    assert suite.tag == "testsuite" and suite.get("name") == "smoke-test.bad"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "2", "0")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["lectures/a b.ipynb", "b.ipynb", "c.ipynb"]
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("type") == "failed"
    assert failure.get("message") == "failed: cell 3: KeyError: 'x'"
    assert failure.text == "Traceback <x>"
    assert cases[2].find("failure").get("type") == "timed-out"  # type: ignore[union-attr]
    gone = ElementTree.fromstring(smoke_junit(results()[2]))
    assert gone.get("errors") == "1" and gone.find("testcase/error") is not None
    assert suite.find("properties/property[@name='accelerator']") is None
    gpu = ElementTree.fromstring(smoke_junit(results()[3]))
    assert gpu.find("properties/property[@name='accelerator']").get("value") == ON_CPU  # type: ignore[union-attr]
    assert gpu.find("properties/property[@name='network']").get("value") == "a.ipynb"  # type: ignore[union-attr]


CPU_TORCH = {"torch": "2.13.0+cpu", "cuda_available": False, "device": "cpu"}
CUDA_TORCH = {"torch": "2.13.0", "cuda_available": True, "device": "cuda:0 (NVIDIA H200)"}


@pytest.mark.parametrize(
    ("gpu_course", "gpus", "probe", "expected"),
    [
        pytest.param(False, False, None, ("", ""), id="cpu-course-on-cpu"),
        pytest.param(
            True,
            False,
            None,
            ("GPU course smoke-tested on CPU (smoke-test --gpus runs it on a GPU)", ""),
            id="gpu-course-on-cpu-says-so",
        ),
        pytest.param(
            True,
            True,
            CUDA_TORCH,
            (
                "run with GPUs: torch 2.13.0: torch.cuda.is_available() = True, "
                "device cuda:0 (NVIDIA H200)",
                "",
            ),
            id="gpu-course-on-gpu-names-the-device",
        ),
        pytest.param(
            False,
            True,
            CUDA_TORCH,
            (
                "run with GPUs: torch 2.13.0: torch.cuda.is_available() = True, "
                "device cuda:0 (NVIDIA H200)",
                "",
            ),
            id="cpu-course-on-gpu",
        ),
        pytest.param(
            True,
            True,
            CPU_TORCH,
            (
                "",
                "--gpus: torch 2.13.0+cpu: torch.cuda.is_available() = False in the container: "
                "the GPU is not used (a CPU build of PyTorch, or no GPU visible to the container)",
            ),
            id="gpus-asked-but-cpu-used-is-an-error",
        ),
        pytest.param(
            True,
            True,
            {"torch": None},
            ("", "--gpus: the image has no PyTorch to say whether the GPU is used"),
            id="gpus-asked-without-torch-is-an-error",
        ),
    ],
)
def test_accelerator_report(
    gpu_course: bool, gpus: bool, probe: dict | None, expected: tuple[str, str]
) -> None:
    assert accelerator_report(gpu_course, gpus, probe) == expected


def failed_with(exception: str, message: str, network: bool) -> NotebookResult:
    return interpret(
        "d.ipynb",
        outcome(
            event(event="cell", cell=2),
            event(
                event="result",
                status="failed",
                cell=2,
                exception=exception,
                message=message,
                traceback=f"Traceback\n{exception}: {message}",
            ),
            exit_code=1,
        ),
        LIMIT,
        60,
        "pytorch",
        network,
    )


NO_NETWORK = (
    "this notebook has no network in the smoke test: if it must download something, list it in "
    "course.toml's smoke_test.network"
)
UNREACHABLE = "the network could not be reached from the smoke test: not a failure of the code"


@pytest.mark.parametrize(
    ("exception", "message", "network", "expected"),
    [
        pytest.param(
            "URLError",
            "<urlopen error [Errno -3] Temporary failure in name resolution>",
            False,
            (Status.NETWORK, NO_NETWORK),
            id="urllib-without-network",
        ),
        pytest.param(
            "ConnectionError",
            "HTTPSConnectionPool(host='x.invalid', port=443): Max retries exceeded",
            True,
            (Status.NETWORK, UNREACHABLE),
            id="requests-with-network",
        ),
        pytest.param(
            "OSError",
            "[Errno 101] Network is unreachable",
            False,
            (Status.NETWORK, NO_NETWORK),
            id="recognized-by-the-words",
        ),
        pytest.param("ValueError", "bad value", False, (Status.FAILED, ""), id="code-failure"),
    ],
)
def test_a_network_failure_is_not_a_code_failure(
    exception: str, message: str, network: bool, expected: tuple[Status, str]
) -> None:
    result = failed_with(exception, message, network)
    status, advice = expected
    assert (result.status, result.cell, result.exception) == (status, 2, exception)
    assert result.message == (f"{message} ({advice})" if advice else message)


def test_on_the_host_the_report_names_the_machine_not_a_container() -> None:
    assert accelerator_report(True, True, {"torch": None}, on_host=True) == (
        "",
        "--gpus: this machine's Python has no PyTorch to say whether the GPU is used",
    )
    assert accelerator_report(True, True, CPU_TORCH, on_host=True)[1] == (
        "--gpus: torch 2.13.0+cpu: torch.cuda.is_available() = False here: the GPU is not used "
        "(a CPU build of PyTorch, or no GPU visible here)"
    )


@pytest.mark.parametrize(
    ("image", "name"),
    [
        (f"127.0.0.1:5000/ol-course-notebooks:gpu-course-{'a' * 64}", "gpu-course"),
        # a GPU course's CPU image: files of its own beside its CUDA image's (Pants gathers every
        # test's reports into one folder, where two `gpu-course.smoke-test.xml` clash)
        (f"127.0.0.1:5000/ol-course-notebooks:gpu-course--cpu-{'b' * 64}", "gpu-course--cpu"),
        ("localhost/ol-course-notebooks:gpu-course", "gpu-course"),  # no content tag
        ("this machine", "gpu-course"),  # --host
    ],
)
def test_result_files_are_named_after_the_image(image: str, name: str) -> None:
    assert result_name("gpu-course", image) == name
