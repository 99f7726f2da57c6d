"""A stack's settings: `infra/Pulumi.<stack>.yaml` read and validated into a dataclass.

The stack files are Pulumi's own format (`config:` with `<project>:<key>` entries), so the Pulumi
CLI reads the same files. Besides Pulumi, this module is the only reader: it alone knows which
keys exist, and the rest of the code (`infra/deploy.py`, `tools/links.py`) gets a stack's
settings as a `StackConfig` from `load_stack_config`. The `sso`, `limits` and `culling` sections
are the hub's own settings, in the shape the hub reads from its Helm values: they are read by
the hub's reader (`hub/settings.py`), so both sides validate and default them alike. It does no
I/O besides `load_stack_config`, which reads one file.

One key is a secret, and only that one: `ssoClientSecret`, the hub's client secret at the
identity provider (`pulumi config set --secret ssoClientSecret ...`). Pulumi decrypts it at
deploy time (`infra/program.py`); this module only checks that it is stored encrypted. The hub
database password is generated at deploy time, never configured.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml

from hub.contract import NAMESPACE
from hub.limits import LimitSettings
from hub.settings import (
    DEFAULT_LIMITS,
    LABEL_KEY,
    LABEL_VALUE,
    CullSettings,
    SettingsError,
    SsoSettings,
    parse_culling,
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


@dataclass(frozen=True)
class Ingress:
    class_name: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    tls_secret_name: str | None = None


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
    start_timeout: int = 600
    pre_pull: PrePull = field(default_factory=PrePull)
    limits: LimitSettings = DEFAULT_LIMITS

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
}
#: The one setting that is a secret, and must be stored encrypted.
SECRET_KEYS = {"ssoClientSecret"}


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


def _ingress(r: _Reader) -> Ingress:
    r.only({"className", "annotations", "tlsSecretName"})
    return Ingress(
        class_name=r.optional_string("className"),
        annotations=r.string_map("annotations"),
        tls_secret_name=r.optional_string("tlsSecretName"),
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
                    "is not a secret; only ssoClientSecret is (the database password is "
                    "generated)",
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
        start_timeout=r.integer("startTimeout", 600, minimum=30),
        pre_pull=_pre_pull(r.table("prePull")),
        limits=_hub_section(r, "limits", parse_limits),
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
