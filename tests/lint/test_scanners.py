"""Security scanners on what the project ships, each from the lockfile (its own resolve,
3rdparty/python/scanners.txt), run as the binaries Pants packages (tools:checkov, tools:zizmor):

- zizmor (static analysis of GitHub Actions) on `.github/workflows/`, offline: no finding at all;
- checkov on prod's Kubernetes objects as infra deploys them (the zero-to-jupyterhub release
  rendered by helm with prod's values, in prod's namespace as Helm installs it, and the objects
  the Pulumi program adds beside it: the GPU pre-puller, the migration Job, the ServiceMonitor),
  on the project's Dockerfiles and on the workflows.

A checkov finding fails its test unless `tests/lint/accepted_findings.toml` accepts it, with its
reason; an accepted finding that no longer occurs fails too, so the file stays true. (The
monitoring charts are third-party and their reference copy cannot render whole here:
tests/infra/test_chart_monitoring.py; they are not scanned.) Both scanners run offline.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import tomllib
import yaml

from catalog import find_repo_root, load_catalog
from hub.launch import KeptWorkSettings
from infra import monitoring
from infra.images import course_images, hub_image
from infra.kept_work import kept_work_objects
from infra.prepull import gpu_prepuller
from infra.stack_config import load_stack_config
from infra.values import RELEASE_NAME, helm_values, migration_job
from tests.infra.chart import Z2JH, chart, template
from tests.infra.support import HUB_IMAGE, image_map_for

ROOT = find_repo_root()
#: The files scanned, and the scanners' binaries, are the test's inputs in its sandbox (its
#: working directory), not the checkout's.
HERE = Path(".")
ACCEPTED = HERE / "tests" / "lint" / "accepted_findings.toml"
WORKFLOWS = HERE / ".github" / "workflows"
#: Kinds Helm does not put in the release's namespace.
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "PriorityClass", "StorageClass"}
DB_HOST = "hub-db.c0ffee.us-east-1.rds.amazonaws.com"

Finding = tuple[str, str]  # (check id, resource)


def packaged(name: str) -> str:
    """A scanner's binary, as `runtime_package_dependencies` put it in the test's sandbox."""
    path = (HERE / "tools" / f"{name}.pex").resolve()
    if not path.is_file():
        pytest.fail(f"no {path}: run the tests with `./pants test` (tools:{name} is packaged)")
    return str(path)


def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    # Both run offline (zizmor --offline, checkov --skip-download: checked with no network).
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        command, capture_output=True, text=True, check=False, env=env, timeout=900, **kwargs
    )


def checkov(directory: Path, framework: str, *extra: str) -> set[Finding]:
    """checkov's failed checks on `directory` (`--skip-download`: nothing fetched)."""
    result = run(
        [
            packaged("checkov"),
            "--directory",
            str(directory),
            "--framework",
            framework,
            "--output",
            "json",
            "--quiet",
            "--compact",
            "--skip-download",
            *extra,
        ]
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    reports = json.loads(result.stdout) if result.stdout.strip() else []
    if isinstance(reports, dict):
        reports = [reports]
    found: set[Finding] = set()
    for report in reports:
        assert report["summary"]["parsing_errors"] == 0, report["summary"]
        for failed in report["results"]["failed_checks"]:
            found.add((failed["check_id"], failed["resource"]))
    return found


def accepted(scanner_framework: str) -> list[dict[str, Any]]:
    entries = tomllib.loads(ACCEPTED.read_text(encoding="utf-8")).get(scanner_framework, [])
    for entry in entries:
        assert set(entry) == {"check", "resources", "reason"}, entry
        assert len(entry["reason"].split()) >= 5, f"{entry['check']}: say why it is accepted"
    return list(entries)


def unaccepted(found: Iterable[Finding], entries: list[dict[str, Any]]) -> set[Finding]:
    return {
        (check, resource)
        for check, resource in found
        if not any(
            entry["check"] == check
            and any(fnmatch.fnmatchcase(resource, p) for p in entry["resources"])
            for entry in entries
        )
    }


def stale(found: Iterable[Finding], entries: list[dict[str, Any]]) -> list[str]:
    """Accepted patterns that match no finding any more."""
    found = list(found)
    return [
        f"{entry['check']} {pattern}"
        for entry in entries
        for pattern in entry["resources"]
        if not any(c == entry["check"] and fnmatch.fnmatchcase(r, pattern) for c, r in found)
    ]


def assert_only_accepted(found: set[Finding], framework: str) -> None:
    entries = accepted(framework)
    new = unaccepted(found, entries)
    assert not new, "fix these, or accept each in tests/lint/accepted_findings.toml with its " + (
        "reason:\n" + "\n".join(f"  {c} {r}" for c, r in sorted(new))
    )
    assert not stale(found, entries), f"accepted but no longer found: {stale(found, entries)}"


# --- Kubernetes ---------------------------------------------------------------------------


def prod_objects(tmp_path: Path) -> list[dict[str, Any]]:
    """What prod's deploy sends to the cluster in the hub's namespace."""
    stack = load_stack_config(ROOT / "infra", "prod")
    catalog = load_catalog(ROOT)
    # Deployed by digest (infra/program.py pins each tag to what ECR answers).
    digest = "sha256:" + "d" * 64
    images = {
        k: r.pinned(digest) for k, r in course_images(catalog, image_map_for(catalog)).items()
    }
    hub = hub_image(HUB_IMAGE).pinned(digest)
    values = helm_values(stack, catalog, images, hub, DB_HOST)
    objects = template(chart(Z2JH), RELEASE_NAME, stack.namespace, values, tmp_path)
    for obj in objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"].setdefault("namespace", stack.namespace)  # as Helm installs it
    beside = [
        gpu_prepuller(stack, catalog, images),
        migration_job(stack, hub, DB_HOST),
        monitoring.hub_service_monitor(stack),
        # Kept work's retention job, as prod would run it with keepWork on.
        *kept_work_objects(replace(stack, keep_work=KeptWorkSettings(days=30)), hub),
    ]
    return objects + [o for o in beside if o]


def test_checkov_on_prods_kubernetes_objects(tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "prod.yaml").write_text(yaml.safe_dump_all(prod_objects(tmp_path)))
    found = checkov(manifests, "kubernetes")
    assert found, "checkov found nothing at all: did it read the objects?"
    assert_only_accepted(found, "kubernetes")


def test_checkov_finds_what_is_not_accepted(tmp_path: Path) -> None:
    """The gate can fail: a privileged pod is a finding nobody accepted."""
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root", "namespace": "jupyterhub"},
        "spec": {
            "containers": [{"name": "c", "image": "x:1", "securityContext": {"privileged": True}}]
        },
    }
    (manifests / "pod.yaml").write_text(yaml.safe_dump(pod))
    new = unaccepted(checkov(manifests, "kubernetes"), accepted("kubernetes"))
    assert ("CKV_K8S_16", "Pod.jupyterhub.root") in new  # privileged containers


# --- Dockerfiles and workflows ------------------------------------------------------------


def test_checkov_on_the_dockerfiles() -> None:
    """The Dockerfiles of the images that ship (hub/, images/); tests' fixtures are not."""
    found = checkov(HERE, "dockerfile", "--skip-path", "tests", "--skip-path", "dist")
    assert {r for _, r in found}, "checkov found nothing at all: did it read the Dockerfiles?"
    assert_only_accepted(found, "dockerfile")


def test_checkov_on_the_workflows() -> None:
    assert_only_accepted(checkov(WORKFLOWS, "github_actions"), "github_actions")


def zizmor(*paths: Path) -> subprocess.CompletedProcess[str]:
    return run([packaged("zizmor"), "--offline", "--format", "plain", *map(str, paths)])


def test_zizmor_finds_nothing_in_the_workflows() -> None:
    result = zizmor(WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


def test_zizmor_rejects_an_unpinned_action(tmp_path: Path) -> None:
    workflow = tmp_path / ".github" / "workflows" / "w.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(
        "on: push\npermissions: {}\njobs:\n  j:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/checkout@v7\n        with:\n          persist-credentials: false\n"
    )
    result = zizmor(workflow)
    assert result.returncode != 0
    assert "unpinned-uses" in result.stdout
