"""The real Helm charts, rendered by the real helm, and the z2jh chart's own hub configuration.

- `helm()`: the helm binary that `tools:helm` extracts from the package index (tools/helm.py);
  the tests that use it depend on that target, so it is in their sandbox.
- `chart(name)`: a chart's source in `../shared/reference/` (z2jh 4.4.0, kube-prometheus-stack
  88.5.3, dcgm-exporter 4.8.2).
- `template(...)`: `helm template` of a chart with our values -> the Kubernetes objects.
- `run_hub_config(...)`: runs the chart's `files/hub/jupyterhub_config.py` and `z2jh.py` on the
  objects helm rendered, as the hub pod would: the rendered Secret `hub` and ConfigMap `hub` as
  the files mounted under /usr/local/etc/jupyterhub/ (here a temporary folder), the hub
  container's environment, and Kubernetes' `<SERVICE>_SERVICE_HOST/PORT` variables
  (`write_hub_etc` and `hub_environment`: those files and that environment, for the hub image's
  own test, tests/hub/test_hub_image_runs.py).

Kubernetes itself cannot run here: objects are checked against the API schemas
(`kubernetes-validate`, strict) and the CRDs' own OpenAPI schemas.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from tornado.httpclient import AsyncHTTPClient
from traitlets.config import Config

from catalog import find_repo_root
from infra.values import CHART_VERSION
from tools.helm import helm_binary

KUBERNETES_VERSION = "1.31"
REFERENCE = find_repo_root().parent / "shared" / "reference"
#: The chart infra deploys (infra/values.py pins it), from ../shared/reference/.
Z2JH = f"z2jh-{CHART_VERSION}"
KUBE_PROMETHEUS_STACK = "kube-prometheus-stack-88.5.3"
DCGM_EXPORTER = "dcgm-exporter-4.8.2"
#: Where the hub pod mounts the chart's files, Secret and ConfigMap.
HUB_ETC = "/usr/local/etc/jupyterhub/"

Object = dict[str, Any]


def helm() -> Path:
    found = helm_binary()
    if found is None:
        pytest.skip("no helm in dist/tools/helm/: run the tests with `./pants test` (tools:helm)")
    return found


def chart(name: str) -> Path:
    path = REFERENCE / name / "chart"
    if name == Z2JH:
        path = path / "jupyterhub"
    if not (path / "Chart.yaml").is_file():
        pytest.skip(f"the chart source is not at {path} (../shared/reference/ beside the repo)")
    return path


def template(
    chart_dir: Path,
    release: str,
    namespace: str,
    values: Object,
    tmp_path: Path,
    api_versions: Iterable[str] = (),
) -> list[Object]:
    """`helm template` -> the rendered objects (`kind: List` items flattened)."""
    values_file = tmp_path / f"{release}-values.json"
    values_file.write_text(json.dumps(values))
    command = [
        str(helm()), "template", release, str(chart_dir), "--namespace", namespace,
        "--kube-version", f"v{KUBERNETES_VERSION}.0", "--values", str(values_file),
    ]  # fmt: skip
    for api in api_versions:
        command += ["--api-versions", api]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"helm template {chart_dir.name} failed:\n{result.stderr}"
    objects: list[Object] = []
    for document in yaml.safe_load_all(result.stdout):
        if not document:
            continue
        objects.extend(document["items"] if document.get("kind") == "List" else [document])
    return objects


def named(objects: list[Object], kind: str, name: str) -> Object:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def of_kind(objects: list[Object], kind: str) -> list[Object]:
    return [o for o in objects if o["kind"] == kind]


class _CrdLoader(yaml.SafeLoader):
    """YAML 1.1 reads a plain `=` as its "value" tag, which PyYAML cannot build: the CRDs list
    `=` among label-selector operators, so read it as the string it is."""


def _value_as_string(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    assert isinstance(node, yaml.ScalarNode)
    return str(loader.construct_scalar(node))


_CrdLoader.add_constructor("tag:yaml.org,2002:value", _value_as_string)


def crd_schemas(chart_dir: Path) -> dict[tuple[str, str], Object]:
    """(apiVersion, kind) -> the OpenAPI schema of every CRD in a `crds/` folder of the chart."""
    schemas = {}
    for path in sorted(chart_dir.rglob("crds/*.yaml")):
        for document in yaml.load_all(path.read_text(), Loader=_CrdLoader):  # noqa: S506
            if not document or document.get("kind") != "CustomResourceDefinition":
                continue
            spec = document["spec"]
            for version in spec["versions"]:
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def validate(objects: list[Object], crds: dict[tuple[str, str], Object] | None = None) -> None:
    """Every object against its schema: Kubernetes' own kinds strictly (unknown fields fail),
    custom resources against their CRD's schema."""
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"])
        where = f"{obj['kind']} {obj['metadata'].get('name')}"
        if crds is not None and key in crds:
            # Not jsonschema.validate: it checks the schema first, and the CRDs' patterns are Go
            # regular expressions that Python's `re` does not all accept.
            try:
                jsonschema.Draft7Validator(crds[key]).validate(obj)
            except jsonschema.ValidationError as e:
                raise AssertionError(f"{where}: {e.message}") from None
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            raise AssertionError(f"{where}: {e.message}") from None


