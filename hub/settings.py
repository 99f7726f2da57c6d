"""The hub's deployment settings: the one reader of their shapes, and the Helm values' `custom`.

Pure data in and out, so infra can import it. The `sso`, `limits` and `culling` sections have one
shape wherever they are written, a stack file (`infra/Pulumi.<stack>.yaml`, read by
`infra/stack_config.py` with `parse_sso`, `parse_limits`, `parse_culling`) or the Helm values'
`custom`: one validation, one set of defaults, errors that name the field (`SettingsError.path`).
Infra writes the section with `settings_to_custom` (`infra/values.py`), and the hub reads it back
with `parse_custom` (`hub/z2jh.py`):

    from hub.settings import parse_custom
    parse_custom(values["custom"])          # raises SettingsError naming the bad key

The `custom` section (zero-to-jupyterhub passes it to the hub untouched)::

    custom:
      catalog: [...catalog_to_list(catalog)...]
      imageMap: {slug: image-ref}
      launch:
        allowPreviewTags: false
        previewTags: {slug: [tag, ...]}
        gpu: {count: 1, resourceName: nvidia.com/gpu, nodeSelector: {...}, tolerations: [...]}
        memoryRequestIsLimit: false  # true: a server requests its course's memory_limit
        keptWork:                # optional: a person's work per course kept between servers
          days: 0                # volumes untouched this long are deleted; 0: nothing kept
          storageClass: efs-sc   # optional (Kubernetes): the volumes' storage class
          quota: 500Gi           # optional (Kubernetes): what all the volumes may request
      culling:                   # optional, every key optional (defaults: CullSettings)
        enabled: true
        idleTimeout: 3600        # seconds without activity before a server is stopped
        maxAge: 28800            # seconds before a server is stopped even if active; 0: never
        every: 300               # seconds between culler runs
        users: true              # delete throwaway users once their server is gone
        concurrency: 10
        kernelIdleTimeout: 1200  # seconds before an idle kernel is shut down
        kernelCullInterval: 120
        cullConnected: true      # also cull idle kernels that a browser tab is connected to
        terminalIdleTimeout: 1200
      sso:                       # optional: the OpenID Connect gate before any throwaway user
        issuer: https://sso.example.edu/realms/learners   # http:// only on loopback
        clientId: ol-course-hub  # the client secret comes from the env OAUTH_CLIENT_SECRET
      publicUrl: https://learn.example.edu/   # optional: what browsers use; https only, so
                                 # that the hub's cookies are Secure behind the load balancer
                                 # and it sends HSTS (hub/config.py)
      limits:                    # optional, every key optional (DEFAULT_LIMITS); 0: no limit
        activeServers: 0
        gpuServers: 0
        serversPerIdentity: 2
        spawnsPerIdentityPerMinute: 5
        retryAfter: 300          # seconds the limit page suggests waiting when the hub is full
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from catalog import (
    CPU_IMAGE_SUFFIX,
    Catalog,
    CatalogError,
    catalog_from_list,
    catalog_to_list,
    parse_memory,
)
from catalog.image_facts import TAG_PATTERN
from hub.launch import GpuSettings, KeptWorkSettings, LaunchSettings
from hub.limits import LimitSettings

#: The launch limits wherever a stack file or the Helm values name none (hub/limits.py;
#: docs/ARCHITECTURE.md says how they were sized). Settings made in code (the local hub, tests)
#: start from `LimitSettings()`: none.
DEFAULT_LIMITS = LimitSettings(servers_per_identity=2, spawns_per_identity_per_minute=5)

_TOLERATION_KEYS = frozenset({"key", "operator", "value", "effect", "tolerationSeconds"})
_TOLERATION_OPERATORS = frozenset({"Exists", "Equal"})
_TOLERATION_EFFECTS = frozenset({"NoSchedule", "PreferNoSchedule", "NoExecute"})
# Kubernetes qualified names (label keys) and label values (infra/stack_config.py uses them too).
LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_RESOURCE_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


class SettingsError(ValueError):
    """A bad value in the hub's settings; `path` is the dotted key, like `launch.gpu.count`."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"custom.{path}: {message}" if path else message)


