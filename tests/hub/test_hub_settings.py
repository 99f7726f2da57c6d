"""The Helm values' `custom` section -> HubSettings, as infra renders and validates it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from catalog import catalog_to_list
from hub.launch import GpuSettings, LaunchSettings
from hub.limits import LimitSettings
from hub.settings import (
    DEFAULT_LIMITS,
    CullSettings,
    HubSettings,
    SettingsError,
    SsoSettings,
    parse_custom,
    settings_to_custom,
)
from tests.hub.hub_data import CATALOG, GPU, IMAGE_MAP

# The contract from the brief, with every course of the test catalog built.
IMAGES = {**IMAGE_MAP, "unbuilt": "127.0.0.1:5000/ol-course-notebooks:unbuilt-1"}
CUSTOM: dict[str, Any] = {
    "catalog": catalog_to_list(CATALOG),
    "imageMap": IMAGES,
    "launch": {
        "allowPreviewTags": False,
        "previewTags": {"data-analytics": ["pr-42"]},
        "gpu": {
            "count": 1,
            "resourceName": "nvidia.com/gpu",
            "nodeSelector": {"k8s.amazonaws.com/accelerator": "nvidia-tesla-t4"},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
        },
    },
}


def test_the_contract_parses() -> None:
    assert parse_custom(CUSTOM) == HubSettings(
        catalog=CATALOG,
        image_map=IMAGES,
        launch=LaunchSettings(
            allow_preview_tags=False, preview_tags={"data-analytics": ("pr-42",)}, gpu=GPU
        ),
        culling=CullSettings(),
        limits=DEFAULT_LIMITS,
    )


def test_round_trip() -> None:
    settings = parse_custom({**CUSTOM, "culling": {"idleTimeout": 60, "users": False}})
    assert parse_custom(settings_to_custom(settings)) == settings
    assert settings.culling.idle_timeout == 60 and settings.culling.users is False


def test_sso_and_limits_round_trip() -> None:
    settings = parse_custom(
        {
            **CUSTOM,
            "sso": {"issuer": "https://sso.example.edu/realms/learners/", "clientId": "hub"},
            "limits": {"activeServers": 400, "gpuServers": 8, "serversPerIdentity": 2},
        }
    )
    assert settings.sso == SsoSettings("https://sso.example.edu/realms/learners", "hub")
    assert settings.limits == LimitSettings(
        active_servers=400,
        gpu_servers=8,
        servers_per_identity=2,
        spawns_per_identity_per_minute=DEFAULT_LIMITS.spawns_per_identity_per_minute,
    )
    assert parse_custom(settings_to_custom(settings)) == settings
    # Neither section: no gate (throwaway users for anyone), the default limits, no public URL.
    plain = parse_custom(CUSTOM)
    assert plain.sso is None and plain.limits == DEFAULT_LIMITS and plain.public_url is None
    assert parse_custom(settings_to_custom(plain)) == plain


def test_the_public_url_round_trips() -> None:
    settings = parse_custom({**CUSTOM, "publicUrl": "https://learn.example.edu/"})
    assert settings.public_url == "https://learn.example.edu/"
    assert parse_custom(settings_to_custom(settings)) == settings


@pytest.mark.parametrize(
    "issuer, accepted",
    [
        ("https://sso.example.edu/realms/learners", True),
        ("http://127.0.0.1:5556", True),  # the local hub's provider
        ("http://localhost:5556/realm", True),
        ("http://sso.example.edu/realms/learners", False),
        ("http://127.0.0.1.example.org/", False),
    ],
)
def test_the_issuer_is_https_except_on_loopback(issuer: str, accepted: bool) -> None:
    custom = {**CUSTOM, "sso": {"issuer": issuer, "clientId": "hub"}}
    if accepted:
        assert parse_custom(custom).sso == SsoSettings(issuer.rstrip("/"), "hub")
    else:
        with pytest.raises(SettingsError, match="custom.sso.issuer"):
            parse_custom(custom)


def test_no_gpu_section_means_no_gpus() -> None:
    custom = copy.deepcopy(CUSTOM)
    del custom["launch"]["gpu"]
    assert parse_custom(custom).launch.gpu is None
    assert parse_custom(settings_to_custom(parse_custom(custom))).launch.gpu is None


def with_change(path: str, value: Any) -> dict[str, Any]:
    custom = copy.deepcopy(CUSTOM)
    *parents, last = path.split(".")
    node = custom
    for key in parents:
        node = node.setdefault(key, {})
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return custom


@pytest.mark.parametrize(
    "path, value, where",
    [
        ("catalog", KeyError, "custom.catalog: is required"),
        ("catalog", [{"slug": "x"}], "custom.catalog"),
        ("imageMap.nope", "img", "custom.imageMap.nope: is not an image of the catalog"),
        ("imageMap.intro-ml", KeyError, "custom.imageMap: has no image for intro-ml"),
        ("imageMap.intro-ml", "", "custom.imageMap.intro-ml"),
        ("imageMap.intro-ml", "has space:1", "custom.imageMap.intro-ml"),
        ("launch.allowPreviewTags", "yes", "custom.launch.allowPreviewTags"),
        ("launch.previewTags.nope", ["a"], "custom.launch.previewTags.nope"),
        ("launch.previewTags.intro-ml", ["bad tag"], "custom.launch.previewTags.intro-ml"),
        ("launch.previewTags.intro-ml", "pr-1", "custom.launch.previewTags.intro-ml"),
        ("launch.gpu.count", -1, "custom.launch.gpu.count"),
        ("launch.gpu.count", True, "custom.launch.gpu.count"),
        ("launch.gpu.resourceName", "nvidia gpu", "custom.launch.gpu.resourceName"),
        ("launch.gpu.nodeSelector", {"bad key!": "x"}, "custom.launch.gpu.nodeSelector"),
        ("launch.gpu.tolerations", [{"key": "a", "operator": "Maybe"}], "operator"),
        ("launch.gpu.tolerations", [{"key": "a", "effect": "Never"}], "effect"),
        ("launch.gpu.tolerations", [{"key": "a", "colour": "red"}], "colour: unknown key"),
        ("launch.gpu.tolerations", [{"operator": "Exists", "value": "x"}], "value"),
        ("launch.gpu.extra", 1, "custom.launch.gpu.extra: unknown key"),
        ("launch.typo", 1, "custom.launch.typo: unknown key"),
        ("culling.idleTimeout", 0, "custom.culling.idleTimeout"),
        ("culling.users", "true", "custom.culling.users"),
        ("culling.idle", 5, "custom.culling.idle: unknown key"),
        ("extra", 1, "custom.extra: unknown key"),
        ("sso", {"clientId": "hub"}, "custom.sso.issuer: is required"),
        ("sso", {"issuer": "http://sso.example.edu", "clientId": "hub"}, "custom.sso.issuer"),
        ("sso", {"issuer": "sso.example.edu", "clientId": "hub"}, "custom.sso.issuer"),
        ("sso", {"issuer": "https://sso.example.edu"}, "custom.sso.clientId"),
        ("sso", {"issuer": "https://a.b", "clientId": "h", "secret": "x"}, "unknown key"),
        ("limits.activeServers", -1, "custom.limits.activeServers"),
        ("limits.retryAfter", 0, "custom.limits.retryAfter"),
        ("limits.perPerson", 1, "custom.limits.perPerson: unknown key"),
        ("publicUrl", "http://learn.example.edu/", "custom.publicUrl: 'http://learn"),
        ("publicUrl", "https://learn.example.edu", "custom.publicUrl"),
        ("publicUrl", "https://learn.example.edu/hub/", "custom.publicUrl"),
        ("publicUrl", 443, "custom.publicUrl"),
    ],
)
def test_errors_name_the_key(path: str, value: Any, where: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_custom(with_change(path, value))
    assert where in str(caught.value)


def test_missing_images_allowed_for_local_use() -> None:
    custom = with_change("imageMap.intro-ml", KeyError)
    assert "intro-ml" not in parse_custom(custom, require_all_images=False).image_map


# CullSettings -> (the culler's arguments, the single-user server's arguments)
CULLING = [
    pytest.param(
        CullSettings(idle_timeout=600, max_age=3600, every=60, users=True, concurrency=5),
        [
            "--timeout=600",
            "--cull-every=60",
            "--concurrency=5",
            "--max-age=3600",
            "--cull-users=true",
        ],
        [
            "--MappingKernelManager.cull_idle_timeout=1200",
            "--MappingKernelManager.cull_interval=120",
            "--MappingKernelManager.cull_connected=True",
            "--TerminalManager.cull_inactive_timeout=1200",
            "--TerminalManager.cull_interval=120",
        ],
        id="servers-and-users",
    ),
    pytest.param(
        CullSettings(max_age=0),
        ["--timeout=3600", "--cull-every=300", "--concurrency=10", "--cull-users=true"],
        [
            "--MappingKernelManager.cull_idle_timeout=1200",
            "--MappingKernelManager.cull_interval=120",
            "--MappingKernelManager.cull_connected=True",
            "--TerminalManager.cull_inactive_timeout=1200",
            "--TerminalManager.cull_interval=120",
        ],
        id="no-age-limit",
    ),
    pytest.param(
        CullSettings(users=False),
        ["--timeout=3600", "--cull-every=300", "--concurrency=10", "--max-age=28800"],
        [
            "--MappingKernelManager.cull_idle_timeout=1200",
            "--MappingKernelManager.cull_interval=120",
            "--MappingKernelManager.cull_connected=True",
            "--TerminalManager.cull_inactive_timeout=1200",
            "--TerminalManager.cull_interval=120",
        ],
        id="users-kept",
    ),
    pytest.param(
        CullSettings(
            kernel_idle_timeout=300,
            kernel_cull_interval=30,
            cull_connected=False,
            terminal_idle_timeout=600,
        ),
        [
            "--timeout=3600",
            "--cull-every=300",
            "--concurrency=10",
            "--max-age=28800",
            "--cull-users=true",
        ],
        [
            "--MappingKernelManager.cull_idle_timeout=300",
            "--MappingKernelManager.cull_interval=30",
            "--MappingKernelManager.cull_connected=False",
            "--TerminalManager.cull_inactive_timeout=600",
            "--TerminalManager.cull_interval=30",
        ],
        id="kernels-and-terminals",
    ),
    pytest.param(
        CullSettings(kernel_idle_timeout=0),
        [
            "--timeout=3600",
            "--cull-every=300",
            "--concurrency=10",
            "--max-age=28800",
            "--cull-users=true",
        ],
        [],
        id="no-kernel-culling",
    ),
    pytest.param(
        CullSettings(enabled=False),
        [
            "--timeout=3600",
            "--cull-every=300",
            "--concurrency=10",
            "--max-age=28800",
            "--cull-users=true",
        ],
        [],
        id="culling-off",
    ),
]


@pytest.mark.parametrize("culling, culler, single_user", CULLING)
def test_culler_and_kernel_arguments(
    culling: CullSettings, culler: list[str], single_user: list[str]
) -> None:
    assert culling.culler_arguments() == culler
    assert culling.single_user_arguments() == single_user


def test_gpu_defaults() -> None:
    settings = parse_custom(with_change("launch.gpu", {}))
    assert settings.launch.gpu == GpuSettings()
