"""KubeSpawner without a cluster: its real `get_pod_manifest()`, for the hub and infra tests.

A kubeconfig naming an unreachable server satisfies KubeSpawner's client set-up (`_mock=True`
keeps it from starting reflectors); nothing is ever sent to it.
"""

from __future__ import annotations

import asyncio
from typing import Any
from unittest.mock import Mock

import kubernetes_validate
import pytest
from jupyterhub.objects import Hub, Server
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.config import kube_config as kube_config_module
from traitlets.config import Config

from hub.spawner import CourseKubeSpawner

#: The Kubernetes API the pods are validated against (EKS's version).
KUBERNETES_VERSION = "1.31"

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: unused}}]
contexts: [{name: none, context: {cluster: none, user: none, namespace: jhub}}]
current-context: none
"""


class MockUser(Mock):
    """The parts of jupyterhub.user.User that KubeSpawner reads (as in kubespawner's tests)."""

    name = "4b2e1c3a-learner"
    id = 7
    server = Server()

    @property
    def escaped_name(self) -> str:
        return self.name

    @property
    def url(self) -> str:
        return self.server.url


def use_unreachable_kubeconfig(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path_factory.getbasetemp() / "kubeconfig"
    path.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))
    # kubernetes_asyncio reads KUBECONFIG when imported.
    monkeypatch.setattr(kube_config_module, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


def validate(pod: dict[str, Any]) -> None:
    """The pod against the Kubernetes API schema, strictly (unknown fields fail)."""
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def manifests(config: Config, *option_sets: dict[str, Any]) -> list[dict[str, Any]]:
    """Pod manifests of successive spawns of one spawner object (as a user re-launching)."""

    async def run() -> list[dict[str, Any]]:
        spawner = CourseKubeSpawner(
            hub=Hub(base_url="/hub/"), user=MockUser(), config=config, _mock=True
        )
        result = []
        for options in option_sets:
            spawner.user_options = options
            spawner.prepare_launch()
            manifest = await spawner.get_pod_manifest()
            result.append(ApiClient().sanitize_for_serialization(manifest))
        return result

    return asyncio.run(run())
