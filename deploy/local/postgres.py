"""PostgreSQL 15: one cluster, six databases, one role per service.

Each service's role owns its database; CONNECT is revoked from PUBLIC, so no role
can open another service's database.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess

from common.settings import db_password
from common.topology import INFRA, SERVICES
from deploy.local import paths
from deploy.local.console import fail, step


def superuser() -> str:
    return "postgres" if paths.IS_ROOT else getpass.getuser()


def as_owner(cmd: list[str]) -> list[str]:
    """`cmd` run as the cluster's owner (postgres) when we are root, else as is."""
    return ["runuser", "-u", "postgres", "--", *cmd] if paths.IS_ROOT else cmd


def ensure_initialized() -> None:
    data = paths.pg_data_dir()
    paths.PG_SOCKET_DIR.mkdir(parents=True, exist_ok=True)
    if paths.IS_ROOT:
        shutil.chown(paths.PG_SOCKET_DIR, "postgres", "postgres")
    if (data / "PG_VERSION").exists():
        return
    step(f"initialising PostgreSQL cluster in {data}")
    data.mkdir(parents=True, exist_ok=True)
    if paths.IS_ROOT:
        shutil.chown(data, "postgres", "postgres")
        for parent in data.parents:
            if parent == paths.VAR or str(parent) == "/var/lib":
                break
            if parent.is_relative_to("/var/lib/saga-orchestration"):
                os.chmod(parent, 0o755)
    os.chmod(data, 0o700)
    result = subprocess.run(
        as_owner(
            [
                str(paths.PG_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                superuser(),
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        ),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise fail(f"initdb failed:\n{result.stdout}\n{result.stderr}")


def psql(sql: str, *, database: str = "postgres") -> str:
    result = subprocess.run(
        as_owner(
            [
                str(paths.PG_BIN / "psql"),
                "-h",
                str(paths.PG_SOCKET_DIR),
                "-p",
                str(INFRA.pg_port),
                "-U",
                superuser(),
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
            ]
        ),
        input=sql,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise fail(f"psql failed: {result.stderr.strip()}\nSQL: {sql[:500]}")
    return result.stdout


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def provision() -> None:
    """Create (or bring up to date) every service's role and database. Idempotent."""
    existing = set(psql("SELECT datname FROM pg_database").split())
    for svc in SERVICES.values():
        role, db = svc.db_role, svc.database
        # CREATEDB lets pytest-django create the role's own test database.
        psql(
            f"""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_quote(role)}) THEN
                CREATE ROLE {role} LOGIN CREATEDB;
              END IF;
            END $$;
            ALTER ROLE {role} WITH LOGIN CREATEDB PASSWORD {_quote(db_password(svc.name))};
            """
        )
        if db not in existing:
            psql(f"CREATE DATABASE {db} OWNER {role}")
        psql(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC; GRANT ALL ON DATABASE {db} TO {role};")
    step(f"PostgreSQL: {len(SERVICES)} databases, each with its own role")
