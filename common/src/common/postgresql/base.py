"""Django's PostgreSQL backend, with a health check that costs no round trip.

CONN_HEALTH_CHECKS makes Django ask `is_usable()` before the first query of every
request, RPC and task, and Django's answer is a `SELECT 1`: one more round trip on every
purchase's POST, CheckProducts, saga call and task, waiting behind the CPU in a burst.

A connection the server dropped (a restart, a terminated backend) has something to
read on its socket: the server's farewell message or the end of the stream. A healthy
idle connection has nothing: the last exchange ended with ReadyForQuery, and ordinary
connections do not LISTEN. So a zero-timeout poll of the socket answers "alive" at the
cost of one system call, and only a readable socket pays Django's `SELECT 1`. urllib3
tells a dropped pooled connection the same way (`wait_for_read(sock, timeout=0.0)`).
"""

from __future__ import annotations

import select

import psycopg2
from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        if self.connection is None or self.connection.closed:
            return False
        try:
            readable, _, _ = select.select([self.connection.fileno()], [], [], 0)
        except (OSError, ValueError, psycopg2.Error):
            return False
        if not readable:
            return True
        return bool(super().is_usable())
