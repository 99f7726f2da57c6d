"""The zero-to-jupyterhub Helm values = f(stack settings, catalog, course images, hub image).

Pure: no I/O, no Pulumi. `infra/program.py` feeds it the database endpoint once RDS knows it;
`infra/deploy.py --render` feeds it a placeholder. The values follow the hub's contract:

- `hub.extraConfig.courses` runs `hub.z2jh.configure(c)` (spawner, launch plans), the hub reads
  `custom` with `hub.settings.parse_custom`; infra writes it with the hub's own
  `settings_to_custom` from `hub_settings(...)`, so both sides share one contract;
- the database password is never in the values: `hub.db.url` has no password and the hub pod
  gets `PGPASSWORD` (read by libpq) from the Kubernetes Secret `hub-db`; likewise the SSO client
  secret, `OAUTH_CLIENT_SECRET` (read by oauthenticator) from the Secret `hub-sso`;
- GPU tolerations are in `custom.launch.gpu`, applied per GPU course by the spawner, never in
  `singleuser.extraTolerations`;
- the release never migrates the database (`hub.db.upgrade: false`): a Helm release that fails
  is rolled back, and a hub rolled back after a migration refuses the newer schema. The
  migration is a step of its own, after a snapshot (`migration_job`, run by infra/program.py);
- no pod of the release reaches the cloud metadata server (the node role's credentials): the
  hub's, the proxy's and learners' NetworkPolicies leave 169.254.169.254 out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from catalog import Catalog
from hub.launch import GpuSettings, LaunchSettings
from hub.settings import HubSettings, settings_to_custom
from hub.z2jh import sqlalchemy_url
from infra import monitoring
from infra.images import ImageRef
from infra.monitoring import METRICS_SERVICE, prometheus_ingress_rule
from infra.prepull import chart_prepuller
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
DB_PASSWORD_VERSION_PLACEHOLDER = "<secret version>"
DB_PASSWORD_ANNOTATION = "ol-course-platform/db-password-version"
SSO_SECRET_NAME = "hub-sso"
SSO_SECRET_KEY = "client-secret"
#: Amazon RDS's CA bundle, added to the hub image by hub/Dockerfile.
RDS_CA_BUNDLE = "/etc/ssl/certs/rds-global-bundle.pem"
HEALTH_CHECK_ANNOTATIONS = {"alb.ingress.kubernetes.io/healthcheck-path": "/hub/health"}
ALB = "alb"
#: The hub image's user, as the chart runs it (hub.containerSecurityContext.runAsUser).
HUB_UID = 1000
#: The chart's user scheduler (a kube-scheduler of its own, two replicas).
USER_SCHEDULER_RESOURCES = {
    "requests": {"cpu": "50m", "memory": "256Mi"},
    "limits": {"memory": "512Mi"},
}
#: The hub's database migration (`jupyterhub upgrade-db`), a Job per hub image.
MIGRATION_JOB_PREFIX = "hub-db-migrate"
NO_METADATA_SERVER = {"cloudMetadataServer": False}
#: Learner pods: never root (the images' user is jovyan, 1000:100), no capabilities, the
#: container runtime's default seccomp profile. KubeSpawner adds them to every pod it makes.
LEARNER_UID = 1000
LEARNER_GID = 100
LEARNER_POD_SECURITY = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
LEARNER_CONTAINER_SECURITY = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def database_url(host: str) -> str:
    """The hub's SQLAlchemy URL: no password (libpq reads PGPASSWORD from the environment), TLS
    with the server's certificate checked against the RDS CA bundle in the hub image."""
    return (
        f"postgresql://{DB_USER}@{host}:{DB_PORT}/{DB_NAME}"
        f"?sslmode=verify-full&sslrootcert={RDS_CA_BUNDLE}"
    )


def gpu_launch(stack: StackConfig) -> GpuSettings:
    gpu = stack.gpu
    return GpuSettings(
        count=gpu.count,
        resource_name=gpu.resource_name,
        node_selector={gpu.node_label_key: gpu.node_label_value},
        tolerations=(gpu.taint.toleration(),),
    )


