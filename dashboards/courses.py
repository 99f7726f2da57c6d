"""The "Courses" dashboard: learner servers per course, their memory, CPU, GPU and failures.

Query builders take a `Scope` (Grafana variables here, concrete values in `alerts.py`) so the
panels and the alert rules are the same PromQL.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from catalog import Catalog, Course, format_memory
from dashboards.common import (
    DASHBOARD_SCOPE,
    DEFAULTS,
    PanelSpec,
    Query,
    Scope,
    Section,
    Settings,
    by_course,
    catalog_constant,
    course_variable,
    dashboard,
    describe,
    selector,
    timeseries,
)
from hub import contract

UID = "ol-courses"
TITLE = "Courses"
IMAGE_PULL_REASONS = ("ErrImagePull", "ImagePullBackOff")
WAITING_REASONS = ("ContainerCreating", *IMAGE_PULL_REASONS)
UNSCHEDULABLE_FOR = "10m"  # the alert's `for`: longer than a GPU node takes to scale up
MIB = "mbytes"  # Grafana's unit for mebibytes; "decmbytes" is megabytes (10^6 bytes)


def _notebook(metric: str, settings: Settings, **matchers: str) -> str:
    return selector(
        metric, namespace=settings.namespace, container=settings.notebook_container, **matchers
    )


# --- Queries ------------------------------------------------------------------------------


def running_servers_by_image(scope: Scope, settings: Settings) -> str:
    running = selector("kube_pod_status_phase", namespace=settings.namespace, phase="Running")
    containers = (
        f"{_notebook('kube_pod_container_info', settings)} and on (namespace, pod) ({running} == 1)"
    )
    return f"count by (course, image) ({by_course(containers, scope, settings)})"


def server_age(scope: Scope, settings: Settings) -> str:
    created = selector("kube_pod_created", namespace=settings.namespace)
    return by_course(f"time() - {created}", scope, settings)


def servers_past_max_age(scope: Scope, settings: Settings, max_age_seconds: int) -> str:
    return f"count by (course) ({server_age(scope, settings)} > {max_age_seconds})"


def oldest_server_age(scope: Scope, settings: Settings) -> str:
    return f"max by (course) ({server_age(scope, settings)})"


def waiting_pods(scope: Scope, settings: Settings, reasons: tuple[str, ...]) -> str:
    waiting = _notebook(
        "kube_pod_container_status_waiting_reason", settings, reason="~" + "|".join(reasons)
    )
    return f"sum by (course, reason) ({by_course(waiting, scope, settings)} > 0)"


def memory_working_set(scope: Scope, settings: Settings) -> str:
    working_set = _notebook("container_memory_working_set_bytes", settings)
    return f"max by (course, pod) ({by_course(working_set, scope, settings)})"


def memory_limits(catalog: Catalog) -> str:
    return catalog_constant(catalog, lambda course: course.resources.memory_limit)


def cpu_limits(catalog: Catalog) -> str:
    return catalog_constant(catalog, lambda course: course.resources.cpu_limit)


def limits_in_use(limits: str, per_pod: str) -> str:
    """The catalog limit of each course that has a server in `per_pod`."""
    return f"({limits}) and on (course) count by (course) ({per_pod})"


def memory_share_of_limit(catalog: Catalog, scope: Scope, settings: Settings) -> str:
    per_pod = memory_working_set(scope, settings)
    return f"max by (course) ({per_pod} / on (course) group_left () ({memory_limits(catalog)}))"


def cpu_per_server(scope: Scope, settings: Settings) -> str:
    usage = (
        f"rate({_notebook('container_cpu_usage_seconds_total', settings)}[{scope.rate_interval}])"
    )
    return f"sum by (course, pod) ({by_course(usage, scope, settings)})"


def cpu_by_course(scope: Scope, settings: Settings) -> str:
    return f"sum by (course) ({cpu_per_server(scope, settings)})"


def cpu_share_of_limit(catalog: Catalog, scope: Scope, settings: Settings) -> str:
    per_pod = cpu_per_server(scope, settings)
    return f"max by (course) ({per_pod} / on (course) group_left () ({cpu_limits(catalog)}))"


def oom_kills(scope: Scope, settings: Settings) -> str:
    """OOM kills per course in the scope's interval: restarts of notebook containers whose last
    termination was an OOM kill (the reason gauge alone stays 1 long after a kill). `round`:
    increase() extrapolates to the window's edges, and kills are whole."""
    restarts = _notebook("kube_pod_container_status_restarts_total", settings)
    reason = _notebook(
        "kube_pod_container_status_last_terminated_reason", settings, reason="OOMKilled"
    )
    killed = (
        f"(round(increase({restarts}[{scope.rate_interval}])) > 0)"
        f" and on (namespace, pod, container) ({reason} == 1)"
    )
    return f"sum by (course) ({by_course(killed, scope, settings)})"


