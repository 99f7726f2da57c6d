"""The real Docker engine, for the tests that build or run images."""

from __future__ import annotations

import docker
import pytest


@pytest.fixture(scope="session")
def client() -> docker.DockerClient:
    try:
        engine = docker.from_env()
        engine.ping()
    except Exception as e:  # no engine: these tests need the real one
        pytest.skip(f"no Docker engine: {e}")
    return engine