def hub_settings(
    stack: StackConfig,
    catalog: Catalog,
    images: Mapping[str, ImageRef],
    preview_tags: Mapping[str, Sequence[str]] | None = None,
) -> HubSettings:
    """What the hub runs with, as the hub's own dataclasses (written with `settings_to_custom`)."""
    return HubSettings(
        catalog=catalog,
        image_map={key: str(images[key]) for key in sorted(catalog.image_keys)},
        launch=LaunchSettings(
            allow_preview_tags=stack.allow_preview_tags,
            preview_tags=(
                {slug: tuple(tags) for slug, tags in sorted((preview_tags or {}).items())}
                if stack.allow_preview_tags
                else {}
            ),
            gpu=gpu_launch(stack),
            memory_request_is_limit=stack.learner_memory_request == "limit",
            kept_work=stack.keep_work,
        ),
        culling=stack.culling,
        sso=stack.sso,
        limits=stack.limits,
        public_url=f"{stack.url}/",
    )


def _default_user_image(catalog: Catalog, images: Mapping[str, ImageRef]) -> ImageRef | None:
    """The chart pre-pulls `singleuser.image`: make it an image CPU servers run (never a CUDA
    one), not the chart's sample."""
    cpu = sorted(course.image_key(gpu=False) for course in catalog)
    return images[cpu[0]] if cpu else None


def _plain(data: Any) -> Any:
    """Tuples to lists and so on: data as YAML, JSON and Pulumi all write it."""
    return json.loads(json.dumps(data))


def _singleuser(
    stack: StackConfig, catalog: Catalog, images: Mapping[str, ImageRef]
) -> dict[str, Any]:
    singleuser: dict[str, Any] = {
        "storage": {"type": "none"},
        "uid": LEARNER_UID,
        "fsGid": LEARNER_GID,
        "allowPrivilegeEscalation": False,
        # The NetworkPolicy keeps learners off the cloud metadata server; the chart's iptables
        # alternative is an init container running as root with NET_ADMIN, which a pod that must
        # not run as root cannot have.
        "cloudMetadata": {"blockWithIptables": False},
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
            "tag": default_image.helm_tag,
            "pullPolicy": "IfNotPresent",
        }
    return singleuser


def learner_hosts(stack: StackConfig) -> str:
    """Where learners' servers are: `<user>.<domain>` (JupyterHub's `subdomain_host`), so that no
    page a learner serves runs on the hub's origin. Needs a wildcard DNS name and certificate."""
    return f"*.{stack.domain}"


def alb_annotations(stack: StackConfig) -> dict[str, str]:
    """The AWS Load Balancer Controller's settings: TLS 1.2+ only, the stack's certificate, and an
    idle timeout longer than a quiet kernel's websocket (the ALB's default closes it at 60 s)."""
    settings = stack.ingress
    annotations = {
        "alb.ingress.kubernetes.io/ssl-policy": settings.ssl_policy,
        "alb.ingress.kubernetes.io/load-balancer-attributes": (
            f"idle_timeout.timeout_seconds={settings.idle_timeout_seconds}"
        ),
    }
    if settings.certificate_arn:
        annotations["alb.ingress.kubernetes.io/certificate-arn"] = settings.certificate_arn
    return annotations


def _ingress(stack: StackConfig) -> dict[str, Any]:
    hosts = [stack.domain, learner_hosts(stack)]
    ingress: dict[str, Any] = {"enabled": True, "hosts": hosts, "pathType": "Prefix"}
    if stack.ingress.class_name:
        ingress["ingressClassName"] = stack.ingress.class_name
    alb = alb_annotations(stack) if stack.ingress.class_name == ALB else {}
    # The load balancer's health check: `/` answers with a redirect, /hub/health with 200.
    ingress["annotations"] = {**HEALTH_CHECK_ANNOTATIONS, **alb, **stack.ingress.annotations}
    if stack.ingress.tls_secret_name:
        ingress["tls"] = [{"hosts": hosts, "secretName": stack.ingress.tls_secret_name}]
    return ingress


