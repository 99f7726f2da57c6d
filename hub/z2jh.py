"""Production hub configuration, loaded by zero-to-jupyterhub's jupyterhub_config.py.

The Helm values carry::

    hub:
      extraConfig:
        courses: "from hub.z2jh import configure; configure(c)"
    custom: {catalog: [...], imageMap: {...}, launch: {...}, culling: {...},    # hub.settings
             sso: {...}, limits: {...}}

`extraConfig` runs last, after the chart has configured KubeSpawner from `singleuser.*`, so the
chart's scheduling, storage and security settings stay and become each plan's baseline. The
database is the chart's (`hub.db.type: postgres`, `hub.db.url`). Culling is `custom.culling`
alone (servers, throwaway users and kernels); infra turns the chart's own culler off
(`cull.enabled: false`), and ours takes its service name, so there is exactly one.
"""

from __future__ import annotations

from typing import Any, Callable

from hub.config import configure_hub
from hub.settings import HubSettings, parse_custom

SPAWNER_CLASS = "hub.spawner.CourseKubeSpawner"


def _chart_get_config() -> Callable[..., Any]:
    # The chart's helper module, next to its jupyterhub_config.py in the hub image.
    from z2jh import get_config  # type: ignore[import-not-found]  # pants: no-infer-dep

    return get_config  # type: ignore[no-any-return]


def load_settings(get_config: Callable[..., Any] | None = None) -> HubSettings:
    """The hub's settings from the chart's `custom` values; SettingsError when they are bad."""
    get_config = get_config or _chart_get_config()
    return parse_custom(get_config("custom", None))


def sqlalchemy_url(url: str) -> str:
    """`postgresql://...` with the driver the hub image has named (psycopg2): SQLAlchemy 2.1
    reads a bare `postgresql://` as psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def configure(c: Any, get_config: Callable[..., Any] | None = None) -> HubSettings:
    """Configures the hub for the courses; `c` is jupyterhub_config.py's config object."""
    settings = load_settings(get_config)
    configure_hub(c, settings, SPAWNER_CLASS)
    # Kernel-culling arguments are appended to the command; KubeSpawner drops arguments when
    # it runs the image's own command, so name it (the chart's default singleuser.cmd).
    if not c.KubeSpawner.get("cmd"):
        c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
    if isinstance(c.JupyterHub.get("db_url"), str):
        c.JupyterHub.db_url = sqlalchemy_url(c.JupyterHub.db_url)
    return settings
