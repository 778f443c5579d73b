"""Fixtures for tests that talk to the running platform (started by `make up`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg2.extensions import connection as PgConnection

from common.testing import live_connection


@pytest.fixture
def live_db() -> Iterator[object]:
    """`live_db(service)` opens an autocommit connection to a service's live database."""
    opened: list[PgConnection] = []

    def open_(service: str) -> PgConnection:
        conn = live_connection(service)
        opened.append(conn)
        return conn

    yield open_
    for conn in opened:
        conn.close()