@dataclass(frozen=True)
class CullSettings:
    """Idle and age limits (seconds) for servers, throwaway users and kernels."""

    enabled: bool = True
    idle_timeout: int = 3600
    max_age: int = 8 * 3600
    every: int = 300
    users: bool = True
    concurrency: int = 10
    kernel_idle_timeout: int = 1200
    kernel_cull_interval: int = 120
    cull_connected: bool = True
    terminal_idle_timeout: int = 1200

    def culler_arguments(self) -> list[str]:
        """Command-line arguments of `python -m jupyterhub_idle_culler`."""
        arguments = [
            f"--timeout={self.idle_timeout}",
            f"--cull-every={self.every}",
            f"--concurrency={self.concurrency}",
        ]
        if self.max_age:
            arguments.append(f"--max-age={self.max_age}")
        if self.users:
            arguments.append("--cull-users=true")
        return arguments

    def single_user_arguments(self) -> list[str]:
        """Arguments of `jupyterhub-singleuser` that make the server cull its own kernels."""
        if not self.enabled or not self.kernel_idle_timeout:
            return []
        return [
            f"--MappingKernelManager.cull_idle_timeout={self.kernel_idle_timeout}",
            f"--MappingKernelManager.cull_interval={self.kernel_cull_interval}",
            f"--MappingKernelManager.cull_connected={self.cull_connected}",
            f"--TerminalManager.cull_inactive_timeout={self.terminal_idle_timeout}",
            f"--TerminalManager.cull_interval={self.kernel_cull_interval}",
        ]


@dataclass(frozen=True)
class SsoSettings:
    """The OpenID Connect provider in front of the launch links (hub/sso.py)."""

    issuer: str
    client_id: str


