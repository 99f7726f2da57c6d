"""The zero-to-jupyterhub Helm values = f(stack settings, catalog, course images, hub image).

Pure: no I/O, no Pulumi. `infra/program.py` feeds it the database endpoint once RDS knows it;
`infra/deploy.py --render` feeds it a placeholder. The values follow the hub's contract:

- `hub.extraConfig.courses` runs `hub.z2jh.configure(c)` (spawner, launch plans), the hub reads
  `custom.catalog`, `custom.imageMap` and `custom.launch`;
- the database password is never in the values: `hub.db.url` has no password and the hub pod
  gets `PGPASSWORD` (read by libpq) from the Kubernetes Secret `hub-db`;
- GPU tolerations are in `custom.launch.gpu`, applied per GPU course by the spawner, never in
  `singleuser.extraTolerations`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from catalog import Catalog, catalog_to_list
from infra.images import ImageRef
from infra.stack_config import StackConfig

CHART_NAME = "jupyterhub"
CHART_VERSION = "4.4.0"
CHART_REPOSITORY = "https://hub.jupyter.org/helm-chart/"
RELEASE_NAME = "jupyterhub"

HUB_EXTRA_CONFIG = "from hub.z2jh import configure; configure(c)"
DB_USER = "jupyterhub"
DB_NAME = "jupyterhub"
DB_PORT = 5432
DB_SECRET_NAME = "hub-db"
DB_SECRET_KEY = "password"
DB_HOST_PLACEHOLDER = "<rds-endpoint>"
CLOUD_METADATA_IP = "169.254.169.254"
# z2jh names a pre-puller container `image-pull-<key>`: a container name is at most 63 characters.
_PREPULL_KEY_MAX = 63 - len("image-pull-")


def database_url(host: str) -> str:
    """The hub's SQLAlchemy URL: no password (libpq reads PGPASSWORD from the environment)."""
    return f"postgresql://{DB_USER}@{host}:{DB_PORT}/{DB_NAME}"


def prepull_key(slug: str) -> str:
    """A pre-puller entry name for a course: the slug, shortened with a hash when too long."""
    if len(slug) <= _PREPULL_KEY_MAX:
        return slug
    digest = hashlib.sha256(slug.encode()).hexdigest()[:8]
    return f"{slug[: _PREPULL_KEY_MAX - 9].rstrip('-')}-{digest}"


def gpu_launch(stack: StackConfig) -> dict[str, Any]:
    gpu = stack.gpu
    return {
        "count": gpu.count,
        "resourceName": gpu.resource_name,
        "nodeSelector": {gpu.node_label_key: gpu.node_label_value},
        "tolerations": [gpu.taint.toleration()],
    }


def _default_user_image(catalog: Catalog, images: Mapping[str, ImageRef]) -> ImageRef | None:
    """The chart pre-pulls `singleuser.image`: make it a course image, not the chart's sample."""
    cpu_first = sorted(catalog, key=lambda course: (course.gpu, course.slug))
    return images[cpu_first[0].slug] if cpu_first else None


def _plain(data: Any) -> Any:
    """Tuples to lists and so on: data as YAML, JSON and Pulumi all write it."""
    return json.loads(json.dumps(data))


def helm_values(
    stack: StackConfig,
    catalog: Catalog,
    images: Mapping[str, ImageRef],
    hub_image: ImageRef,
    db_host: str,
) -> dict[str, Any]:
    """The values of the jupyterhub chart release for one stack."""
    courses = sorted(catalog, key=lambda course: course.slug)
    singleuser: dict[str, Any] = {
        "storage": {"type": "none"},
        "allowPrivilegeEscalation": False,
        "cloudMetadata": {"blockWithIptables": True, "ip": CLOUD_METADATA_IP},
        "networkPolicy": {
            "enabled": True,
            "egressAllowRules": {"cloudMetadataServer": False, "privateIPs": False},
        },
        # GPU tolerations go on GPU courses' pods only (custom.launch.gpu), never on every pod.
        "extraTolerations": [],
        "startTimeout": stack.start_timeout,
    }
    default_image = _default_user_image(catalog, images)
    if default_image is not None:
        singleuser["image"] = {
            "name": default_image.name,
            "tag": default_image.tag,
            "pullPolicy": "IfNotPresent",
        }
    ingress: dict[str, Any] = {"enabled": True, "hosts": [stack.domain], "pathType": "Prefix"}
    if stack.ingress.class_name:
        ingress["ingressClassName"] = stack.ingress.class_name
    if stack.ingress.annotations:
        ingress["annotations"] = dict(stack.ingress.annotations)
    if stack.ingress.tls_secret_name:
        ingress["tls"] = [{"hosts": [stack.domain], "secretName": stack.ingress.tls_secret_name}]
    values: dict[str, Any] = {
        "hub": {
            "image": {"name": hub_image.name, "tag": hub_image.tag, "pullPolicy": "IfNotPresent"},
            "config": {
                "JupyterHub": {"authenticator_class": "tmp"},
                "Authenticator": {"allow_all": True},
            },
            "extraConfig": {"courses": HUB_EXTRA_CONFIG},
            "db": {"type": "postgres", "url": database_url(db_host), "upgrade": True},
            "extraEnv": {
                "PGPASSWORD": {
                    "valueFrom": {"secretKeyRef": {"name": DB_SECRET_NAME, "key": DB_SECRET_KEY}}
                }
            },
            "resources": {
                "requests": {"cpu": stack.hub.cpu_request, "memory": stack.hub.memory_request},
                "limits": {"memory": stack.hub.memory_limit},
            },
            "networkPolicy": {"enabled": True},
        },
        "proxy": {"service": {"type": "ClusterIP"}, "https": {"enabled": False}},
        "ingress": ingress,
        "singleuser": singleuser,
        "prePuller": {
            "extraImages": {
                prepull_key(course.slug): {
                    "name": images[course.slug].name,
                    "tag": images[course.slug].tag,
                    "pullPolicy": "IfNotPresent",
                }
                for course in courses
            },
            # Pre-pulling pods (not learners' pods) also run on GPU nodes, so GPU courses start
            # from a pulled image there too.
            "extraTolerations": [stack.gpu.taint.toleration()],
        },
        "cull": {
            "enabled": True,
            "users": True,
            "every": stack.cull.every,
            "timeout": stack.cull.timeout,
            "maxAge": stack.cull.max_age,
        },
        "custom": {
            "catalog": _plain(catalog_to_list(catalog)),
            "imageMap": {course.slug: str(images[course.slug]) for course in courses},
            "launch": {
                "allowPreviewTags": stack.allow_preview_tags,
                "previewTags": {},
                "gpu": gpu_launch(stack),
            },
        },
    }
    return values


def hub_configuration(values: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the values the hub itself reads: its config, extra config, database, custom."""
    hub = values["hub"]
    return {
        "hub": {key: hub[key] for key in ("image", "config", "extraConfig", "db", "extraEnv")},
        "custom": values["custom"],
    }


def release_settings(stack: StackConfig) -> dict[str, Any]:
    """What the Helm release is, besides its values (for review next to the values)."""
    return {
        "stack": stack.name,
        "release": RELEASE_NAME,
        "namespace": stack.namespace,
        "chart": {"name": CHART_NAME, "version": CHART_VERSION, "repository": CHART_REPOSITORY},
        "url": stack.url,
        "databaseSecret": {"name": DB_SECRET_NAME, "key": DB_SECRET_KEY},
    }
