"""The spawner that starts the course a launch link names: `CourseKubeSpawner` (production).

`CourseSpawner` holds the glue once (query -> `hub.launch.plan_launch` -> the spawner's traits),
and each platform's subclass only translates a `LaunchPlan` into its terms: Kubernetes here, Docker
for the local hub (`local_hub.spawner.CourseDockerSpawner`).

How a launch link travels through JupyterHub (6.1):

1. `/tmplogin?course=X&notebook=Y` -> `/hub/tmplogin?...` (the proxy's default route) -> a new
   throwaway user -> `/hub/spawn?opt-course=X&opt-notebook=Y` (`hub.auth`'s login handler sends
   the link's arguments on, with JupyterHub's `opt-` prefix).
2. `SpawnHandler` passes the query to `options_from_query`. We plan there: a bad link raises
   `LaunchRefused` (a `SpawnException`). JupyterHub catches it and, if the spawner has no options
   form, would spawn with *default* options instead; so `options_form` is a callable that
   re-raises the refusal and JupyterHub renders it as an error page with the refusal's status
   (4xx) and HTML (courses with links). No server is started.
3. The good plan's normalized arguments become `user_options`; `start()` plans again from them
   (user_options can also come from the REST API: never trusted) and sets every trait the plan
   governs from a baseline taken at construction, so nothing carries over between spawns.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jupyterhub.spawner import Spawner, SpawnException
from jupyterhub.utils import url_path_join
from kubespawner import KubeSpawner
from kubespawner.clients import load_config, shared_client
from traitlets import Instance, Unicode, default

from catalog import format_memory
from hub.contract import COURSE_ENV, COURSE_LABEL, PERSON_LABEL
from hub.kept_work_page import StoredWork
from hub.launch import HOME, LaunchError, LaunchPlan, WorkVolume, parse_bool, plan_launch
from hub.limits import Admissions, Refusal, ServerInUse, check_limits
from hub.pages import launch_error_html, limit_html, retry_form_html
from hub.retention import claims_in_use
from hub.settings import HubSettings
from hub.sso import RESUME_PATH, identity_of

#: Where every base image has the kept-work sync (images/base/kept_work.py).
KEPT_WORK_SCRIPT = "/usr/local/bin/kept-work"
#: The kept-work volume's name in a pod, and where the sync step mounts it.
WORK_VOLUME = "kept-work"
WORK_MOUNT = "/mnt/work"


class LaunchRefused(SpawnException):
    """A launch link that cannot be opened; JupyterHub shows `message_html` to the learner."""

    def __init__(self, error: LaunchError, link_base: str) -> None:
        super().__init__(
            error.message,
            reason=error.reason,
            message_html=launch_error_html(error, link_base),
            status_code=error.status,
        )
        self.launch_error = error


class LimitReached(SpawnException):
    """A launch a limit refused (hub/limits.py): a 429 page with `Retry-After`, never a bad-link
    page. JupyterHub shows it on its spawn page: `jupyterhub_message` as the error, `headers` on
    the response; the spawner's form below it (`_refusal_page`) links to the running servers."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(
            refusal.message,
            reason=refusal.reason,
            status_code=429,
        )
        self.refusal = refusal
        self.jupyterhub_message = refusal.message
        self.headers = {"Retry-After": str(refusal.retry_after)}


def servers_in_use(
    users: Mapping[str, Any],
    admissions: Admissions,
    now: float,
    gpu_of: Callable[[Mapping[str, Any]], bool],
    exclude: str | None = None,
) -> list[ServerInUse]:
    """Every active server of the hub (JupyterHub's users in memory: each user with an active
    server is), and launches admitted a moment ago whose start has not begun. `gpu_of`: whether
    a server started with these stored user options has a GPU (from its plan)."""
    waiting = admissions.waiting_servers(now)
    found: dict[str, ServerInUse] = {}
    for user in list(users.values()):
        if user.name == exclude:
            continue
        for spawner in user.spawners.values():
            if not spawner.active:
                continue
            # JupyterHub keeps the user options in its database, so they survive a restart:
            # the plan's after a start here, the raw request body of a REST start before one.
            options = getattr(spawner, "user_options", None) or {}
            admitted = waiting.get(user.name)
            gpu = bool(options and gpu_of(options)) or bool(admitted and admitted.gpu)
            found[user.name] = ServerInUse(user.name, gpu, identity_of(user.name))
    for name, server in waiting.items():
        if name != exclude and name not in found:
            found[name] = server
    return list(found.values())