@dataclass(frozen=True)
class HubSettings:
    """Everything the hub's configuration needs beyond JupyterHub's own settings."""

    catalog: Catalog
    image_map: Mapping[str, str]
    launch: LaunchSettings = field(default_factory=LaunchSettings)
    culling: CullSettings = field(default_factory=CullSettings)
    #: None: throwaway users for anyone who follows a link (local hub, tests).
    sso: SsoSettings | None = None
    limits: LimitSettings = field(default_factory=LimitSettings)
    #: The URL browsers use, https (`JupyterHub.public_url`); None: as each request says (the
    #: local hub, tests).
    public_url: str | None = None


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SettingsError(path, f"must be a mapping, not {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise SettingsError(path, f"keys must be strings, not {key!r}")
    return value


def _reject_unknown(data: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in data:
        if key not in allowed:
            where = f"{path}.{key}" if path else key
            raise SettingsError(where, f"unknown key; allowed: {', '.join(allowed)}")


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(path, "must be true or false")
    return value


def _int(value: Any, path: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SettingsError(path, f"must be a whole number >= {minimum}")
    return value


def _required(data: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in data:
        raise SettingsError(f"{path}.{key}", "is required")
    return data[key]


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise SettingsError(path, "must be a non-empty string")
    return value


def parse_catalog(value: Any) -> Catalog:
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise SettingsError("catalog", "must be a list of courses (catalog_to_list)")
    try:
        return catalog_from_list([dict(item) for item in value])
    except (CatalogError, KeyError, TypeError, ValueError) as e:
        raise SettingsError("catalog", f"is not a catalog_to_list() result: {e}") from None


def parse_image_map(value: Any, catalog: Catalog, require_all: bool = True) -> dict[str, str]:
    """Image map key -> reference: a course's slug, and a GPU course's `<slug>--cpu` too."""
    data = _mapping(value, "imageMap")
    keys = catalog.image_keys
    result = {}
    for key, image in data.items():
        if key not in keys:
            raise SettingsError(
                f"imageMap.{key}",
                "is not an image of the catalog (a course's slug, or a GPU course's "
                f"<slug>{CPU_IMAGE_SUFFIX})",
            )
        result[key] = _string(image, f"imageMap.{key}")
        if any(ch.isspace() for ch in image):
            raise SettingsError(f"imageMap.{key}", f"{image!r} is not an image reference")
    if require_all:
        missing = [key for key in keys if key not in result]
        if missing:
            raise SettingsError("imageMap", f"has no image for {', '.join(missing)}")
    return result


def _toleration(value: Any, path: str) -> dict[str, Any]:
    data = _mapping(value, path)
    _reject_unknown(data, tuple(sorted(_TOLERATION_KEYS)), path)
    operator = data.get("operator", "Equal")
    if operator not in _TOLERATION_OPERATORS:
        raise SettingsError(f"{path}.operator", "must be Exists or Equal")
    if "effect" in data and data["effect"] not in _TOLERATION_EFFECTS:
        raise SettingsError(
            f"{path}.effect", f"must be one of {', '.join(sorted(_TOLERATION_EFFECTS))}"
        )
    for key in ("key", "value", "effect", "operator"):
        if key in data and not isinstance(data[key], str):
            raise SettingsError(f"{path}.{key}", "must be a string")
    if operator == "Exists" and data.get("value"):
        raise SettingsError(f"{path}.value", "must be empty when operator is Exists")
    if "tolerationSeconds" in data:
        _int(data["tolerationSeconds"], f"{path}.tolerationSeconds")
    return dict(data)


def parse_gpu(value: Any, path: str = "launch.gpu") -> GpuSettings | None:
    if value is None:
        return None
    data = _mapping(value, path)
    _reject_unknown(data, ("count", "resourceName", "nodeSelector", "tolerations"), path)
    count = _int(data.get("count", 1), f"{path}.count")
    resource = _string(data.get("resourceName", "nvidia.com/gpu"), f"{path}.resourceName")
    if not _RESOURCE_NAME.match(resource):
        raise SettingsError(f"{path}.resourceName", f"{resource!r} is not a resource name")
    selector = _mapping(data.get("nodeSelector"), f"{path}.nodeSelector")
    for key, label in selector.items():
        if not LABEL_KEY.match(key):
            raise SettingsError(f"{path}.nodeSelector", f"{key!r} is not a label key")
        if not isinstance(label, str) or not LABEL_VALUE.match(label):
            raise SettingsError(f"{path}.nodeSelector.{key}", f"{label!r} is not a label value")
    tolerations = data.get("tolerations", [])
    if not isinstance(tolerations, list):
        raise SettingsError(f"{path}.tolerations", "must be a list of tolerations")
    return GpuSettings(
        count=count,
        resource_name=resource,
        node_selector=dict(selector),
        tolerations=tuple(
            _toleration(item, f"{path}.tolerations[{index}]")
            for index, item in enumerate(tolerations)
        ),
    )


def parse_kept_work(value: Any, path: str = "launch.keptWork") -> KeptWorkSettings:
    data = _mapping(value, path)
    _reject_unknown(data, ("days", "storageClass", "quota"), path)
    storage_class = data.get("storageClass")
    quota = 0
    if data.get("quota") is not None:
        try:
            quota = parse_memory(data["quota"], path, "quota")
        except CatalogError as e:
            raise SettingsError(f"{path}.quota", e.message) from None
    return KeptWorkSettings(
        quota=quota,
        days=_int(data.get("days", 0), f"{path}.days"),
        storage_class=(
            None if storage_class is None else _string(storage_class, f"{path}.storageClass")
        ),
    )


def parse_launch(value: Any, catalog: Catalog) -> LaunchSettings:
    data = _mapping(value, "launch")
    _reject_unknown(
        data,
        ("allowPreviewTags", "previewTags", "gpu", "memoryRequestIsLimit", "keptWork"),
        "launch",
    )
    allow = _bool(data.get("allowPreviewTags", False), "launch.allowPreviewTags")
    tags_data = _mapping(data.get("previewTags"), "launch.previewTags")
    preview_tags: dict[str, tuple[str, ...]] = {}
    for slug, tags in tags_data.items():
        where = f"launch.previewTags.{slug}"
        if slug not in catalog:
            raise SettingsError(where, "is not a course of the catalog")
        if not isinstance(tags, list):
            raise SettingsError(where, "must be a list of image tags")
        for tag in tags:
            if not isinstance(tag, str) or not TAG_PATTERN.match(tag):
                raise SettingsError(where, f"{tag!r} is not an image tag")
        preview_tags[slug] = tuple(tags)
    return LaunchSettings(
        allow_preview_tags=allow,
        preview_tags=preview_tags,
        gpu=parse_gpu(data.get("gpu")),
        memory_request_is_limit=_bool(
            data.get("memoryRequestIsLimit", False), "launch.memoryRequestIsLimit"
        ),
        kept_work=parse_kept_work(data.get("keptWork")),
    )


_CULL_KEYS = {
    "enabled": "enabled",
    "idleTimeout": "idle_timeout",
    "maxAge": "max_age",
    "every": "every",
    "users": "users",
    "concurrency": "concurrency",
    "kernelIdleTimeout": "kernel_idle_timeout",
    "kernelCullInterval": "kernel_cull_interval",
    "cullConnected": "cull_connected",
    "terminalIdleTimeout": "terminal_idle_timeout",
}
_CULL_MINIMUM = {"every": 1, "concurrency": 1, "idle_timeout": 1, "kernel_cull_interval": 1}


def parse_culling(value: Any) -> CullSettings:
    """The `culling` section; what it leaves out is CullSettings()'s."""
    data = _mapping(value, "culling")
    _reject_unknown(data, tuple(_CULL_KEYS), "culling")
    kwargs: dict[str, Any] = {}
    for key, attribute in _CULL_KEYS.items():
        if key not in data:
            continue
        path = f"culling.{key}"
        if isinstance(getattr(CullSettings, attribute), bool):
            kwargs[attribute] = _bool(data[key], path)
        else:
            kwargs[attribute] = _int(data[key], path, _CULL_MINIMUM.get(attribute, 0))
    return CullSettings(**kwargs)


_ISSUER = re.compile(r"^https://[^\s/?#]+(/[^\s?#]*)?$")
#: A provider on this machine (the local hub's) may speak plain HTTP.
_LOOPBACK_ISSUER = re.compile(r"^http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/[^\s?#]*)?$")


def parse_sso(value: Any) -> SsoSettings | None:
    """The `sso` section (None: no gate); the issuer is https://, or http:// on loopback."""
    if value is None:
        return None
    data = _mapping(value, "sso")
    _reject_unknown(data, ("issuer", "clientId"), "sso")
    issuer = _string(_required(data, "issuer", "sso"), "sso.issuer").rstrip("/")
    if not (_ISSUER.match(issuer) or _LOOPBACK_ISSUER.match(issuer)):
        raise SettingsError(
            "sso.issuer", f"{issuer!r} is not an https:// issuer URL (the realm's URL)"
        )
    return SsoSettings(
        issuer=issuer,
        client_id=_string(_required(data, "clientId", "sso"), "sso.clientId"),
    )


_LIMIT_KEYS = {
    "activeServers": "active_servers",
    "gpuServers": "gpu_servers",
    "serversPerIdentity": "servers_per_identity",
    "spawnsPerIdentityPerMinute": "spawns_per_identity_per_minute",
    "retryAfter": "retry_after",
}


def parse_limits(value: Any) -> LimitSettings:
    """The `limits` section; what it leaves out is DEFAULT_LIMITS'."""
    data = _mapping(value, "limits")
    _reject_unknown(data, tuple(_LIMIT_KEYS), "limits")
    return LimitSettings(
        **{
            attribute: (
                _int(data[key], f"limits.{key}", 1 if key == "retryAfter" else 0)
                if key in data
                else getattr(DEFAULT_LIMITS, attribute)
            )
            for key, attribute in _LIMIT_KEYS.items()
        }
    )


_PUBLIC_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:\d+)?/$")


def parse_public_url(value: Any) -> str | None:
    """`publicUrl`: `https://<host>/` (None where not given)."""
    if value is None:
        return None
    url = _string(value, "publicUrl")
    if not _PUBLIC_URL.match(url):
        raise SettingsError("publicUrl", f"{url!r} is not an https://<host>/ URL")
    return url


def parse_custom(custom: Any, require_all_images: bool = True) -> HubSettings:
    """The hub's settings from the Helm values' `custom` section; raises SettingsError."""
    data = _mapping(custom, "")
    keys = ("catalog", "imageMap", "launch", "culling", "sso", "limits", "publicUrl")
    _reject_unknown(data, keys, "")
    if "catalog" not in data:
        raise SettingsError("catalog", "is required")
    catalog = parse_catalog(data["catalog"])
    return HubSettings(
        catalog=catalog,
        image_map=parse_image_map(data.get("imageMap"), catalog, require_all_images),
        launch=parse_launch(data.get("launch"), catalog),
        culling=parse_culling(data.get("culling")),
        sso=parse_sso(data.get("sso")),
        limits=parse_limits(data.get("limits")),
        public_url=parse_public_url(data.get("publicUrl")),
    )


def settings_to_custom(settings: HubSettings) -> dict[str, Any]:
    """The inverse of parse_custom: plain JSON data for Helm values or a config file."""
    launch = settings.launch
    gpu = launch.gpu
    culling = settings.culling
    return {
        "catalog": catalog_to_list(settings.catalog),
        "imageMap": dict(settings.image_map),
        "launch": {
            "allowPreviewTags": launch.allow_preview_tags,
            "previewTags": {slug: list(tags) for slug, tags in launch.preview_tags.items()},
            "memoryRequestIsLimit": launch.memory_request_is_limit,
            "keptWork": {
                "days": launch.kept_work.days,
                **(
                    {"storageClass": launch.kept_work.storage_class}
                    if launch.kept_work.storage_class
                    else {}
                ),
                **({"quota": launch.kept_work.quota} if launch.kept_work.quota else {}),
            },
            **(
                {
                    "gpu": {
                        "count": gpu.count,
                        "resourceName": gpu.resource_name,
                        "nodeSelector": dict(gpu.node_selector),
                        "tolerations": [dict(t) for t in gpu.tolerations],
                    }
                }
                if gpu is not None
                else {}
            ),
        },
        "culling": {key: getattr(culling, attribute) for key, attribute in _CULL_KEYS.items()},
        **(
            {
                "sso": {
                    "issuer": settings.sso.issuer,
                    "clientId": settings.sso.client_id,
                }
            }
            if settings.sso is not None
            else {}
        ),
        "limits": {
            key: getattr(settings.limits, attribute) for key, attribute in _LIMIT_KEYS.items()
        },
        **({"publicUrl": settings.public_url} if settings.public_url else {}),
    }
