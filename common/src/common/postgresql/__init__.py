"""PostgreSQL beside Django's ORM: the backend (base.py, a health check without a round
trip) and `own_connection`, a session Django does not manage."""

from __future__ import annotations

from typing import Any

import psycopg2
from django.db import DEFAULT_DB_ALIAS, connections

# What Django adds to its connection parameters for its own cursors and adapters.
_DJANGO_ONLY = ("cursor_factory", "context", "prepare_threshold")


def own_connection(using: str = DEFAULT_DB_ALIAS) -> Any:
    """A psycopg2 connection of its own, in autocommit, to the database Django's `using`
    points at: for LISTEN (notifications arrive on the session that listens, which must
    not be a request's) or for a second session in a test."""
    params = dict(connections[using].get_connection_params())
    for django_only in _DJANGO_ONLY:
        params.pop(django_only, None)
    conn = psycopg2.connect(**params)
    conn.autocommit = True
    return conn