def unschedulable_pods(scope: Scope, settings: Settings) -> str:
    """Learner pods Pending because the scheduler finds no node for them (e.g. no GPU node)."""
    pending = selector("kube_pod_status_phase", namespace=settings.namespace, phase="Pending")
    unschedulable = selector("kube_pod_status_unschedulable", namespace=settings.namespace)
    stuck = f"({unschedulable} == 1) and on (namespace, pod) ({pending} == 1)"
    return f"count by (course) ({by_course(stuck, scope, settings)})"


def restarts(scope: Scope, settings: Settings, window: str = "1h") -> str:
    counter = _notebook("kube_pod_container_status_restarts_total", settings)
    return f"sum by (course) ({by_course(f'increase({counter}[{window}])', scope, settings)})"


def _dcgm(metric: str, settings: Settings) -> str:
    """A DCGM exporter metric with the GPU's pod in `namespace` and `pod` labels."""
    expr = metric
    for target, source in (
        ("pod", settings.dcgm_pod_label),
        ("namespace", settings.dcgm_namespace_label),
    ):
        if source != target:
            expr = f'label_replace({expr}, "{target}", "$1", "{source}", "(.+)")'
    return expr


def gpu_utilisation(scope: Scope, settings: Settings) -> str:
    util = _dcgm("DCGM_FI_DEV_GPU_UTIL", settings)
    return f"avg by (course) ({by_course(util, scope, settings)}) / 100"


def gpu_memory_used(scope: Scope, settings: Settings) -> str:
    used = _dcgm("DCGM_FI_DEV_FB_USED", settings)
    return f"sum by (course) ({by_course(used, scope, settings)})"


# --- Panels -------------------------------------------------------------------------------


def _limits_table(catalog: Catalog) -> str:
    if not len(catalog):
        return "The catalog has no courses yet."
    rows = ", ".join(
        f"{c.slug} {format_memory(c.resources.memory_limit)} / {c.resources.cpu_limit:g} CPU"
        for c in catalog
    )
    return f"Limits from the catalog: {rows}."


