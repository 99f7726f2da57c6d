"""Hub configuration: production (zero-to-jupyterhub's extraConfig) and local.

zero-to-jupyterhub cannot run here; `hub.z2jh` is tested against the chart's published
contract instead: its jupyterhub_config.py runs `hub.extraConfig` snippets last with `c` in
scope and offers `z2jh.get_config("custom")` for the `custom` values. Infra turns the chart's own
culler off; the fixture puts one in anyway (as the chart does with `cull.enabled`), and ours
replaces it, so there is one whatever the values say. (tests/infra/test_chart_hub_config.py runs
the chart's real jupyterhub_config.py on what helm rendered.)
"""

from __future__ import annotations

import sys
import types
from dataclasses import replace
from typing import Any

import pytest
from jupyterhub.app import JupyterHub
from traitlets.config import Config

from catalog import catalog_to_list
from hub.auth import spawn_arguments
from hub.config import CULLER_SCOPES, HSTS, TEMPLATES, configure_hub, services_hub_api_url
from hub.settings import DEFAULT_LIMITS, CullSettings, HubSettings
from hub.spawner import CourseKubeSpawner
from hub.sso import CourseSsoAuthenticator
from hub.z2jh import configure
from tests.hub.hub_data import CATALOG, IMAGE_MAP, PRODUCTION

VALUES: dict[str, Any] = {
    "custom": {
        "catalog": catalog_to_list(CATALOG),
        "imageMap": {**IMAGE_MAP, "unbuilt": "127.0.0.1:5000/ol-course-notebooks:unbuilt-1"},
        "launch": {"allowPreviewTags": False, "gpu": {"count": 1}},
        "culling": {"idleTimeout": 1800, "every": 600, "maxAge": 7200, "kernelIdleTimeout": 900},
        # Every stack is behind the SSO gate (infra/stack_config.py requires it).
        "sso": {"issuer": "https://sso.example.edu/realms/learners", "clientId": "hub"},
        "limits": {"activeServers": 300, "serversPerIdentity": 2},
    },
    # As infra writes it: culling is custom.culling's alone.
    "cull": {"enabled": False},
}


def lookup(values: dict[str, Any], key: str, default: Any = None) -> Any:
    """z2jh.get_config's contract: dotted keys into the chart's values."""
    node: Any = values
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def chart_get_config(key: str, default: Any = None) -> Any:
    return lookup(VALUES, key, default)


def chart_config() -> Config:
    """What the chart's jupyterhub_config.py has set when extraConfig runs (abridged)."""
    c = Config()
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    c.JupyterHub.services = [
        {
            "name": "jupyterhub-idle-culler",
            "command": ["python3", "-m", "jupyterhub_idle_culler", "--timeout=3600"],
        },
        {"name": "other", "url": "http://other:8000"},
    ]
    c.JupyterHub.load_roles = [
        {
            "name": "jupyterhub-idle-culler",
            "scopes": ["read:users"],
            "services": ["jupyterhub-idle-culler"],
        }
    ]
    c.JupyterHub.template_paths = ["/usr/local/share/templates"]
    c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
    c.JupyterHub.db_url = "postgresql://jupyterhub@db.example:5432/jupyterhub"
    return c


def test_z2jh_extra_config() -> None:
    c = chart_config()
    settings = configure(c, chart_get_config)
    assert settings.image_map["intro-ml"] == IMAGE_MAP["intro-ml"]
    assert c.JupyterHub.spawner_class == "hub.spawner.CourseKubeSpawner"
    assert c.JupyterHub.authenticator_class == "hub.sso.CourseSsoAuthenticator"
    assert c.Authenticator.allow_all is True
    assert c.CourseSpawner.hub_settings is settings
    # Limits the values name, DEFAULT_LIMITS for the rest.
    assert settings.limits == replace(DEFAULT_LIMITS, active_servers=300, servers_per_identity=2)
    # Metrics need a token (production: Prometheus' service token; local_hub.main opens them).
    assert "authenticate_prometheus" not in c.JupyterHub
    assert c.JupyterHub.template_paths == [TEMPLATES, "/usr/local/share/templates"]
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert set(services) == {"jupyterhub-idle-culler", "other"}
    command = services["jupyterhub-idle-culler"]["command"]
    assert command[1:3] == ["-m", "jupyterhub_idle_culler"]
    assert {"--timeout=1800", "--cull-every=600", "--max-age=7200", "--cull-users=true"} <= set(
        command
    )
    assert settings.culling.kernel_idle_timeout == 900
    assert c.JupyterHub.db_url == "postgresql+psycopg2://jupyterhub@db.example:5432/jupyterhub"
    (role,) = (r for r in c.JupyterHub.load_roles if r["name"] == "jupyterhub-idle-culler")
    assert role["scopes"] == CULLER_SCOPES and role["services"] == ["jupyterhub-idle-culler"]
    # Learners: their own server and activity, no API tokens (`self` would grant `tokens`).
    (learner,) = (r for r in c.JupyterHub.load_roles if r["name"] == "user")
    assert "servers!user" in learner["scopes"] and "access:servers!user" in learner["scopes"]
    assert not {"self", "tokens!user", "tokens"} & set(learner["scopes"])
    assert c.KubeSpawner.cmd == ["jupyterhub-singleuser"]


