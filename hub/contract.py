"""What the hub, infra, the dashboards and the tools agree on, written once: the launch link's
format and the names they share. Pure; no JupyterHub.

A launch link is `<hub>/tmplogin?course=<slug>[&notebook=<path>][&needs_gpu=...][&tag=...]`,
percent-encoded as UTF-8 with the path's `/` kept; `hub.launch.query_arguments` reads it back.
The hub's error pages link to `<hub>/hub/spawn?<the same query>`. (The login handlers' redirect
to `/hub/spawn?opt-course=...` is JupyterHub's own form of a spawn's options, not a link anyone
publishes: `hub.auth.spawn_arguments` writes it.)
"""

from __future__ import annotations

from urllib.parse import quote

#: The path of every published launch link (JupyterHub's login handler, `hub.auth`/`hub.sso`).
LAUNCH_PATH = "/tmplogin"
#: The pod label (Kubernetes) and container label (Docker) with the course's slug; the
#: dashboards join on it (kube-state-metrics exports it as `label_course`).
COURSE_LABEL = "course"
#: The label of a kept-work volume (PersistentVolumeClaim, Docker volume) with its person's key
#: (hub.sso.identity_key: not the person's name); retention and a person's own deletion use it.
PERSON_LABEL = "person"
#: The ResourceQuota on kept work's storage in a stack that caps it (infra/kept_work.py); the
#: dashboards and the alert read its use.
KEPT_WORK_QUOTA = "kept-work"
#: The environment variable that tells a learner's server its course.
COURSE_ENV = "OL_COURSE"
#: The learner's container in a `jupyter-<user>` pod (KubeSpawner's name).
NOTEBOOK_CONTAINER = "notebook"
#: The namespace the hub, the proxy and learner pods run in, unless a stack names another.
NAMESPACE = "jupyterhub"
#: The hub's container, its Service and the Prometheus job that scrapes its /hub/metrics.
HUB_JOB = "hub"
#: The port of the hub's API and metrics (JupyterHub's default hub port; the hub Service's).
HUB_PORT = 8081
#: The proxy's container in the proxy pod (configurable-http-proxy).
PROXY_CONTAINER = "chp"


def launch_query(course: str, notebook: str | None = None, **extra: str) -> str:
    """`course=<slug>[&notebook=<path>][&<extra>]`, each value percent-encoded."""
    parts = [f"course={quote(course, safe='')}"]
    if notebook is not None:
        parts.append(f"notebook={quote(notebook, safe='/')}")
    parts.extend(f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in extra.items())
    return "&".join(parts)


def launch_link(hub_url: str, course: str, notebook: str | None = None, **extra: str) -> str:
    """The published launch link of `course` (and `notebook`) on the hub at `hub_url`."""
    return f"{hub_url.rstrip('/')}{LAUNCH_PATH}?{launch_query(course, notebook, **extra)}"