def server_panels(settings: Settings) -> list[PanelSpec]:
    s, scope = settings, DASHBOARD_SCOPE
    max_age = s.culler_max_age_seconds  # 0: the culler has no age limit, so no age threshold
    running = timeseries(
        "Running servers per course image",
        describe(
            "Learner servers in phase Running, counted per course and per image tag "
            "(kube_pod_container_info of the notebook container). After a course image is "
            "rebuilt, new servers move to the new tag and old ones drain as they are culled.",
            "No servers while learners say they are working: look at the Hub dashboard's "
            "spawn failures. Several tags for one course for longer than the culler's maximum "
            "age: old servers are not being culled (see the panel on the right).",
        ),
        [Query(running_servers_by_image(scope, s), "{{course}} {{image}}")],
        width=12,
        stacked=True,
    )
    oldest = timeseries(
        "Oldest server per course",
        describe(
            "Age of the oldest running server of each course; "
            + (
                f"the red line is the idle culler's maximum age "
                f"({max_age // 3600}h {max_age % 3600 // 60}m)."
                if max_age
                else "the idle culler has no maximum age here, so there is no red line."
            ),
            (
                "A line above the red one for longer than the culler's interval means the "
                "culler stopped working: check the hub's culler service logs "
                "(jupyterhub-idle-culler) and its API token; the 'servers past the maximum "
                f"age' alert fires after {s.culler_slack_seconds // 60} more minutes."
                if max_age
                else "Servers days old that nobody uses: the culler is not stopping idle "
                "servers; check its logs and its --timeout, or give it a maximum age."
            ),
        ),
        [Query(oldest_server_age(scope, s), "{{course}}")],
        unit="s",
        width=6 if max_age else 12,
        threshold=max_age or None,
    )
    past_max_age = timeseries(
        "Servers older than the culler's maximum age",
        describe(
            "Number of running servers per course older than the idle culler's maximum "
            f"age ({max_age} s). It should be empty.",
            "Any value: the culler is not stopping servers. Restart the hub (the culler runs "
            "as a hub service), check the culler's logs, and stop the listed servers from the "
            "hub's admin page if needed.",
        ),
        [Query(servers_past_max_age(scope, s, max_age), "{{course}}")],
        width=6,
    )
    return [
        running,
        oldest,
        *([past_max_age] if max_age else []),
        timeseries(
            "Pods waiting on image pulls",
            describe(
                "Learner pods whose notebook container is waiting, by reason: ContainerCreating "
                "(usually pulling the course image), ErrImagePull and ImagePullBackOff.",
                "ImagePullBackOff or ErrImagePull: the course's image tag is missing from the "
                "registry or the node cannot reach it; check the image map and the last publish "
                "of that course. Long ContainerCreating: images are large or nodes are new; "
                "consider pre-pulling course images.",
            ),
            [Query(waiting_pods(scope, s, WAITING_REASONS), "{{course}} {{reason}}")],
            width=12,
        ),
        timeseries(
            "Pods waiting for a node",
            describe(
                "Learner pods per course in phase Pending that the scheduler cannot place on "
                "any node (kube_pod_status_unschedulable): typically a GPU course waiting for a "
                "GPU node, or a course whose memory guarantee no node has room for.",
                "Any value for more than a few minutes: `kubectl describe pod` shows the "
                "scheduler's reason. For a GPU course, check that the GPU node group can scale "
                "up (cluster autoscaler events, the group's maximum size, the account's GPU "
                "quota) and that GPU nodes advertise nvidia.com/gpu. Otherwise compare the "
                "course's guarantees with the node size, or add nodes. The alert "
                f"CourseServersUnschedulable fires after {UNSCHEDULABLE_FOR}.",
            ),
            [Query(unschedulable_pods(scope, s), "{{course}}")],
            width=12,
        ),
    ]


