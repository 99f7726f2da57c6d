"""What the hub's end-to-end tests need: Docker with the course images, the proxy, Chromium,
and a throwaway PostgreSQL server. Each helper skips with the reason when something is missing.

Course images are found as the local hub finds them (`local_hub.images`): from the image map
(`HUB_IMAGE_MAP`, the one the Pants test carries in its sandbox, or the checkout's). Without an
image map the tests skip; a course missing from it, or an image it names that Docker lacks, is
an error (the build should have made it).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlparse

import pytest
import requests

from catalog import Catalog, find_repo_root, load_catalog
from catalog.image_facts import BUILD_COMMAND, read_image_map
from local_hub.images import docker_client, image_map_file, local_images
from local_hub.postgres import PostgresServer as LocalPostgresServer
from local_hub.postgres import PostgresUnavailable

CHROMIUM = os.environ.get("HUB_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@dataclass(frozen=True)
class Courses:
    catalog: Catalog
    images: dict[str, str]


def repository_catalog() -> Catalog | None:
    try:
        return load_catalog(find_repo_root())
    except (FileNotFoundError, OSError):
        return None


def course_images() -> Courses:
    """The catalog and every course's image; skips when Docker or the image map is missing."""
    catalog = repository_catalog()
    if catalog is None:
        pytest.skip("no courses/ directory (the hub e2e tests need courses:content)")
    try:
        client = docker_client()
        client.ping()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"Docker is not available: {e}")
    path = image_map_file(find_repo_root())
    if not path.is_file():
        pytest.skip(
            f"no image map at {path}: `{BUILD_COMMAND}` "
            "(or a runtime_package_dependencies on courses:image-map)"
        )
    return Courses(catalog, local_images(catalog, read_image_map(path), client))


def launchable(hub: Any) -> list[str]:
    """The slugs of a LocalHub's courses that have an image, in catalog order (the image map's keys
    also name GPU courses' CPU images, `<slug>--cpu`)."""
    return [c.slug for c in hub.settings.catalog if c.slug in hub.settings.image_map]


def require_proxy() -> None:
    if shutil.which("configurable-http-proxy") is None:
        pytest.skip(
            "configurable-http-proxy is not on PATH: npm install -g configurable-http-proxy"
        )


def require_chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(
            f"no Chromium at {CHROMIUM} (apt-get install chromium, or set HUB_E2E_CHROMIUM)"
        )
    return CHROMIUM


@contextmanager
def chromium_browser() -> Iterator[Any]:
    executable = require_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# --- PostgreSQL -----------------------------------------------------------------------------


class PostgresServer(LocalPostgresServer):
    """`local_hub.postgres.PostgresServer` that skips the test, with the reason, on a machine
    that cannot run PostgreSQL."""

    def __init__(self, databases: Sequence[str] = ("jupyterhub",), **kwargs: Any) -> None:
        try:
            super().__init__(databases, **kwargs)
        except PostgresUnavailable as missing:
            pytest.skip(str(missing))


# --- The hub's database ---------------------------------------------------------------------


def count_rows(db_url: str) -> dict[str, int]:
    """Users, spawners and running servers in the hub's database (SQLite or PostgreSQL)."""
    queries = {
        "users": "SELECT count(*) FROM users",
        "spawners": "SELECT count(*) FROM spawners",
        "servers": "SELECT count(*) FROM servers",
    }
    if db_url.startswith("sqlite:///"):
        connection: Any = sqlite3.connect(f"file:{db_url[len('sqlite:///'):]}?mode=ro", uri=True)
    else:
        import psycopg2

        connection = psycopg2.connect(db_url.replace("postgresql+psycopg2://", "postgresql://", 1))
    try:
        result = {}
        for name, query in queries.items():
            cursor = connection.cursor()
            cursor.execute(query)
            result[name] = int(cursor.fetchone()[0])
            cursor.close()
        return result
    finally:
        connection.close()


def wait_for(condition: Any, timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def redirects_to_spawn(url: str) -> list[str]:
    """The redirect chain of a launch link, up to (not into) `/hub/spawn`: nothing spawns."""
    session = requests.Session()
    hops = [url]
    for _ in range(8):
        response = session.get(url, allow_redirects=False, timeout=30)
        if response.status_code not in (301, 302, 303, 307, 308):
            break
        url = urljoin(url, response.headers["Location"])
        hops.append(url)
        if urlparse(url).path == "/hub/spawn":
            break
    return hops
