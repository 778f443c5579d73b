"""The PostgreSQL backend's health check (common.postgresql), against the running
platform's PostgreSQL: a live connection passes without a round trip; one the server
dropped fails, and Django's request hygiene then reconnects.

Django settings are configured once per process, so a fresh interpreter configures a
project on the purchase service's database (read only) and reports what it saw.
"""

from __future__ import annotations

from typing import Any

import pytest

from common.testing import run_python_json

pytestmark = pytest.mark.live

SCENARIO = """
import json
import select
import time
from unittest import mock

import django
from django.conf import settings

from common.settings import db_password
from common.topology import INFRA, SERVICES

svc = SERVICES["purchase"]
settings.configure(
    DATABASES={
        "default": {
            "ENGINE": "common.postgresql",
            "NAME": svc.database,
            "USER": svc.db_role,
            "PASSWORD": db_password("purchase"),
            "HOST": INFRA.pg_host,
            "PORT": str(INFRA.pg_port),
            "CONN_MAX_AGE": 300,
            "CONN_HEALTH_CHECKS": True,
        }
    },
    INSTALLED_APPS=[],
    USE_TZ=True,
)
django.setup()

from django.db import close_old_connections, connection
from django.db.backends.postgresql.base import DatabaseWrapper as DjangoWrapper

from common.postgresql import own_connection


def backend_pid():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


out = {}
first = backend_pid()
with mock.patch.object(DjangoWrapper, "is_usable", return_value=True) as select_one:
    out["live_usable"] = connection.is_usable()
    out["live_round_trips"] = select_one.call_count

# The server drops the connection (as a restart does): terminated by another session.
other = own_connection()
with other.cursor() as cursor:
    cursor.execute("SELECT pg_terminate_backend(%s)", [first])
select.select([connection.connection.fileno()], [], [], 5)  # the farewell arrives
out["dropped_usable"] = connection.is_usable()

# What a request, an RPC or a task does first: the dropped connection is closed, the
# next query opens a new one instead of failing.
close_old_connections()
connection.close_if_health_check_failed()
out["reconnected"] = backend_pid() != first
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    result: dict[str, Any] = run_python_json(SCENARIO)
    return result


def test_a_live_connection_passes_without_a_round_trip(report: dict[str, Any]) -> None:
    assert report["live_usable"] is True
    assert report["live_round_trips"] == 0


def test_a_connection_the_server_dropped_fails(report: dict[str, Any]) -> None:
    assert report["dropped_usable"] is False


def test_the_next_request_reconnects(report: dict[str, Any]) -> None:
    assert report["reconnected"] is True