def helm_values(
    stack: StackConfig,
    catalog: Catalog,
    images: Mapping[str, ImageRef],
    hub_image: ImageRef,
    db_host: str,
    *,
    preview_tags: Mapping[str, Sequence[str]] | None = None,
    db_password_version: str = DB_PASSWORD_VERSION_PLACEHOLDER,
) -> dict[str, Any]:
    """The values of the jupyterhub chart release for one stack.

    `preview_tags`: per course, the published tags `tag=` may open (used where the stack allows
    previews); `db_password_version`: the database password's version, so that a new password
    restarts the hub.
    """
    values: dict[str, Any] = {
        "hub": {
            "image": {
                "name": hub_image.name,
                "tag": hub_image.helm_tag,
                "pullPolicy": "IfNotPresent",
            },
            "config": {
                # hub.z2jh sets the same (hub/config.py: configure_login); named here for review.
                "JupyterHub": {
                    "authenticator_class": "hub.sso.CourseSsoAuthenticator",
                    # Learners' servers on `<user>.<domain>` (the chart then starts the proxy
                    # with --host-routing), and the hub's cookies `__Host-`: a learner's server
                    # can neither run script on the hub's origin nor set the hub's cookies.
                    "subdomain_host": stack.url,
                    "cookie_host_prefix_enabled": True,
                },
                "Authenticator": {"allow_all": True},
                # Behind the load balancer the hub sees plain HTTP: name the public callback.
                "CourseSsoAuthenticator": {"oauth_callback_url": f"{stack.url}/hub/oauth_callback"},
                "KubeSpawner": {
                    "pod_security_context": LEARNER_POD_SECURITY,
                    "container_security_context": LEARNER_CONTAINER_SECURITY,
                },
            },
            "extraConfig": {"courses": HUB_EXTRA_CONFIG},
            # Migrations are a step of their own, before the release (`migration_job`).
            "db": {"type": "postgres", "url": database_url(db_host), "upgrade": False},
            "extraEnv": {
                "PGPASSWORD": {
                    "valueFrom": {"secretKeyRef": {"name": DB_SECRET_NAME, "key": DB_SECRET_KEY}}
                },
                "OAUTH_CLIENT_SECRET": {
                    "valueFrom": {"secretKeyRef": {"name": SSO_SECRET_NAME, "key": SSO_SECRET_KEY}}
                },
            },
            # A new value restarts the hub pod, so it reads a rotated password.
            "annotations": {DB_PASSWORD_ANNOTATION: db_password_version},
            # Sized from the capacity benchmark (docs/ARCHITECTURE.md, "Launch capacity").
            "concurrentSpawnLimit": stack.hub.concurrent_spawn_limit,
            "resources": {
                "requests": {"cpu": stack.hub.cpu_request, "memory": stack.hub.memory_request},
                "limits": {"memory": stack.hub.memory_limit},
            },
            # /hub/metrics answers only with a token of a role that has read:metrics.
            "authenticatePrometheus": True,
            # The chart generates the service's token and keeps it in its Secret, whence
            # Prometheus reads it (infra/monitoring.py).
            "services": {METRICS_SERVICE: {}},
            "loadRoles": {
                METRICS_SERVICE: {"scopes": ["read:metrics"], "services": [METRICS_SERVICE]}
            },
            "networkPolicy": {
                "enabled": True,
                "ingress": [prometheus_ingress_rule()],
                "egressAllowRules": dict(NO_METADATA_SERVER),
            },
        },
        "proxy": {
            "service": {"type": "ClusterIP"},
            "https": {"enabled": False},
            "chp": {
                "resources": {
                    "requests": {
                        "cpu": stack.proxy.cpu_request,
                        "memory": stack.proxy.memory_request,
                    },
                    "limits": {"memory": stack.proxy.memory_limit},
                },
                "networkPolicy": {"egressAllowRules": dict(NO_METADATA_SERVER)},
            },
        },
        "scheduling": _scheduling(stack),
        "ingress": _ingress(stack),
        "singleuser": _singleuser(stack, catalog, images),
        "prePuller": chart_prepuller(stack, catalog, images),
        # Culling is written once, in `custom.culling`: the hub runs its own culler service
        # (hub/config.py) in place of the chart's.
        "cull": {"enabled": False},
        "custom": _plain(settings_to_custom(hub_settings(stack, catalog, images, preview_tags))),
    }
    return values


