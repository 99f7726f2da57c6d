"""Test support for the dashboards tests: a small catalog, reading the dashboards' JSON (panels,
expressions, Grafana variables substituted), and a real Prometheus with synthetic data.

The synthetic series imitate what kube-state-metrics, cAdvisor, the DCGM exporter and
JupyterHub export for a hub in namespace `jupyterhub` with five learner pods:

- jupyter-alice (intro-python): running, OOM-killed and restarted 2 minutes before the end;
  memory working sets are 75%, 87.5%, 50% and 25% of the four courses' limits;
- jupyter-bob (deep-learning, GPU): running for 10 hours, past the culler's maximum age;
- jupyter-carol (ml) and jupyter-dave (ml-advanced): running (slugs that share a prefix);
  dave was OOM-killed near the start, so its last-terminated-reason gauge is still 1;
- jupyter-erin (intro-python): Pending, waiting in ImagePullBackOff;
- jupyter-frank (deep-learning): Pending and unschedulable (no GPU node);
plus the hub and proxy pods (no course label) and the hub's own metrics.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from catalog import Catalog, parse_course
from dashboards.common import Settings

NAMESPACE = Settings().namespace
STEP = 30  # seconds between synthetic samples
SPAN = 2 * 3600  # seconds of synthetic data, ending shortly before the test starts
GiB = 2**30

COURSES = {
    "intro-python": 'title = "Intro to Python"\nflavor = "pytorch"\n'
    'notebooks = ["01.ipynb"]\n[resources]\nmemory_limit = "2Gi"\ncpu_limit = 1\n',
    "deep-learning": 'title = "Deep learning"\nflavor = "pytorch"\ngpu = true\n'
    'notebooks = ["01.ipynb"]\n[resources]\nmemory_limit = "8Gi"\ncpu_limit = 4\n',
    "ml": 'title = "Machine learning"\nflavor = "tensorflow"\n'
    'notebooks = ["01.ipynb"]\n[resources]\nmemory_limit = "4Gi"\ncpu_limit = 2\n',
    "ml-advanced": 'title = "Advanced ML"\nflavor = "tensorflow"\n'
    'notebooks = ["01.ipynb"]\n[resources]\nmemory_limit = "4Gi"\ncpu_limit = 2\n',
}


def make_catalog(courses: dict[str, str] | None = None) -> Catalog:
    """A catalog of `slug -> course.toml text` (default: COURSES), each with one notebook."""
    files = ["01.ipynb", "requirements.txt"]
    items = (COURSES if courses is None else courses).items()
    return Catalog(tuple(parse_course(slug, text, files) for slug, text in items))


def make_repo(root: Path, courses: dict[str, str] | None = None) -> Path:
    """A monorepo root at `root` with the courses (default: COURSES), as `load_catalog` reads it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pants.toml").write_text("")
    for slug, text in (COURSES if courses is None else courses).items():
        course = root / "courses" / slug
        course.mkdir(parents=True)
        (course / "course.toml").write_text(text)
        (course / "requirements.txt").write_text("")
        (course / "01.ipynb").write_text("{}")
    return root


# --- Reading the dashboards' JSON -----------------------------------------------------------


