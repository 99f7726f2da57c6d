"""A throwaway PostgreSQL server for local hubs: the hub's database as production has it
(RDS PostgreSQL), for the end-to-end tests and the launch benchmark's capacity scenario.

`PostgresServer` runs `initdb` and `pg_ctl` of Debian's `postgresql` package
(`/usr/lib/postgresql/<version>/bin`, or `$HUB_E2E_PG_BIN`) on a cluster of its own in a temp
dir, listening on a free loopback port only, with one database per name given. A machine
without the server raises `PostgresUnavailable` (the tests turn it into a skip with the reason).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from local_hub.processes import Started, free_port

#: Where to look for initdb besides Debian's versioned folders.
PG_BIN_ENV = "HUB_E2E_PG_BIN"


class PostgresUnavailable(RuntimeError):
    """This machine cannot run a PostgreSQL server here; the message says why."""


def postgres_bin() -> Path | None:
    """The folder with initdb and pg_ctl (the newest version installed), or None."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    if os.environ.get(PG_BIN_ENV):
        candidates.append(Path(os.environ[PG_BIN_ENV]) / "initdb")
    for initdb in reversed(candidates):
        if initdb.is_file() and (initdb.parent / "pg_ctl").is_file():
            return initdb.parent
    return None


class PostgresServer(Started):
    """A PostgreSQL cluster of its own in a temp dir, on a free loopback port, with the
    databases named in `databases` (the first is `url`'s).

    PostgreSQL refuses to run as root; as root (CI) the cluster belongs to the `postgres` user
    that Debian's package creates. `max_connections` is PostgreSQL's (its default is 100).
    """

    def __init__(
        self, databases: Sequence[str] = ("jupyterhub",), max_connections: int = 100
    ) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise PostgresUnavailable(
                "PostgreSQL server not installed (apt-get install postgresql)"
            )
        if not databases:
            raise ValueError("at least one database")
        self.bin = bin_dir
        self.databases = tuple(databases)
        self.max_connections = max_connections
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                import pwd

                pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    "running as root and there is no postgres user to run PostgreSQL as"
                ) from None
            self.user = "postgres"
        self.base = Path(tempfile.mkdtemp(prefix="ol-hub-pg-"))
        self.port = free_port()
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.started = False

    def url_for(self, database: str) -> str:
        """A hub's db_url. SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg 3; the
        project ships psycopg2, so the driver is named."""
        return f"postgresql+psycopg2://hub@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        """The first database's db_url."""
        return self.url_for(self.databases[0])

    def _run(self, *command: str) -> None:
        kwargs: dict[str, Any] = {"user": self.user, "group": self.user} if self.user else {}
        result = subprocess.run(command, capture_output=True, text=True, **kwargs)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")

    def connect(self, database: str = "postgres") -> Any:
        """A psycopg2 connection (autocommit) to `database` as the cluster's owner."""
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="hub", dbname=database)
        connection.autocommit = True
        return connection

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
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} -c fsync=off"
            f" -c max_connections={self.max_connections}"
        )
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
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                for database in self.databases:
                    cursor.execute(f'CREATE DATABASE "{database}"')
        finally:
            connection.close()

    def postmaster_pid(self) -> int | None:
        """The server's main process (its backends are its children), or None."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        try:
            if self.started:
                self._run(
                    str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
                )
        finally:
            self.started = False
            shutil.rmtree(self.base, ignore_errors=True)