def pod_specs(objects: list[Object]) -> Iterator[tuple[Object, Object]]:
    """(object, pod spec) of every workload (DaemonSet, Deployment, StatefulSet, Job)."""
    for obj in objects:
        if obj["kind"] in ("DaemonSet", "Deployment", "StatefulSet", "Job"):
            yield obj, obj["spec"]["template"]["spec"]


def containers(pod: Object) -> list[Object]:
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


# --- The chart's hub configuration -------------------------------------------------------------


def _mount(secret_or_map: Object, folder: Path) -> None:
    folder.mkdir(parents=True)
    for key, value in (secret_or_map.get("stringData") or {}).items():
        (folder / key).write_text(value)
    for key, value in (secret_or_map.get("data") or {}).items():
        text = value if secret_or_map["kind"] == "ConfigMap" else base64.b64decode(value).decode()
        (folder / key).write_text(text)


def hub_environment(objects: list[Object], namespace: str) -> dict[str, str]:
    """The hub container's environment as Kubernetes would give it."""
    env = {}
    for service in of_kind(objects, "Service"):
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"] = service["metadata"]["name"]
        env[f"{prefix}_SERVICE_PORT"] = str(service["spec"]["ports"][0]["port"])
    secrets = {
        s["metadata"]["name"]: {
            k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()
        }
        for s in of_kind(objects, "Secret")
    }
    hub = named(objects, "Deployment", "hub")["spec"]["template"]["spec"]["containers"][0]
    for item in hub.get("env", []):
        source = item.get("valueFrom", {})
        if "value" in item:
            env[item["name"]] = item["value"]
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[item["name"]] = namespace
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            # A Secret made outside the chart (hub-db, by Pulumi): any value stands in.
            env[item["name"]] = secrets.get(ref["name"], {}).get(ref["key"], f"<{ref['name']}>")
    return env


def write_hub_etc(objects: list[Object], etc: Path, at: Path | None = None) -> None:
    """The hub pod's /usr/local/etc/jupyterhub/ in the folder `etc`: the chart's
    jupyterhub_config.py and z2jh.py, the rendered Secret `hub` in secret/ and ConfigMap `hub` in
    config/. `at`: where the files will be read from, if not from /usr/local/etc/jupyterhub/."""
    _mount(named(objects, "Secret", "hub"), etc / "secret")
    _mount(named(objects, "ConfigMap", "hub"), etc / "config")
    files = chart(Z2JH) / "files" / "hub"
    for name in ("jupyterhub_config.py", "z2jh.py"):
        text = (files / name).read_text()
        (etc / name).write_text(text.replace(HUB_ETC, f"{at}/") if at else text)


def run_hub_config(
    objects: list[Object], namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Config:
    """The JupyterHub config that the hub pod's jupyterhub_config.py builds from these objects."""
    etc = tmp_path / "etc-jupyterhub"
    write_hub_etc(objects, etc, at=etc)
    for key, value in hub_environment(objects, namespace).items():
        monkeypatch.setenv(key, value)
    # The config puts its folder first on sys.path and imports `z2jh` from there; it also picks
    # tornado's curl client (pycurl is in the hub image, not here), a process-wide setting.
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "z2jh", raising=False)
    chosen: list[str] = []
    monkeypatch.setattr(AsyncHTTPClient, "configure", lambda impl, **_: chosen.append(impl))
    c = Config()
    path = etc / "jupyterhub_config.py"
    namespace_ = {"get_config": lambda: c, "__file__": str(path), "__name__": "__config__"}
    exec(compile(path.read_text(), str(path), "exec"), namespace_)
    assert chosen == ["tornado.curl_httpclient.CurlAsyncHTTPClient"], chosen
    return c
