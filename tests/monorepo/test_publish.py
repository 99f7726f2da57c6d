"""`./pants publish` pushes course images to the configured registry, after an ECR-style login.

Real parts: the Docker engine, Debian's `docker-registry` (the Distribution registry) on a loopback
port, and Pants itself on a copy of the repo. ECR cannot run here: moto's server mode stands in for
its `GetAuthorizationToken` API (the published contract boto3 speaks), on loopback too.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog import load_catalog
from tools import registry_login
from tools.repo_copy import run_pants


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("Debian's docker-registry is not installed (.ci/run installs it)")
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'data'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
    )
    process = subprocess.Popen([binary, "serve", str(config)], stderr=subprocess.DEVNULL)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/v2/")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def fake_ecr(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/moto-api/")
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def test_token_decoding_and_address_parsing() -> None:
    assert registry_login.ecr_region_and_account(
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    ) == (
        "eu-west-1",
        "123456789012",
    )
    assert registry_login.ecr_region_and_account("127.0.0.1:5000") == (None, None)
    token = {"authorizationData": [{"authorizationToken": "QVdTOnNlY3JldA=="}]}  # AWS:secret
    assert registry_login.credentials_from_token(token) == registry_login.Credentials(
        "AWS", "secret"
    )
    with pytest.raises(ValueError):
        registry_login.credentials_from_token({"authorizationData": []})


def test_login_and_publish_one_course(
    registry: str, fake_ecr: str, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))

    assert registry_login.main(["--registry", registry]) == 0
    auths = json.loads((docker_config / "config.json").read_text())["auths"]
    assert registry in auths, "docker login did not record the registry"

    course = next(iter(load_catalog(repo)))
    # Pants parses dict options as Python literals.
    registries = repr({"courses": {"address": registry, "default": True}})
    run_pants(
        repo,
        "publish",
        f"courses/{course.slug}#image",
        env={"PANTS_DOCKER_REGISTRIES": registries, "DOCKER_CONFIG": os.environ["DOCKER_CONFIG"]},
    )
    with urllib.request.urlopen(f"http://{registry}/v2/ol-course-notebooks/tags/list") as answer:
        tags = set(json.load(answer)["tags"])
    assert course.slug in tags
    assert any(
        tag.startswith(f"{course.slug}-") and len(tag) == len(course.slug) + 65 for tag in tags
    )
    with urllib.request.urlopen(f"http://{registry}/v2/_catalog") as answer:
        repositories = json.load(answer)["repositories"]
    assert repositories == ["ol-course-notebooks"], "base images must not be pushed"
