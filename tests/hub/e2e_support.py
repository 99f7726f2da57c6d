"""What the hub's end-to-end tests need: Docker with the course images, the proxy, Chromium,
and a throwaway PostgreSQL server. Each helper skips with the reason when something is missing.

Course images are found as the local hub finds them (`hub.local_images`): from the image map
(`HUB_IMAGE_MAP`, the one the Pants test carries in its sandbox, or the checkout's). Without an
image map the tests skip; a course missing from it, or an image it names that Docker lacks, is
an error (the build should have made it).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from catalog import Catalog, find_repo_root, load_catalog
from catalog.image_facts import BUILD_COMMAND, read_image_map
from hub.local_images import docker_client, image_map_file, local_images
from hub.local_processes import free_port

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


def postgres_bin() -> Path | None:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    if os.environ.get("HUB_E2E_PG_BIN"):
        candidates.append(Path(os.environ["HUB_E2E_PG_BIN"]) / "initdb")
    for initdb in reversed(candidates):
        if initdb.is_file() and (initdb.parent / "pg_ctl").is_file():
            return initdb.parent
    return None


class PostgresServer:
    """A PostgreSQL cluster of its own in a temp dir, on a free loopback port.

    PostgreSQL refuses to run as root; as root (CI) the cluster belongs to the `postgres` user
    that Debian's package creates.
    """

    def __init__(self) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            pytest.skip("PostgreSQL server not installed (apt-get install postgresql)")
        self.bin = bin_dir
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                import pwd

                pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no postgres user to run PostgreSQL as")
            self.user = "postgres"
        self.base = Path(tempfile.mkdtemp(prefix="ol-hub-pg-"))
        self.port = free_port()
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.started = False

    @property
    def url(self) -> str:
        """The hub's db_url. SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg 3; the
        project ships psycopg2, so the driver is named."""
        return f"postgresql+psycopg2://hub@127.0.0.1:{self.port}/jupyterhub"

    def _run(self, *command: str) -> None:
        kwargs: dict[str, Any] = {"user": self.user, "group": self.user} if self.user else {}
        result = subprocess.run(command, capture_output=True, text=True, **kwargs)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        if self.user:
            shutil.chown(self.base, self.user, self.user)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "hub",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "start",
        )
        self.started = True
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1", port=self.port, user="hub", dbname="postgres"
        )
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE jupyterhub")
        connection.close()

    def stop(self) -> None:
        try:
            if self.started:
                self._run(
                    str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
                )
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
