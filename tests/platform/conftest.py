"""Fixtures for tests that talk to the running platform (started by `make up`)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import pytest
from psycopg2.extensions import connection as PgConnection

from common.settings import db_password
from common.topology import INFRA, SERVICES


def connect(service: str, database: str | None = None) -> PgConnection:
    """Connect as `service`'s role to `database` (its own by default) over TCP."""
    svc = SERVICES[service]
    return psycopg2.connect(
        host=INFRA.pg_host,
        port=INFRA.pg_port,
        user=svc.db_role,
        password=db_password(service),
        dbname=database or svc.database,
        connect_timeout=5,
    )


@pytest.fixture
def live_db() -> Iterator[object]:
    """`live_db(service)` opens an autocommit connection to a service's live database."""
    opened: list[PgConnection] = []

    def open_(service: str) -> PgConnection:
        conn = connect(service)
        conn.autocommit = True
        opened.append(conn)
        return conn

    yield open_
    for conn in opened:
        conn.close()