def gpu_node_affinity(
    terms: list[dict[str, Any]], selector: dict[str, str]
) -> list[dict[str, Any]]:
    """Required node-selector terms that also demand every `selector` label.

    Kubernetes ORs the terms of `requiredDuringScheduling...nodeSelectorTerms` and ANDs the
    expressions inside a term, so the GPU labels are added to each existing term (or form the
    only term), never as a term of their own.
    """
    expressions = [
        {"key": key, "operator": "In", "values": [value]} for key, value in sorted(selector.items())
    ]
    if not expressions:
        return copy.deepcopy(terms)
    if not terms:
        return [{"matchExpressions": expressions}]
    merged = []
    for term in copy.deepcopy(terms):
        term["matchExpressions"] = list(term.get("matchExpressions", [])) + copy.deepcopy(
            expressions
        )
        merged.append(term)
    return merged


def _as_list(value: Any) -> list[Any]:
    """KubeSpawner's list-or-dict traits (dict values sorted by key) as a list."""
    if isinstance(value, dict):
        return [value[key] for key in sorted(value)]
    return list(value or [])


@dataclass
class LinkState:
    """What reading a link left for the options form JupyterHub shows in the same request when
    the link fails: its refusal, or its planned options and the limit that refused it."""

    refusal: LaunchRefused | None = None
    planned: dict[str, str] | None = None
    limit: Refusal | None = None


#: Per request (JupyterHub reads the link and shows the form in the request's own task): spawner
#: -> LinkState, so that two requests for one user (two tabs, two sign-ins at once) never take
#: each other's. Reading a link sets a dict of its own; a task the request starts (the spawn)
#: shares it.
_LINK_STATES: ContextVar[dict[int, LinkState] | None] = ContextVar("link_states", default=None)


