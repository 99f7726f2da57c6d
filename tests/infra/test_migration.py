"""The hub's database migration (issue 26, finding 4), run for real on PostgreSQL.

The release never migrates (`hub.db.upgrade: false`): infra/program.py runs the hub image's
`jupyterhub upgrade-db` as a Job after a snapshot. Here the Job's own command runs (with
JupyterHub 6.1, as in the hub image) against a local PostgreSQL whose schema is one migration
behind, which a hub with `upgrade_db` off refuses; afterwards that hub opens it. The Job itself
is validated against the Kubernetes 1.31 schema (no cluster can run here).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
from jupyterhub import dbutil, orm

from infra.images import hub_image
from infra.stack_config import StackConfig
from infra.values import database_url, migration_job
from tests.hub.e2e_support import PostgresServer
from tests.infra.chart import KUBERNETES_VERSION
from tests.infra.support import HUB_IMAGE

DB_HOST = "hub-db.c0ffee.us-east-1.rds.amazonaws.com"


def alembic_on_path(bin_dir: Path) -> dict[str, str]:
    """An environment whose PATH has `alembic` (JupyterHub runs it from PATH, as the hub image
    has it): this interpreter's alembic."""
    bin_dir.mkdir()
    (bin_dir / "alembic").write_text(
        f"#!{sys.executable}\nfrom alembic.config import main\nmain()\n", encoding="utf-8"
    )
    (bin_dir / "alembic").chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def one_migration_behind(db_url: str, env: dict[str, str]) -> None:
    """A hub database at JupyterHub's schema, then downgraded by one migration."""
    orm.new_session_factory(db_url)
    with dbutil._temp_alembic_ini(db_url) as ini:
        subprocess.run(["alembic", "-c", ini, "downgrade", "-1"], env=env, check=True)


def test_the_migration_job_migrates_what_a_non_migrating_hub_then_opens(
    stacks: dict[str, StackConfig], tmp_path: Path
) -> None:
    job = migration_job(stacks["prod"], hub_image(HUB_IMAGE), DB_HOST)
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = container["command"]
    assert command[:2] == ["jupyterhub", "upgrade-db"]
    (db_flag,) = (a for a in command if a.startswith("--db="))
    # The hub's own URL (verified TLS, no password: PGPASSWORD from the Secret), its driver named.
    assert db_flag == "--db=" + database_url(DB_HOST).replace(
        "postgresql://", "postgresql+psycopg2://", 1
    )
    assert {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": "hub-db", "key": "password"}}} in container["env"]  # fmt: skip
    assert pod["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0

    env = alembic_on_path(tmp_path / "bin")
    with PostgresServer() as postgres:
        one_migration_behind(postgres.url, env)
        with pytest.raises(orm.DatabaseSchemaMismatch):  # a hub with upgrade_db off refuses it
            orm.new_session_factory(postgres.url)
        arguments = [a if a != db_flag else f"--db={postgres.url}" for a in command[1:]]
        migrated = subprocess.run(
            [sys.executable, "-m", "jupyterhub", *arguments],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert migrated.returncode == 0, migrated.stderr[-2000:]
        assert "Upgrading" in migrated.stderr
        orm.new_session_factory(postgres.url)  # and opens it now