#: Pod Security Admission: the hub's namespace admits the baseline (no host access, no
#: privilege) and reports what falls short of `restricted`; monitoring's node exporters need the
#: host, so that namespace says `privileged` outright. The AWS Load Balancer Controller adds its
#: readiness gate to the hub's pods, so a rollout waits for the load balancer to route to them.
PSA = "pod-security.kubernetes.io"
READINESS_GATE_LABEL = "elbv2.k8s.aws/pod-readiness-gate-inject"


def namespace_labels(monitoring: bool) -> dict[str, str]:
    if monitoring:
        return {f"{PSA}/enforce": "privileged"}
    return {
        f"{PSA}/enforce": "baseline",
        f"{PSA}/warn": "restricted",
        f"{PSA}/audit": "restricted",
        READINESS_GATE_LABEL: "enabled",
    }


def _scheduling(stack: StackConfig) -> dict[str, Any]:
    """Pod priority on (the chart's classes: placeholders and image pullers yield to the hub,
    the proxy and learners), and where core and learner pods go."""
    match = {"nodeAffinity": {"matchNodePurpose": stack.scheduling.match_node_purpose}}
    return {
        "podPriority": {"enabled": True},
        "corePods": match,
        "userPods": match,
        "userScheduler": {"resources": USER_SCHEDULER_RESOURCES},
    }


def migration_job_name(hub: ImageRef) -> str:
    """One Job per hub image: a new image migrates once; the same image never again."""
    # The tag names the image's inputs; the digest (when pinned) is the same image's.
    digest = hashlib.sha256(f"{hub.name}:{hub.tag}".encode()).hexdigest()[:12]
    return f"{MIGRATION_JOB_PREFIX}-{digest}"


def hub_image_pod_security() -> dict[str, Any]:
    """The pod security context of the hub image's Jobs (migration, kept work's retention)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": HUB_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container_security() -> dict[str, Any]:
    """Their containers': no privilege escalation, a read-only root, no capabilities."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def migration_job(stack: StackConfig, hub: ImageRef, db_host: str) -> dict[str, Any]:
    """`jupyterhub upgrade-db` of the hub image against the stack's database, as the hub pod
    would reach it (no password in the URL: PGPASSWORD from the Secret). infra/program.py runs
    it after a snapshot of the database and before the release (which never migrates)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": migration_job_name(hub),
            "namespace": stack.namespace,
            "labels": {"app.kubernetes.io/component": MIGRATION_JOB_PREFIX},
        },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/component": MIGRATION_JOB_PREFIX}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": hub_image_pod_security(),
                    "containers": [
                        {
                            "name": "upgrade-db",
                            "image": str(hub),
                            "command": [
                                "jupyterhub",
                                "upgrade-db",
                                f"--db={sqlalchemy_url(database_url(db_host))}",
                            ],
                            # No config file there: the database is the flag's alone.
                            "workingDir": "/tmp",
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                            "env": [
                                {
                                    "name": "PGPASSWORD",
                                    "valueFrom": {
                                        "secretKeyRef": {
                                            "name": DB_SECRET_NAME,
                                            "key": DB_SECRET_KEY,
                                        }
                                    },
                                }
                            ],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "256Mi"},
                                "limits": {"memory": "512Mi"},
                            },
                            "securityContext": restricted_container_security(),
                        }
                    ],
                    # alembic's ini is written to a temporary file
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


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
        "ssoSecret": {"name": SSO_SECRET_NAME, "key": SSO_SECRET_KEY},
        "monitoring": [
            {"release": release, "namespace": monitoring.NAMESPACE, "chart": chart, "values": file}
            for release, chart, file in (
                (
                    monitoring.PROMETHEUS_RELEASE,
                    monitoring.PROMETHEUS_CHART,
                    "monitoring-values.yaml",
                ),
                (monitoring.DCGM_RELEASE, monitoring.DCGM_CHART, "dcgm-exporter-values.yaml"),
            )
        ],
    }