class CourseSpawner(Spawner):
    """The shared part: launch planning, error pages, clean state, kernel culling arguments.

    Use through `CourseKubeSpawner` (or the local hub's `CourseDockerSpawner`) (this class comes first in their
    bases so its `start`/`stop` wrap the platform's).
    """

    hub_settings = Instance(
        HubSettings,
        allow_none=True,
        help="Catalog, image map, launch and culling settings (hub.settings.HubSettings).",
    ).tag(config=True)

    launch_link_base = Unicode(
        "",
        help="Where the error page's course links point; default: this hub's /hub/spawn.",
    ).tag(config=True)

    #: Traits a plan sets; their configured values are the baseline each plan starts from.
    planned_traits: tuple[str, ...] = ("environment",)

    #: Launches admitted by the limits, shared by every spawner of the hub process.
    admissions = Admissions()

    # Types of the inherited traits used here (for mypy; traitlets declares them untyped).
    user_options: dict[str, Any]
    environment: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._baseline = {name: copy.deepcopy(getattr(self, name)) for name in self.planned_traits}
        self.launch_plan: LaunchPlan | None = None

    # --- what a link's reading leaves for the form of the same request ----------------------

    def _new_link_state(self) -> LinkState:
        # A dict of this request's own (set, never shared through an outer context's dict).
        state = LinkState()
        _LINK_STATES.set({id(self): state})
        return state

    def _take_link_state(self) -> LinkState:
        return (_LINK_STATES.get() or {}).pop(id(self), LinkState())

    # --- planning ------------------------------------------------------------------------

    @property
    def _hub_base(self) -> str:
        hub = getattr(self, "hub", None)
        return hub.base_url if hub else "/hub/"

    @property
    def _link_base(self) -> str:
        return self.launch_link_base or url_path_join(self._hub_base, "spawn")

    def plan(self, options: Any) -> LaunchPlan:
        """The plan for these options, or `LaunchRefused` (a 4xx `SpawnException`)."""
        settings = self.hub_settings
        if settings is None:
            raise SpawnException(
                "This hub has no course catalog configured.", reason="no-catalog", status_code=503
            )
        user = getattr(self, "user", None)
        person = identity_of(user.name) if user is not None else None
        try:
            return plan_launch(
                options or {}, settings.catalog, settings.image_map, settings.launch, person
            )
        except LaunchError as error:
            raise LaunchRefused(error, self._link_base) from None

    def _plan_or_remember(self, options: Any) -> dict[str, str]:
        state = self._new_link_state()
        try:
            plan = self.plan(options)
        except LaunchRefused as refusal:
            state.refusal = refusal
            raise
        state.planned = plan.user_options()
        try:
            self.admit(plan)
        except LimitReached as reached:
            state.limit = reached.refusal
            raise
        return state.planned

    def admit(self, plan: LaunchPlan, now: float | None = None) -> None:
        """Counts the launch against the limits, or raises `LimitReached` (429)."""
        settings = self.hub_settings
        if settings is None or not settings.limits.enabled:
            return
        now = time.time() if now is None else now
        user = self.user
        identity = identity_of(user.name)
        users = getattr(user, "settings", {}).get("users")
        if users is None:
            raise RuntimeError("the hub's users are unknown: the launch limits cannot be checked")
        refusal = check_limits(
            settings.limits,
            gpu=plan.gpu_count > 0,
            identity=identity,
            in_use=servers_in_use(users, self.admissions, now, self.planned_gpu, user.name),
            recent_spawns=self.admissions.recent_spawns(identity, now),
            now=now,
        )
        if refusal is not None:
            self.log.info("Launch refused for %s: %s", self._log_name, refusal.reason)
            raise LimitReached(refusal)
        self.admissions.record(now, ServerInUse(user.name, plan.gpu_count > 0, identity))

    def planned_gpu(self, options: Mapping[str, Any]) -> bool:
        """Whether a server started with these stored user options has a GPU. start() stores
        the plan's options (`needs_gpu` as planned); a REST start's raw body may lack it, and is
        planned again as start() planned it (no longer plannable: no GPU counted)."""
        if "needs_gpu" in options:
            return parse_bool(str(options["needs_gpu"])) is True
        try:
            return self.plan(dict(options)).gpu
        except SpawnException:
            return False

    def admit_start(self, plan: LaunchPlan, now: float | None = None) -> None:
        """As start() begins: the launch admitted for this start (a link's, a moment ago), or
        else, for a start without one (the REST API, a restart), the same limits now."""
        now = time.time() if now is None else now
        if not self.admissions.take(self.user.name, now):
            self.admit(plan, now)
            self.admissions.take(self.user.name, now)

    def options_from_query(self, query_data: dict[str, list[str]]) -> dict[str, str]:
        return self._plan_or_remember(query_data)

    def run_options_from_form(self, form_data: dict[str, Any]) -> dict[str, str]:
        return self._plan_or_remember(form_data)

    @default("options_form")
    def _options_form_refuses(self) -> Any:
        return CourseSpawner._refusal_page

    @default("apply_user_options")
    def _options_applied_by_start(self) -> Any:
        # JupyterHub 5.3+ hands user_options to this hook before start() (and warns when none is
        # set); start() plans from them itself (`prepare_launch`), trusting nothing in them.
        return CourseSpawner._applied_in_start

    @staticmethod
    def _applied_in_start(spawner: CourseSpawner, user_options: dict[str, Any]) -> None:
        return None

    @staticmethod
    def _refusal_page(spawner: CourseSpawner) -> str:
        """Called by JupyterHub when it would show a form (see module doc): after a link that
        planned but whose start failed (a limit's 429, a start error), a form that retries the
        same launch under JupyterHub's error (with the limit's details); otherwise the link's
        refusal."""
        state = spawner._take_link_state()
        refusal, planned, limit = state.refusal, state.planned, state.limit
        if refusal is None and planned is not None:
            if limit is None:  # the start failed (JupyterHub's spawn limit, a start error)
                spawner.admissions.cancel(spawner.user.name)
            resume = url_path_join(spawner._hub_base, RESUME_PATH)
            return (limit_html(limit, resume) if limit else "") + retry_form_html(planned)
        if refusal is None:
            try:
                spawner.plan({})
            except LaunchRefused as no_course:
                refusal = no_course
        assert refusal is not None
        raise refusal

    def prepare_launch(self) -> LaunchPlan:
        """Plan from `user_options` and set every planned trait; called by `start()`."""
        plan = self.plan(self.user_options)
        self.user_options = plan.user_options()
        # Stored as planned (JupyterHub commits it with the spawn), not as a REST body said it.
        orm_spawner = getattr(self, "orm_spawner", None)
        if orm_spawner is not None:
            orm_spawner.user_options = self.user_options
        for name, value in self._baseline.items():
            setattr(self, name, copy.deepcopy(value))
        self.default_url = plan.url
        self.mem_limit = plan.memory_limit
        self.mem_guarantee = plan.memory_guarantee
        self.cpu_limit = plan.cpu_limit
        self.cpu_guarantee = plan.cpu_guarantee
        self.environment = {**self.environment, COURSE_ENV: plan.course}
        self.apply_plan(plan)
        self.launch_plan = plan
        return plan

    def apply_plan(self, plan: LaunchPlan) -> None:
        """Platform part: image, GPU, labels. Traits are at their baseline when called."""
        raise NotImplementedError

    @classmethod
    def work_store(cls) -> Any:
        """Where this platform keeps people's work (hub.kept_work_page.WorkStore)."""
        raise NotImplementedError

    async def prepare_work(self, plan: LaunchPlan) -> None:
        """Platform part, before the server starts: the plan's kept-work volume made and brought
        up to date with the image (Kubernetes does both in the pod: a claim, an init container)."""

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> Any:
        plan = self.prepare_launch()
        self.admit_start(plan)
        self.log.info(
            "Launching %s for %s: image %s, notebook %s, GPUs %d",
            plan.course,
            self._log_name,
            plan.image,
            plan.notebook,
            plan.gpu_count,
        )
        await self.prepare_work(plan)
        started = await super().start()
        self._take_link_state()  # started: a later form is no retry of this launch
        return started

    async def stop(self, now: bool = False) -> Any:
        result = await super().stop(now=now)
        # A later spawn without arguments must not silently reuse this one's course.
        orm_spawner = getattr(self, "orm_spawner", None)
        if orm_spawner is not None:
            orm_spawner.user_options = {}
        self.user_options = {}
        self.launch_plan = None
        return result

    # JupyterHub refuses a Spawner subclass that does not define start, stop and poll itself.
    async def poll(self) -> Any:
        return await super().poll()

    def get_args(self) -> list[str]:
        args = list(super().get_args())
        if self.hub_settings is not None:
            args.extend(self.hub_settings.culling.single_user_arguments())
        return args