def resource_panels(catalog: Catalog, settings: Settings) -> list[PanelSpec]:
    s, scope = settings, DASHBOARD_SCOPE
    ws = memory_working_set(scope, s)
    return [
        timeseries(
            "Memory working set against the course limit",
            describe(
                "Memory working set of each learner server (what the kernel OOM-kills on), "
                "with each course's memory limit from the catalog as a flat line. "
                + _limits_table(catalog),
                "Servers close to their course's line are about to lose their kernels: raise "
                "resources.memory_limit in courses/<slug>/course.toml, or trim the notebooks' "
                "data. A server above its line means the hub does not apply the catalog's limit.",
            ),
            [
                Query(ws, "{{course}} {{pod}}"),
                Query(limits_in_use(memory_limits(catalog), ws), "{{course}} limit"),
            ],
            unit="bytes",
            width=12,
        ),
        timeseries(
            "Memory: largest server as a share of the course limit",
            describe(
                "Per course, the largest server's working set divided by the course's memory "
                "limit from the catalog. The red line is 90%.",
                "Above 90%: learners of that course will see kernels die. Raise the course's "
                "memory_limit or make its notebooks lighter; check the OOM kills panel.",
            ),
            [Query(memory_share_of_limit(catalog, scope, s), "{{course}}")],
            unit="percentunit",
            width=12,
            threshold=0.9,
        ),
        timeseries(
            "CPU used per course",
            describe(
                "CPU cores used by all learner servers of each course (cAdvisor's "
                "container_cpu_usage_seconds_total, notebook container).",
                "A course using far more than its servers times its cpu_guarantee starves other "
                "pods on the node: raise the guarantee or add nodes. Zero while servers run: "
                "cAdvisor metrics are not being scraped.",
            ),
            [Query(cpu_by_course(scope, s), "{{course}}")],
            width=12,
            stacked=True,
        ),
        timeseries(
            "CPU: busiest server as a share of the course limit",
            describe(
                "Per course, the busiest server's CPU use divided by the course's cpu_limit "
                "from the catalog. At 100% the server is throttled.",
                "Pinned at 100%: notebooks run slowly; raise resources.cpu_limit for the course "
                "or ask the instructor to shrink the workload.",
            ),
            [Query(cpu_share_of_limit(catalog, scope, s), "{{course}}")],
            unit="percentunit",
            width=12,
            threshold=1,
        ),
        timeseries(
            "OOM kills per course",
            describe(
                "OOM kills per course in each interval: restarts of notebook containers "
                "(kube_pod_container_status_restarts_total) whose last termination reason is "
                "OOMKilled (kube_pod_container_status_last_terminated_reason). The alert "
                "CourseServerOOMKilled uses the same query.",
                "Any value: that course's notebooks need more memory than its limit. Compare "
                "with the memory panels, then raise memory_limit in the course's course.toml.",
            ),
            [Query(oom_kills(scope, s), "{{course}}")],
            width=12,
        ),
        timeseries(
            "Server restarts per course (1h)",
            describe(
                "Restarts of notebook containers per course in the preceding hour.",
                "Restarts without OOM kills: the image's start command fails or a liveness "
                "probe times out; read the pod's previous logs (kubectl logs --previous).",
            ),
            [Query(restarts(scope, s), "{{course}}")],
            width=12,
        ),
    ]


def kept_claims(scope: Scope, settings: Settings) -> str:
    """One series per kept-work claim of the selected courses (a claim labelled with a person:
    hub/spawner.py), labelled `course`; kube-state-metrics exports the claims' labels with
    `persistentvolumeclaims=[course,person]` in its allowlist (infra/monitoring.py)."""
    claims = selector(
        "kube_persistentvolumeclaim_labels",
        namespace=settings.namespace,
        label_person="~.+",
        **{settings.course_label_name: f"~{scope.courses}"},
    )
    return f'label_replace({claims}, "course", "$1", "{settings.course_label_name}", "(.+)")'


def kept_volumes(scope: Scope, settings: Settings) -> str:
    return f"count by (course) ({kept_claims(scope, settings)})"


def kept_bytes(scope: Scope, settings: Settings) -> str:
    """Bytes used in each course's kept-work claims (the kubelet's volume stats, which it reports
    for claims mounted on its node: a claim nobody mounts now counts as it last did)."""
    used = selector("kubelet_volume_stats_used_bytes", namespace=settings.namespace)
    per_claim = f"max by (namespace, persistentvolumeclaim) (max_over_time({used}[1d]))"
    return (
        f"sum by (course) ({per_claim} * on (namespace, persistentvolumeclaim) "
        f"group_left (course) {kept_claims(scope, settings)})"
    )


def kept_quota_use(settings: Settings) -> str:
    """The share of the kept-work storage quota that claims request (0-1); none without a quota."""
    used, hard = (
        selector(
            "kube_resourcequota",
            namespace=settings.namespace,
            resourcequota=contract.KEPT_WORK_QUOTA,
            type=kind,
        )
        for kind in ("used", "hard")
    )
    return f"max by (resource) ({used}) / on (resource) max by (resource) ({hard})"


