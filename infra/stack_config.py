"""A stack's settings: `infra/Pulumi.<stack>.yaml` read and validated into a dataclass.

The stack files are Pulumi's own format (`config:` with `<project>:<key>` entries), so the Pulumi
CLI reads the same files. Besides Pulumi, this module is the only reader: it alone knows which
keys exist, and the rest of the code (`infra/deploy.py`, `tools/links.py`) gets a stack's
settings as a `StackConfig` from `load_stack_config`. The `sso`, `limits`, `culling` and
`keepWork` sections are the hub's own settings, in the shape the hub reads from its Helm values:
they are read by the hub's reader (`hub/settings.py`), so both sides validate and default them
alike. It does no I/O besides `load_stack_config`, which reads one file.

Two keys are secrets, and only those: `ssoClientSecret`, the hub's client secret at the
identity provider, and `alertsSlackWebhookUrl`, where Alertmanager posts alerts (`pulumi config
set --secret <key> ...`). Pulumi decrypts them at deploy time (`infra/program.py`) with the
stack's own secrets provider (`secretsprovider`, a KMS key per stack: whoever may deploy dev
cannot decrypt prod's); this module only checks that they are stored encrypted. The hub database
password is generated at deploy time, never configured.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml

from hub.contract import NAMESPACE
from hub.launch import KeptWorkSettings
from hub.limits import LimitSettings
from hub.settings import (
    DEFAULT_LIMITS,
    LABEL_KEY,
    LABEL_VALUE,
    CullSettings,
    SettingsError,
    SsoSettings,
    parse_culling,
    parse_kept_work,
    parse_limits,
    parse_sso,
)

PROJECT = "ol-course-platform"
STACKS = ("dev", "stage", "prod")

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
)
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_QUANTITY = re.compile(r"^\d+(\.\d+)?(m|[KMGT]i?)?$")
T = TypeVar("T")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


class StackConfigError(ValueError):
    """A bad stack setting: names the file, the key and what is allowed."""

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        super().__init__(f"{source}: {key}: {message}" if key else f"{source}: {message}")


@dataclass(frozen=True)
class Database:
    """The hub's PostgreSQL (RDS) instance. Subnets default to the EKS cluster's."""

    instance_class: str
    allocated_storage_gb: int
    max_allocated_storage_gb: int
    engine_version: str
    multi_az: bool
    deletion_protection: bool
    backup_retention_days: int
    skip_final_snapshot: bool
    subnet_ids: tuple[str, ...] = ()
    #: Changes such as an instance class apply at once (a restart); else in the maintenance window.
    apply_immediately: bool = False


@dataclass(frozen=True)
class Taint:
    """The taint GPU nodes carry; pods of GPU courses get the matching toleration."""

    key: str
    value: str | None
    effect: str

    def toleration(self) -> dict[str, str]:
        if self.value is None:
            return {"key": self.key, "operator": "Exists", "effect": self.effect}
        return {"key": self.key, "operator": "Equal", "value": self.value, "effect": self.effect}


@dataclass(frozen=True)
class Gpu:
    node_label_key: str
    node_label_value: str
    taint: Taint
    count: int = 1
    resource_name: str = "nvidia.com/gpu"


#: TLS 1.2 and 1.3 only (the AWS Load Balancer Controller's default policy allows TLS 1.0).
DEFAULT_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True)
class Ingress:
    class_name: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    tls_secret_name: str | None = None
    #: The ACM certificate of `<domain>` and `*.<domain>` (learners' servers), for the ALB.
    certificate_arn: str | None = None
    ssl_policy: str = DEFAULT_SSL_POLICY
    #: The ALB closes a connection idle this long: a kernel's websocket is quiet while code runs.
    idle_timeout_seconds: int = 3600


@dataclass(frozen=True)
class Registry:
    """The ECR repositories. Exactly one stack manages them; the others look them up.

    `protect_stacks`: other stacks whose deployed images the lifecycle policy must keep.
    """

    manage: bool
    protect_stacks: tuple[str, ...] = ()
    expire_untagged_days: int = 1
    expire_after_days: int = 30


@dataclass(frozen=True)
class Hub:
    cpu_request: str = "250m"
    memory_request: str = "512Mi"
    memory_limit: str = "1Gi"
    #: Spawns pending at once before the hub answers 429 (JupyterHub's concurrent_spawn_limit;
    #: docs/ARCHITECTURE.md says how it was sized).
    concurrent_spawn_limit: int = 64


@dataclass(frozen=True)
class Proxy:
    """The proxy's resources: every learner's traffic passes it; without requests it is the
    first pod a node under pressure evicts."""

    cpu_request: str = "200m"
    memory_request: str = "256Mi"
    memory_limit: str = "512Mi"


NODE_PURPOSE_MATCHES = ("prefer", "require")


@dataclass(frozen=True)
class Scheduling:
    """Where pods go (zero-to-jupyterhub's `scheduling`): `require` keeps the hub and proxy on
    nodes labelled `hub.jupyter.org/node-purpose=core` and learners on `...=user` ones, so a
    learner's memory never evicts the hub; `prefer` lets a small cluster mix them."""

    match_node_purpose: str = "prefer"


@dataclass(frozen=True)
class Alerts:
    """Where Alertmanager sends the stack's alerts: a Slack channel, through the webhook in the
    stack's secret `alertsSlackWebhookUrl`."""

    slack_channel: str


@dataclass(frozen=True)
class Monitoring:
    """Prometheus: how much it keeps, on a persistent volume of the cluster's default class."""

    retention: str = "15d"
    storage: str = "50Gi"
    cpu_request: str = "500m"
    memory_request: str = "2Gi"
    memory_limit: str = "4Gi"


@dataclass(frozen=True)
class PrePull:
    """Image pre-pulling (infra/prepull.py): GPU images go to GPU nodes only, always."""

    cpu_images_on_gpu_nodes: bool = False


@dataclass(frozen=True)
class StackConfig:
    name: str
    region: str
    domain: str
    cluster_name: str
    namespace: str
    allow_preview_tags: bool
    culling: CullSettings
    database: Database
    gpu: Gpu
    ingress: Ingress
    registry: Registry
    hub: Hub
    sso: SsoSettings
    alerts: Alerts
    #: Pulumi's secrets provider for this stack alone (`secretsprovider` in its file).
    secrets_provider: str
    start_timeout: int = 600
    pre_pull: PrePull = field(default_factory=PrePull)
    limits: LimitSettings = DEFAULT_LIMITS
    proxy: Proxy = field(default_factory=Proxy)
    scheduling: Scheduling = field(default_factory=Scheduling)
    #: "limit": learners' servers request their course's memory_limit (hub/launch.py
    #: LaunchSettings.memory_request_is_limit); "course": its memory_guarantee.
    learner_memory_request: str = "course"
    monitoring: Monitoring = field(default_factory=Monitoring)
    #: A person's work per course kept between servers (`keepWork: {days, storageClass}`, the
    #: shape of the hub's custom.launch.keptWork); days 0: nothing kept.
    keep_work: KeptWorkSettings = field(default_factory=KeptWorkSettings)

    @property
    def url(self) -> str:
        return f"https://{self.domain}"


_KEYS = {
    "domain",
    "clusterName",
    "namespace",
    "allowPreviewTags",
    "culling",
    "database",
    "gpu",
    "ingress",
    "registry",
    "hub",
    "startTimeout",
    "prePull",
    "sso",
    "ssoClientSecret",
    "limits",
    "proxy",
    "scheduling",
    "alerts",
    "alertsSlackWebhookUrl",
    "monitoring",
    "learnerMemoryRequest",
    "keepWork",
}
_REQUIRED = {
    "domain",
    "clusterName",
    "allowPreviewTags",
    "culling",
    "database",
    "gpu",
    "registry",
    "sso",
    "alerts",
}
#: The settings that are secrets, and must be stored encrypted.
SECRET_KEYS = {"ssoClientSecret", "alertsSlackWebhookUrl"}


class _Reader:
    """Typed access to one table of settings, with errors that name the file and the key."""

    def __init__(self, source: str, prefix: str, data: object) -> None:
        if not isinstance(data, Mapping):
            raise StackConfigError(source, prefix.rstrip("."), "must be a mapping")
        self.source = source
        self.prefix = prefix
        self.data = data

    def fail(self, key: str, message: str) -> StackConfigError:
        return StackConfigError(self.source, self.prefix + key, message)

    def only(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.fail(str(key), f"unknown key; allowed: {', '.join(sorted(allowed))}")

    def _get(self, key: str, default: object, required: bool) -> object:
        if key not in self.data:
            if required:
                raise self.fail(key, "is required")
            return default
        return self.data[key]

    def string(
        self, key: str, default: str | None = None, *, pattern: re.Pattern[str] | None = None
    ) -> str:
        value = self._get(key, default, default is None)
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"{value!r} is not a non-empty string")
        if pattern is not None and not pattern.match(value):
            raise self.fail(key, f"{value!r} is not valid here")
        return value

    def optional_string(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise self.fail(key, f"{value!r} is not a non-empty string")
        return value

    def boolean(self, key: str, default: bool | None = None) -> bool:
        value = self._get(key, default, default is None)
        if not isinstance(value, bool):
            raise self.fail(key, f"{value!r} is not true or false")
        return value

    def integer(self, key: str, default: int | None = None, *, minimum: int = 0) -> int:
        value = self._get(key, default, default is None)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(key, f"{value!r} is not a whole number >= {minimum}")
        return value

    def table(self, key: str, required: bool = False) -> _Reader:
        return _Reader(self.source, f"{self.prefix}{key}.", self._get(key, {}, required))

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, "must be a list of strings")
        return tuple(value)

    def string_map(self, key: str) -> dict[str, str]:
        value = self.data.get(key, {})
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise self.fail(key, "must map strings to strings (quote numbers and booleans)")
        return dict(value)

    def quantity(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not _QUANTITY.match(value):
            raise self.fail(key, f"{value!r} is not a Kubernetes quantity like '500m' or '1Gi'")
        return value


def _database(r: _Reader) -> Database:
    r.only(
        {
            "instanceClass",
            "allocatedStorageGb",
            "maxAllocatedStorageGb",
            "engineVersion",
            "multiAz",
            "deletionProtection",
            "backupRetentionDays",
            "skipFinalSnapshot",
            "subnetIds",
            "applyImmediately",
        }
    )
    allocated = r.integer("allocatedStorageGb", 20, minimum=20)
    maximum = r.integer("maxAllocatedStorageGb", allocated, minimum=allocated)
    return Database(
        instance_class=r.string("instanceClass", pattern=re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")),
        allocated_storage_gb=allocated,
        max_allocated_storage_gb=maximum,
        engine_version=r.string("engineVersion", "16", pattern=re.compile(r"^\d+(\.\d+)?$")),
        multi_az=r.boolean("multiAz", False),
        deletion_protection=r.boolean("deletionProtection", True),
        backup_retention_days=r.integer("backupRetentionDays", 7, minimum=0),
        skip_final_snapshot=r.boolean("skipFinalSnapshot", False),
        subnet_ids=r.strings("subnetIds"),
        apply_immediately=r.boolean("applyImmediately", False),
    )


def _gpu(r: _Reader) -> Gpu:
    r.only({"nodeLabel", "taint", "count", "resourceName"})
    label = r.table("nodeLabel", required=True)
    label.only({"key", "value"})
    taint = r.table("taint", required=True)
    taint.only({"key", "value", "effect"})
    value = taint.optional_string("value")
    if value is not None and not LABEL_VALUE.match(value):
        raise taint.fail("value", f"{value!r} is not a valid taint value")
    effect = taint.string("effect", "NoSchedule")
    if effect not in TAINT_EFFECTS:
        raise taint.fail("effect", f"{effect!r}; use one of {', '.join(TAINT_EFFECTS)}")
    label_value = label.data.get("value")
    if not isinstance(label_value, str) or not LABEL_VALUE.match(label_value):
        raise label.fail("value", f"{label_value!r} is not a label value (quote 'true')")
    return Gpu(
        node_label_key=label.string("key", pattern=LABEL_KEY),
        node_label_value=label_value,
        taint=Taint(key=taint.string("key", pattern=LABEL_KEY), value=value, effect=effect),
        count=r.integer("count", 1, minimum=1),
        resource_name=r.string("resourceName", "nvidia.com/gpu", pattern=LABEL_KEY),
    )


_CERTIFICATE_ARN = re.compile(r"^arn:aws:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$")


def _ingress(r: _Reader) -> Ingress:
    r.only(
        {
            "className",
            "annotations",
            "tlsSecretName",
            "certificateArn",
            "sslPolicy",
            "idleTimeoutSeconds",
        }
    )
    certificate = r.optional_string("certificateArn")
    if certificate is not None and not _CERTIFICATE_ARN.match(certificate):
        raise r.fail("certificateArn", f"{certificate!r} is not an ACM certificate ARN")
    return Ingress(
        class_name=r.optional_string("className"),
        annotations=r.string_map("annotations"),
        tls_secret_name=r.optional_string("tlsSecretName"),
        certificate_arn=certificate,
        ssl_policy=r.string(
            "sslPolicy", DEFAULT_SSL_POLICY, pattern=re.compile(r"^ELBSecurityPolicy-TLS13-")
        ),
        idle_timeout_seconds=r.integer("idleTimeoutSeconds", 3600, minimum=60),
    )


def _registry(r: _Reader, stack: str) -> Registry:
    r.only({"manage", "protectStacks", "expireUntaggedDays", "expireAfterDays"})
    protect = r.strings("protectStacks")
    for other in protect:
        if other not in STACKS or other == stack:
            raise r.fail("protectStacks", f"{other!r} is not another stack ({', '.join(STACKS)})")
    return Registry(
        manage=r.boolean("manage"),
        protect_stacks=protect,
        expire_untagged_days=r.integer("expireUntaggedDays", 1, minimum=1),
        expire_after_days=r.integer("expireAfterDays", 30, minimum=1),
    )


def _hub(r: _Reader) -> Hub:
    r.only({"cpuRequest", "memoryRequest", "memoryLimit", "concurrentSpawnLimit"})
    return Hub(
        cpu_request=r.quantity("cpuRequest", Hub.cpu_request),
        memory_request=r.quantity("memoryRequest", Hub.memory_request),
        memory_limit=r.quantity("memoryLimit", Hub.memory_limit),
        concurrent_spawn_limit=r.integer(
            "concurrentSpawnLimit", Hub.concurrent_spawn_limit, minimum=1
        ),
    )


def _proxy(r: _Reader) -> Proxy:
    r.only({"cpuRequest", "memoryRequest", "memoryLimit"})
    return Proxy(
        cpu_request=r.quantity("cpuRequest", Proxy.cpu_request),
        memory_request=r.quantity("memoryRequest", Proxy.memory_request),
        memory_limit=r.quantity("memoryLimit", Proxy.memory_limit),
    )


def _scheduling(r: _Reader) -> Scheduling:
    r.only({"matchNodePurpose"})
    match = r.string("matchNodePurpose", Scheduling.match_node_purpose)
    if match not in NODE_PURPOSE_MATCHES:
        raise r.fail("matchNodePurpose", f"{match!r}; use one of {', '.join(NODE_PURPOSE_MATCHES)}")
    return Scheduling(match_node_purpose=match)


def _alerts(r: _Reader) -> Alerts:
    r.only({"slackChannel"})
    return Alerts(slack_channel=r.string("slackChannel", pattern=re.compile(r"^[#@]?[\w.-]+$")))


def _monitoring(r: _Reader) -> Monitoring:
    r.only({"retention", "storage", "cpuRequest", "memoryRequest", "memoryLimit"})
    return Monitoring(
        retention=r.string("retention", Monitoring.retention, pattern=re.compile(r"^\d+[dhw]$")),
        storage=r.quantity("storage", Monitoring.storage),
        cpu_request=r.quantity("cpuRequest", Monitoring.cpu_request),
        memory_request=r.quantity("memoryRequest", Monitoring.memory_request),
        memory_limit=r.quantity("memoryLimit", Monitoring.memory_limit),
    )


LEARNER_MEMORY_REQUESTS = ("course", "limit")


def _learner_memory_request(r: _Reader) -> str:
    value = r.string("learnerMemoryRequest", "course")
    if value not in LEARNER_MEMORY_REQUESTS:
        raise r.fail(
            "learnerMemoryRequest", f"{value!r}; use one of {', '.join(LEARNER_MEMORY_REQUESTS)}"
        )
    return value


def secrets_provider_pattern(stack: str) -> re.Pattern[str]:
    """A stack's secrets provider: a KMS key of its own (its alias names the stack)."""
    return re.compile(
        rf"^awskms://alias/{re.escape(PROJECT)}-{re.escape(stack)}(\?region=[a-z0-9-]+)?$"
    )


def _sso(value: Any) -> SsoSettings:
    """The hub's reader, and what only a deployed stack needs: a gate (every stack's hub is on
    the internet) whose provider speaks https (the hub's reader also takes a loopback provider,
    the local hub's)."""
    sso = parse_sso(value)
    if sso is None:
        raise SettingsError("sso", "is required: every stack's hub is on the internet")
    if not sso.issuer.startswith("https://"):
        raise SettingsError("sso.issuer", f"{sso.issuer!r} is not an https:// issuer URL")
    return sso


def _hub_section(r: _Reader, key: str, parse: Callable[[Any], T]) -> T:
    """A section whose shape the hub defines (hub/settings.py reads it, here and in the hub)."""
    try:
        return parse(r.data.get(key))
    except SettingsError as e:
        raise StackConfigError(r.source, r.prefix + e.path, e.message) from None


def _pre_pull(r: _Reader) -> PrePull:
    r.only({"cpuImagesOnGpuNodes"})
    return PrePull(cpu_images_on_gpu_nodes=r.boolean("cpuImagesOnGpuNodes", False))


def parse_stack_config(stack: str, document: object, source: str = "") -> StackConfig:
    """A stack's settings from its parsed `Pulumi.<stack>.yaml` document."""
    source = source or f"infra/Pulumi.{stack}.yaml"
    if stack not in STACKS:
        raise StackConfigError(
            source, "", f"unknown stack {stack!r}; stacks are {', '.join(STACKS)}"
        )
    top = _Reader(source, "", document)
    top.only({"config", "encryptionsalt", "secretsprovider", "encryptedkey"})
    secrets_provider = top.data.get("secretsprovider")
    if not isinstance(secrets_provider, str) or not secrets_provider_pattern(stack).match(
        secrets_provider
    ):
        raise StackConfigError(
            source,
            "secretsprovider",
            f"{secrets_provider!r}: each stack has a KMS key of its own, "
            f"awskms://alias/{PROJECT}-{stack}?region=<region> (pulumi stack change-secrets-provider)",
        )
    entries = top.table("config", required=True).data
    settings: dict[str, Any] = {}
    region = None
    for key, value in entries.items():
        if key == "aws:region":
            region = value
        elif isinstance(key, str) and key.startswith(PROJECT + ":"):
            name = key[len(PROJECT) + 1 :]
            secure = isinstance(value, Mapping) and "secure" in value
            if secure and name not in SECRET_KEYS:
                raise StackConfigError(
                    source,
                    key,
                    f"is not a secret; only {' and '.join(sorted(SECRET_KEYS))} are (the "
                    "database password is generated)",
                )
            if name in SECRET_KEYS and not secure:
                raise StackConfigError(
                    source, key, f"must be stored encrypted: pulumi config set --secret {name}"
                )
            settings[name] = value
        else:
            raise StackConfigError(
                source, str(key), f"unknown key; use aws:region or {PROJECT}:<key>"
            )
    if not isinstance(region, str) or not re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", region):
        raise StackConfigError(source, "aws:region", f"{region!r} is not an AWS region")
    r = _Reader(source, PROJECT + ":", settings)
    r.only(_KEYS)
    missing = sorted(_REQUIRED - settings.keys())
    if missing:
        raise r.fail(missing[0], "is required")
    return StackConfig(
        name=stack,
        region=region,
        domain=r.string("domain", pattern=_HOSTNAME),
        cluster_name=r.string(
            "clusterName", pattern=re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
        ),
        namespace=r.string("namespace", NAMESPACE, pattern=_DNS_LABEL),
        allow_preview_tags=r.boolean("allowPreviewTags"),
        culling=_hub_section(r, "culling", parse_culling),
        database=_database(r.table("database")),
        gpu=_gpu(r.table("gpu")),
        ingress=_ingress(r.table("ingress")),
        registry=_registry(r.table("registry"), stack),
        hub=_hub(r.table("hub")),
        sso=_hub_section(r, "sso", _sso),
        alerts=_alerts(r.table("alerts")),
        secrets_provider=secrets_provider,
        start_timeout=r.integer("startTimeout", 600, minimum=30),
        pre_pull=_pre_pull(r.table("prePull")),
        limits=_hub_section(r, "limits", parse_limits),
        proxy=_proxy(r.table("proxy")),
        scheduling=_scheduling(r.table("scheduling")),
        monitoring=_monitoring(r.table("monitoring")),
        learner_memory_request=_learner_memory_request(r),
        keep_work=_hub_section(r, "keepWork", lambda v: parse_kept_work(v, "keepWork")),
    )


def stack_file(infra_dir: Path, stack: str) -> Path:
    return infra_dir / f"Pulumi.{stack}.yaml"


def load_stack_config(infra_dir: Path, stack: str) -> StackConfig:
    """Reads and validates `<infra_dir>/Pulumi.<stack>.yaml`."""
    path = stack_file(infra_dir, stack)
    source = f"infra/{path.name}"
    if not path.is_file():
        raise StackConfigError(source, "", f"is missing; stacks are {', '.join(STACKS)}")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise StackConfigError(source, "", f"is not valid YAML: {e}") from None
    return parse_stack_config(stack, document, source)