def panels_of(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The non-row panels of a dashboard's JSON, in order."""
    return [panel for panel in data.get("panels", []) if panel.get("type") != "row"]


def expressions_of(data: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """`(panel title, refId, expr)` for every target of every panel of a dashboard's JSON."""
    return [
        (panel["title"], target["refId"], target["expr"])
        for panel in panels_of(data)
        for target in panel.get("targets", [])
    ]


# --- Synthetic series ---------------------------------------------------------------------

Value = Callable[[float], Optional[float]]  # seconds since the data's start -> value, or absent


@dataclass(frozen=True)
class Series:
    name: str
    labels: dict[str, str]
    value: Value


def _const(v: float) -> Value:
    return lambda t: v


def _counter(per_second: float) -> Value:
    return lambda t: per_second * t


def _step(at: float) -> Value:
    """A counter that goes from 0 to 1 at `at`: one restart."""
    return lambda t: 1.0 if t >= at else 0.0


def _from(start: float, value: Value) -> Value:
    return lambda t: value(t) if t >= start else None


@dataclass(frozen=True)
class Pod:
    name: str
    course: str | None
    container: str
    phase: str = "Running"
    age: float = 3600.0  # seconds at the end of the data
    memory: float = 1 * GiB
    cpu: float = 0.25
    waiting: str | None = None
    oom_at: float | None = None  # seconds since the data's start
    gpu_util: float | None = None
    unschedulable: bool = False


PODS = (
    Pod("jupyter-alice", "intro-python", "notebook", memory=1.5 * GiB, cpu=0.5, oom_at=SPAN - 120),
    Pod(
        "jupyter-bob",
        "deep-learning",
        "notebook",
        age=10 * 3600,
        memory=7 * GiB,
        cpu=3.0,
        gpu_util=80.0,
    ),
    Pod("jupyter-carol", "ml", "notebook", memory=2 * GiB, cpu=1.0),
    Pod("jupyter-dave", "ml-advanced", "notebook", memory=1 * GiB, cpu=0.2, oom_at=600),
    Pod(
        "jupyter-erin",
        "intro-python",
        "notebook",
        phase="Pending",
        age=600,
        memory=0,
        cpu=0,
        waiting="ImagePullBackOff",
    ),
    Pod(
        "jupyter-frank",
        "deep-learning",
        "notebook",
        phase="Pending",
        age=900,
        memory=0,
        cpu=0,
        unschedulable=True,
    ),
    Pod("hub-5d8f7c9b4-x2x9q", None, "hub", memory=300e6, cpu=0.1),
    Pod("proxy-6c8d9f7b5-kq7zv", None, "chp", memory=80e6, cpu=0.05),
)


def pod_series(pod: Pod, end: float) -> list[Series]:
    """What kube-state-metrics, cAdvisor and DCGM export for one pod."""
    ns = {"namespace": NAMESPACE, "pod": pod.name}
    container = {**ns, "container": pod.container}
    pod_uid = {**ns, "uid": f"uid-{pod.name}"}
    labels = {**pod_uid, "label_course": pod.course} if pod.course else pod_uid
    tag = f"{pod.course or pod.container}-1a2b3c4d"
    image = f"registry.example/ol-course-notebooks:{tag}"
    restarts = _const(0) if pod.oom_at is None else _step(pod.oom_at)
    series = [
        Series("kube_pod_labels", labels, _const(1)),
        Series("kube_pod_created", pod_uid, _const(end - pod.age)),
        Series("kube_pod_status_phase", {**ns, "phase": pod.phase}, _const(1)),
        Series("kube_pod_status_phase", {**ns, "phase": "Failed"}, _const(0)),
        Series(
            "kube_pod_container_info",
            {**container, "image": image, "image_spec": image, "container_id": "c1"},
            _const(1),
        ),
        Series("kube_pod_container_status_restarts_total", container, restarts),
    ]
    if pod.waiting:
        series.append(
            Series(
                "kube_pod_container_status_waiting_reason",
                {**container, "reason": pod.waiting},
                _const(1),
            )
        )
    if pod.unschedulable:
        series.append(Series("kube_pod_status_unschedulable", pod_uid, _const(1)))
    if pod.oom_at is not None:
        reason = {**container, "reason": "OOMKilled"}
        series.append(
            Series(
                "kube_pod_container_status_last_terminated_reason",
                reason,
                _from(pod.oom_at, _const(1)),
            )
        )
    if pod.phase == "Running":
        cadvisor = {**container, "image": image, "id": f"/kubepods/{pod.name}", "name": "c1"}
        series += [
            Series("container_memory_working_set_bytes", cadvisor, _const(pod.memory)),
            Series("container_cpu_usage_seconds_total", cadvisor, _counter(pod.cpu)),
        ]
    if pod.gpu_util is not None:
        dcgm = {**container, "gpu": "0", "UUID": "GPU-1", "modelName": "NVIDIA T4"}
        series += [
            Series("DCGM_FI_DEV_GPU_UTIL", dcgm, _const(pod.gpu_util)),
            Series("DCGM_FI_DEV_FB_USED", dcgm, _const(4000)),
        ]
    return series


def _histogram(
    name: str, labels: dict[str, str], per_second: float, shares: dict[str, float]
) -> list[Series]:
    """A Prometheus histogram's `_bucket`, `_count` and `_sum` counters."""
    series = [
        Series(f"{name}_bucket", {**labels, "le": le}, _counter(per_second * share))
        for le, share in shares.items()
    ]
    series.append(Series(f"{name}_count", labels, _counter(per_second)))
    series.append(Series(f"{name}_sum", labels, _counter(per_second * 20)))
    return series


def hub_series() -> list[Series]:
    """What JupyterHub's /hub/metrics exports, as scraped by job `hub`."""
    hub = {"job": "hub", "namespace": NAMESPACE, "instance": "hub:8081"}
    spawn_buckets = {"1.0": 0.0, "5.0": 0.2, "10.0": 0.6, "30.0": 0.9, "60.0": 1.0, "+Inf": 1.0}
    request_buckets = {"0.01": 0.5, "0.1": 0.9, "1.0": 0.99, "+Inf": 1.0}
    series = [
        Series("up", hub, _const(1)),
        Series("jupyterhub_running_servers", hub, _const(4)),
        *(
            Series("jupyterhub_active_users", {**hub, "period": period}, _const(users))
            for period, users in (("24h", 12), ("7d", 40), ("30d", 95))
        ),
    ]
    spawn = "jupyterhub_server_spawn_duration_seconds"
    for status, reason, rate in (
        ("success", "", 1 / 60),
        ("failure", "", 1 / 600),
        ("failure", "already-pending", 1 / 120),
    ):
        series += _histogram(
            spawn, {**hub, "status": status, "reason": reason}, rate, spawn_buckets
        )
    requests = "jupyterhub_request_duration_seconds"
    for code, rate in (("200", 2.0), ("302", 0.5), ("500", 0.01)):
        labels = {**hub, "code": code, "method": "GET", "handler": "jupyterhub.apihandlers.users"}
        series += _histogram(requests, labels, rate, request_buckets)
    return series


def openmetrics(series: list[Series], start: float, end: float) -> str:
    """The series as an OpenMetrics text file for `promtool tsdb create-blocks-from`."""
    lines = []
    names = sorted({s.name for s in series})
    steps = int((end - start) // STEP)
    for name in names:
        lines.append(f"# TYPE {name} unknown")
        for one in (s for s in series if s.name == name):
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(one.labels.items()))
            for i in range(steps + 1):
                value = one.value(i * STEP)
                if value is not None:
                    lines.append(f"{name}{{{labels}}} {value!r} {start + i * STEP:.0f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


# --- A real Prometheus --------------------------------------------------------------------


@dataclass(frozen=True)
class PrometheusServer:
    url: str
    eval_time: float  # a time inside the synthetic data, for instant queries

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query at `eval_time`; raises AssertionError with Prometheus' error."""
        params = urllib.parse.urlencode({"query": expr, "time": f"{self.eval_time:.3f}"})
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query?{params}", timeout=30) as r:
                answer = json.load(r)
        except urllib.error.HTTPError as error:
            raise AssertionError(f"Prometheus refused {expr!r}: {error.read().decode()}") from None
        assert answer["status"] == "success", answer
        result = answer["data"]["result"]
        return result if isinstance(result, list) else [{"metric": {}, "value": result}]

    def query_range(self, expr: str, start: float, end: float, step: int) -> list[dict[str, Any]]:
        """A range query; raises AssertionError with Prometheus' error."""
        params = urllib.parse.urlencode(
            {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": step}
        )
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query_range?{params}", timeout=30) as r:
                answer = json.load(r)
        except urllib.error.HTTPError as error:
            raise AssertionError(f"Prometheus refused {expr!r}: {error.read().decode()}") from None
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as response:
            return json.load(response)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"prometheus was not ready after 60 s:\n{log.read_text()}")


#: Kept-work claims (hub/spawner.py): (claim, course, bytes used). kube-state-metrics exports
#: their labels; the kubelet the volume stats of mounted ones; a ResourceQuota caps them.
KEPT_CLAIMS = (
    ("work-0a1b-intro-python", "intro-python", 300e6),
    ("work-2c3d-intro-python", "intro-python", 120e6),
    ("work-0a1b-ml", "ml", 900e6),
)


def kept_work_series() -> list[Series]:
    series = []
    for claim, course, used in KEPT_CLAIMS:
        ns = {"namespace": NAMESPACE, "persistentvolumeclaim": claim}
        person = claim.split("-")[1]
        labels = {**ns, "label_course": course, "label_person": person}
        series += [
            Series("kube_persistentvolumeclaim_labels", labels, _const(1)),
            Series("kubelet_volume_stats_used_bytes", ns, _const(used)),
        ]
    quota = {
        "namespace": NAMESPACE,
        "resourcequota": "kept-work",
        "resource": "efs-sc.storageclass.storage.k8s.io/requests.storage",
    }
    return series + [
        Series("kube_resourcequota", {**quota, "type": "hard"}, _const(500 * GiB)),
        Series("kube_resourcequota", {**quota, "type": "used"}, _const(3 * GiB)),
    ]


def synthetic_data(end: float) -> str:
    """Every synthetic series over the SPAN seconds before `end`, as OpenMetrics text."""
    series = [s for pod in PODS for s in pod_series(pod, end)] + hub_series() + kept_work_series()
    return openmetrics(series, end - SPAN, end)


@contextmanager
def running_prometheus(
    work: Path,
    promtool: str,
    prometheus: str,
    rules_files: tuple[Path, ...] = (),
    data: tuple[str, float] | None = None,
) -> Iterator[PrometheusServer]:
    """A Prometheus on a free loopback port serving the synthetic data (and rules), or `data`:
    (OpenMetrics text, a time inside it for instant queries); stopped after."""
    if data is None:
        end = math.floor(time.time() / STEP) * STEP - STEP
        text, eval_time = synthetic_data(end), float(end - 60)
    else:
        text, eval_time = data
    (work / "data.om").write_text(text)
    subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(work / "data.om"),
            str(work / "tsdb"),
        ],
        check=True,
        capture_output=True,
    )
    rule_lines = "".join(f"  - {json.dumps(str(path))}\n" for path in rules_files)
    (work / "prometheus.yml").write_text(
        "global:\n  evaluation_interval: 1m\n"
        + (f"rule_files:\n{rule_lines}" if rules_files else "")
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = work / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                prometheus,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'tsdb'}",
                "--storage.tsdb.retention.time=30d",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(url, process, log)
        yield PrometheusServer(url=url, eval_time=eval_time)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