def kept_work_panels(settings: Settings) -> list[PanelSpec]:
    s, scope = settings, DASHBOARD_SCOPE
    return [
        timeseries(
            "Kept work volumes per course",
            describe(
                "People's kept-work claims per course (stack setting keepWork: a claim per "
                "person and course, deleted after keepWork days unused by the retention job).",
                "Growing without end: retention is not running (the kept-work-retention "
                "CronJob's jobs and logs). Empty where the stack keeps work: nobody signed in, "
                "or kube-state-metrics lacks the claims' labels.",
            ),
            [Query(kept_volumes(scope, s), "{{course}}")],
            width=8,
            stacked=True,
        ),
        timeseries(
            "Kept work bytes per course",
            describe(
                "Bytes learners keep per course (the kubelet's volume stats of each claim, the "
                "last value of the past day, summed per course).",
                "A course far above the others: its notebooks write large files (datasets, "
                "checkpoints) into the home folder; raise its [kept_work] size in course.toml "
                "or have the notebooks write elsewhere.",
            ),
            [Query(kept_bytes(scope, s), "{{course}}")],
            unit="bytes",
            width=8,
            stacked=True,
        ),
        timeseries(
            "Kept work storage against its quota",
            describe(
                "Storage requested by kept-work claims as a share of the stack's quota "
                f"(ResourceQuota {contract.KEPT_WORK_QUOTA}, keepWork.quota); the red line is "
                f"where the alert KeptWorkNearQuota fires ({s.kept_work_quota_share:.0%}).",
                "Near 100%: new people's claims are refused and their launches fail. Raise "
                "keepWork.quota, shorten keepWork.days, or lower courses' [kept_work] size.",
            ),
            [Query(kept_quota_use(s), "{{resource}}")],
            unit="percentunit",
            width=8,
            threshold=s.kept_work_quota_share,
        ),
    ]


def _gpu_use(course: Course) -> str:
    """`slug`, or `slug (2 of 3 notebooks)` where course.toml's `gpu` lists the notebooks."""
    if not course.gpu_notebooks:
        return course.slug
    return f"{course.slug} ({len(course.gpu_notebooks)} of {len(course.notebooks)} notebooks)"


def gpu_panels(catalog: Catalog, settings: Settings) -> list[PanelSpec]:
    s, scope = settings, DASHBOARD_SCOPE
    gpu_courses = ", ".join(_gpu_use(c) for c in catalog if c.gpu) or "none"
    return [
        timeseries(
            "GPU utilisation per course",
            describe(
                "Average GPU utilisation of the GPUs attached to each course's servers (DCGM "
                f"exporter, DCGM_FI_DEV_GPU_UTIL). Courses asking for a GPU: {gpu_courses}.",
                "Near zero for a GPU course while its servers run: the notebooks are not using "
                "the GPU (wrong framework build or device); GPUs are expensive: list in gpu = "
                "[...] only the notebooks that need one (the others' links plan a CPU server), "
                "or set gpu = false. No data at all: the DCGM exporter is not scraped.",
            ),
            [Query(gpu_utilisation(scope, s), "{{course}}")],
            unit="percentunit",
            width=12,
        ),
        timeseries(
            "GPU memory used per course",
            describe(
                "Frame buffer memory in use on the GPUs of each course's servers "
                "(DCGM_FI_DEV_FB_USED, which DCGM reports in MiB).",
                "Close to the card's memory: learners will see CUDA out-of-memory errors; reduce "
                "batch sizes in the notebooks or use larger GPUs for the course.",
            ),
            [Query(gpu_memory_used(scope, s), "{{course}}")],
            unit=MIB,
            width=12,
        ),
    ]


def courses_dashboard(catalog: Catalog, settings: Settings = DEFAULTS) -> Dashboard:
    return dashboard(
        title=TITLE,
        uid=UID,
        description="Learner servers per course: how many, how big, and what goes wrong.",
        sections=[
            Section("Servers", server_panels(settings)),
            Section("Memory and CPU", resource_panels(catalog, settings)),
            Section("GPU", gpu_panels(catalog, settings)),
            Section("Kept work", kept_work_panels(settings)),
        ],
        variables=[course_variable(catalog)],
    )