def work_sync_command(work_mount: str, owner: str | None = None) -> list[str]:
    """The command that brings a learner's volume, mounted at `work_mount`, up to date with the
    course image's home folder (images/base/kept_work.py, in every base image)."""
    return [
        "python3",
        KEPT_WORK_SCRIPT,
        "sync",
        HOME,
        work_mount,
        *([f"--owner={owner}"] if owner else []),
    ]


def work_labels(work: WorkVolume) -> dict[str, str]:
    """What a kept volume is labelled with: its course and its person's key (counting per
    course, retention, a person's own deletion)."""
    return {COURSE_LABEL: work.course, PERSON_LABEL: work.person}


class CourseKubeSpawner(CourseSpawner, KubeSpawner):
    """Production: one pod per learner, from the course's image, with its resources; with kept
    work, the person's PersistentVolumeClaim for the course over the home folder, brought up to
    date with the image by an init container first."""

    extra_labels: dict[str, str]
    extra_resource_limits: dict[str, str]
    tolerations: Any
    node_affinity_required: Any
    volumes: Any
    volume_mounts: Any
    init_containers: Any
    storage_extra_labels: dict[str, str]

    planned_traits = CourseSpawner.planned_traits + (
        "extra_labels",
        "extra_resource_limits",
        "extra_resource_guarantees",
        "tolerations",
        "node_affinity_required",
        "volumes",
        "volume_mounts",
        "init_containers",
        "storage_pvc_ensure",
        "pvc_name_template",
        "storage_capacity",
        "storage_class",
        "storage_extra_labels",
        "remember_pvc_name",
    )

    @classmethod
    def work_store(cls) -> KubeWorkStore:
        return KubeWorkStore(os.environ.get("POD_NAMESPACE", "default"))

    @default("delete_pvc")
    def _kept_work_outlives_its_user(self) -> bool:
        # A kept-work claim is the person's, not the throwaway user's: deleting the user (the
        # culler does) must not delete it; retention does, after `keepWork` days.
        return False

    def apply_plan(self, plan: LaunchPlan) -> None:
        self.image = plan.image
        self.extra_labels = {**self.extra_labels, COURSE_LABEL: plan.course}
        if plan.gpu_count and plan.gpu_resource_name:
            self.extra_resource_limits = {
                **self.extra_resource_limits,
                plan.gpu_resource_name: str(plan.gpu_count),
            }
            self.tolerations = _as_list(self.tolerations) + [dict(t) for t in plan.tolerations]
            self.node_affinity_required = gpu_node_affinity(
                _as_list(self.node_affinity_required), dict(plan.node_selector)
            )
        if plan.work is not None:
            self.apply_work(plan.work, plan.image)

    def apply_work(self, work: WorkVolume, image: str) -> None:
        settings = self.hub_settings
        storage_class = settings.launch.kept_work.storage_class if settings else None
        self.storage_pvc_ensure = True
        self.pvc_name_template = work.name
        self.pvc_name = work.name  # KubeSpawner expands the template once, when it is made
        self.remember_pvc_name = False
        self.storage_capacity = format_memory(work.size)
        self.storage_class = storage_class
        self.storage_extra_labels = {**self.storage_extra_labels, **work_labels(work)}
        volume = {"name": WORK_VOLUME, "persistentVolumeClaim": {"claimName": work.name}}
        self.volumes = _as_list(self.volumes) + [volume]
        self.volume_mounts = _as_list(self.volume_mounts) + [
            {"name": WORK_VOLUME, "mountPath": work.mount_path}
        ]
        self.init_containers = _as_list(self.init_containers) + [
            {
                "name": WORK_VOLUME,
                "image": image,
                "command": work_sync_command(WORK_MOUNT),
                "volumeMounts": [{"name": WORK_VOLUME, "mountPath": WORK_MOUNT}],
                "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
            }
        ]


class KubeWorkStore:
    """People's kept-work claims in the hub's namespace, with the hub's own API access (its role
    may list and delete claims; pods tell which are mounted)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def _api(self) -> Any:
        load_config()
        return shared_client("CoreV1Api")

    async def volumes(self, person: str) -> list[StoredWork]:
        api = self._api()
        selector = f"{PERSON_LABEL}={person}"
        claims = await api.list_namespaced_persistent_volume_claim(
            self.namespace, label_selector=selector
        )
        pods = await api.list_namespaced_pod(self.namespace)
        serialize = api.api_client.sanitize_for_serialization
        mounted = claims_in_use([serialize(pod) for pod in pods.items])
        return [
            StoredWork(
                claim.metadata.name,
                claim.metadata.labels.get(PERSON_LABEL, ""),
                claim.metadata.labels.get(COURSE_LABEL, ""),
                claim.metadata.name in mounted,
            )
            for claim in claims.items
        ]

    async def delete(self, name: str) -> None:
        await self._api().delete_namespaced_persistent_volume_claim(name, self.namespace)