def test_behind_https_the_hub_knows_its_public_url_and_sends_hsts() -> None:
    """A stack's hub (infra writes `custom.publicUrl`) marks its cookies Secure and sends HSTS,
    keeping the chart's own tornado_settings; without a public URL (the local hub) neither."""
    c = chart_config()
    c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}  # the chart's
    values = {"custom": {**VALUES["custom"], "publicUrl": "https://learn.example.edu/"}}
    configure(c, lambda key, default=None: lookup(values, key, default))
    assert c.JupyterHub.public_url == "https://learn.example.edu/"
    assert c.JupyterHub.tornado_settings == {
        "slow_spawn_timeout": 0,
        "headers": {"Strict-Transport-Security": HSTS},
    }
    app = JupyterHub(config=c)
    assert app.public_url == "https://learn.example.edu/"
    plain = chart_config()
    configure(plain, chart_get_config)
    assert "public_url" not in plain.JupyterHub and "tornado_settings" not in plain.JupyterHub


def test_z2jh_config_loads_in_jupyterhub() -> None:
    """The configuration resolves to our classes in a real JupyterHub application object: the
    OIDC authenticator with the issuer and client, the course spawner."""
    c = chart_config()
    configure(c, chart_get_config)
    app = JupyterHub(config=c)
    assert app.spawner_class is CourseKubeSpawner
    assert app.authenticate_prometheus is True
    assert app.authenticator_class is CourseSsoAuthenticator
    authenticator = CourseSsoAuthenticator(config=c)
    assert authenticator.issuer == "https://sso.example.edu/realms/learners"
    assert authenticator.client_id == "hub" and authenticator.auto_login is True
    assert authenticator.username_claim == "sub"
    assert authenticator.users_per_person == 4  # two servers per person, two sign-ins under way
    assert authenticator.allow_all is True
    paths = [path for path, _ in authenticator.get_handlers(app)]
    assert {"/oauth_login", "/oauth_callback", "/tmplogin", "/resume/([^/]+)"} <= set(paths)


def test_z2jh_reads_the_chart_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("z2jh")
    module.get_config = chart_get_config  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "z2jh", module)
    c = Config()
    configure(c)
    assert c.KubeSpawner.cmd == ["jupyterhub-singleuser"]


def test_bad_values_fail_the_hub_start() -> None:
    custom: dict[str, Any] = VALUES["custom"]  # type: ignore[assignment]
    broken = {"custom": {**custom, "imageMap": {}}}
    with pytest.raises(ValueError, match="custom.imageMap: has no image for"):
        configure(Config(), lambda key, default=None: lookup(broken, key, default))


def test_culling_can_be_disabled() -> None:
    c = chart_config()
    settings = HubSettings(CATALOG, IMAGE_MAP, PRODUCTION, CullSettings(enabled=False))
    configure_hub(c, settings, "hub.spawner.CourseKubeSpawner")
    assert [s["name"] for s in c.JupyterHub.services] == ["other"]
    assert not [r for r in c.JupyterHub.load_roles if r["name"] == "jupyterhub-idle-culler"]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("course=a&notebook=b%2Fc.ipynb", [("opt-course", "a"), ("opt-notebook", "b/c.ipynb")]),
        (
            "opt-course=a&needs_gpu=0&tag=t",
            [("opt-course", "a"), ("opt-needs_gpu", "0"), ("opt-tag", "t")],
        ),
        ("next=/hub/admin&utm_source=x", []),
        ("", []),
        ("course=", [("opt-course", "")]),
    ],
)
def test_login_keeps_launch_arguments(query: str, expected: list[tuple[str, str]]) -> None:
    assert spawn_arguments(query) == expected


@pytest.mark.parametrize(
    ("hub_bind_url", "base_url", "expected"),
    [
        (None, "/", None),
        ("http://:8081", "/", "http://127.0.0.1:8081/hub/api"),
        ("http://0.0.0.0:8081", "/courses/", "http://127.0.0.1:8081/courses/hub/api"),
        ("http://[::]:8081", "/", "http://127.0.0.1:8081/hub/api"),
        ("http://172.18.0.1:40123", "/", "http://172.18.0.1:40123/hub/api"),
        ("http://[fd00::1]:8081/hub/", "/", "http://[fd00::1]:8081/hub/api"),
    ],
)
def test_services_reach_the_hub_where_it_listens(
    hub_bind_url: str | None, base_url: str, expected: str | None
) -> None:
    assert services_hub_api_url(hub_bind_url, base_url) == expected
