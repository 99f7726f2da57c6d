"""JupyterHub configuration shared by the local hub and production (zero-to-jupyterhub).

`configure_hub(c, settings, spawner_class=...)` sets what both deployments have in common:
throwaway users (behind the SSO gate when `settings.sso` is set: hub/sso.py; else
TmpAuthenticator with launch links), the course spawner and its settings and limits, the
error pages that say why a link was refused, the idle culler as a hub service (replacing the
chart's), what a learner's user may do (`user` role: no API tokens) and how often the hub records
activity. The callers add what differs: Docker and
SQLite locally (`local_hub.config`), Kubernetes and PostgreSQL in production (`hub.z2jh`, with
the database set by the chart's `hub.db`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hub.limits import users_per_person
from hub.settings import CullSettings, HubSettings

TEMPLATES = str(Path(__file__).with_name("templates"))
#: The chart's name for its culler service and role: ours replaces the chart's, so one runs.
CULLER_SERVICE = "jupyterhub-idle-culler"
#: What jupyterhub-idle-culler needs to stop servers and delete users (its README's scopes).
CULLER_SCOPES = [
    "list:users",
    "read:users:activity",
    "read:servers",
    "delete:servers",
    "admin:users",
]


#: JupyterHub's `user` role, redefined for throwaway learners: their own user, activity and
#: servers, and reading their tokens, but not `tokens` (creating them: a throwaway user never
#: needs an API token, and each one is a row of the hub's database) nor sharing. The default
#: role's `self` would grant both.
LEARNER_ROLE = "user"
LEARNER_SCOPES = [
    "read:users!user",
    "users:activity!user",
    "servers!user",
    "access:servers!user",
    "read:tokens!user",
]


def learner_role() -> dict[str, Any]:
    return {"name": LEARNER_ROLE, "scopes": list(LEARNER_SCOPES)}


def services_hub_api_url(hub_bind_url: str | None, base_url: str = "/") -> str | None:
    """Where a service the hub runs beside itself reaches the hub's API: where the hub listens,
    on loopback when it listens on every interface (as the chart's `http://:8081`). JupyterHub
    would give a managed service `hub_connect_url`, the hub's Service in Kubernetes, which the
    hub pod reaches through its own NetworkPolicy and a hairpin each network plugin treats its
    own way (zero-to-jupyterhub's culler uses localhost for this reason). None: JupyterHub's
    default (the hub on 127.0.0.1:8081)."""
    if not hub_bind_url:
        return None
    bind = urlsplit(hub_bind_url)
    host = bind.hostname or ""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    port = bind.port or (443 if bind.scheme == "https" else 80)
    prefix = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"
    return f"{bind.scheme}://{host}:{port}{prefix}hub/api"


def culler_service(
    culling: CullSettings, python: str | None = None, hub_api_url: str | None = None
) -> dict[str, Any]:
    """The jupyterhub-idle-culler hub service, run by the hub itself, reaching the hub's API at
    `hub_api_url` (`services_hub_api_url`)."""
    url = [f"--url={hub_api_url}"] if hub_api_url else []
    return {
        "name": CULLER_SERVICE,
        "command": [
            python or sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            *url,
            *culling.culler_arguments(),
        ],
    }


def culler_role() -> dict[str, Any]:
    return {"name": CULLER_SERVICE, "scopes": list(CULLER_SCOPES), "services": [CULLER_SERVICE]}


def _replace_named(existing: Any, item: dict[str, Any] | None, name: str) -> list[dict[str, Any]]:
    """`existing` (a config list, maybe unset) without entries called `name`, plus `item`."""
    items = [entry for entry in (existing or []) if entry.get("name") != name]
    return items + ([item] if item else [])


def configure_login(c: Any, settings: HubSettings) -> None:
    """Who gets a throwaway user: whoever follows a link, or whoever the SSO provider signs in."""
    # Every visitor (every signed-in person, with SSO) may have throwaway users: on JupyterHub
    # 5+ TmpAuthenticator fails every login with a 500 without this.
    c.Authenticator.allow_all = True
    sso = settings.sso
    if sso is None:
        c.JupyterHub.authenticator_class = "hub.auth.CourseTmpAuthenticator"
        return
    c.JupyterHub.authenticator_class = "hub.sso.CourseSsoAuthenticator"
    c.CourseSsoAuthenticator.issuer = sso.issuer
    c.CourseSsoAuthenticator.client_id = sso.client_id
    # The person is the provider's `sub`: stable and never reassigned (an email is neither).
    c.CourseSsoAuthenticator.username_claim = "sub"
    c.CourseSsoAuthenticator.scope = ["openid"]
    c.CourseSsoAuthenticator.login_service = "your institution's sign-in"
    # /hub/login goes straight to the provider: no page with a button first.
    c.CourseSsoAuthenticator.auto_login = True
    # A sign-in reuses one of the person's throwaway users without a server, and stops at a bound.
    c.CourseSsoAuthenticator.users_per_person = users_per_person(settings.limits)


#: Browsers keep to https for a year once they have seen the hub over it (HSTS).
HSTS = "max-age=31536000"


def configure_https(c: Any, public_url: str | None) -> None:
    """Behind the load balancer the hub sees plain HTTP (the proxy's own X-Forwarded-Proto comes
    last), so it would set its cookies (its login, oauthenticator's state) without `Secure`:
    `public_url` names the https URL browsers use, which makes JupyterHub mark every cookie
    Secure, and every hub page carries HSTS. Nothing for the local hub (None)."""
    if not public_url:
        return
    c.JupyterHub.public_url = public_url
    tornado_settings = dict(c.JupyterHub.get("tornado_settings", {}))  # keep the chart's
    tornado_settings["headers"] = {
        **tornado_settings.get("headers", {}),
        "Strict-Transport-Security": HSTS,
    }
    c.JupyterHub.tornado_settings = tornado_settings


def configure_hub(
    c: Any, settings: HubSettings, spawner_class: str, python: str | None = None
) -> None:
    """Sets the common configuration on a traitlets Config `c` (jupyterhub_config.py's `c`), after
    the caller has set where the hub listens (`hub_bind_url`: the chart, or the local hub)."""
    configure_login(c, settings)
    c.JupyterHub.spawner_class = spawner_class
    c.CourseSpawner.hub_settings = settings
    # Error pages that show why a launch link was refused (see templates/404.html).
    templates = [p for p in c.JupyterHub.get("template_paths", []) if p != TEMPLATES]
    c.JupyterHub.template_paths = [TEMPLATES, *templates]

    configure_https(c, settings.public_url)

    culling = settings.culling
    hub_section = c.JupyterHub
    api_url = services_hub_api_url(
        hub_section.get("hub_bind_url"), hub_section.get("base_url", "/")
    )
    service = culler_service(culling, python, api_url) if culling.enabled else None
    role = culler_role() if culling.enabled else None
    c.JupyterHub.services = _replace_named(hub_section.get("services"), service, CULLER_SERVICE)
    roles = _replace_named(hub_section.get("load_roles"), role, CULLER_SERVICE)
    c.JupyterHub.load_roles = _replace_named(roles, learner_role(), LEARNER_ROLE)
    # Activity from the proxy and from servers reaches the hub often enough for short timeouts.
    interval = max(1, min(300, culling.idle_timeout // 3))
    c.JupyterHub.last_activity_interval = interval
