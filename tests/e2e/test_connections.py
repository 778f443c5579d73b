"""Database connections live as long as CONN_MAX_AGE says, in the Celery workers too.

Celery's Django fixup closes every connection before and after each task unless
CELERY_DB_REUSE_MAX is set (common/celery_conf.py): a new PostgreSQL session per task,
5-6 ms of the worker's time and a backend process forked for nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from psycopg2.extensions import cursor as Cursor

from tests.e2e.conftest import Customer, purchase, read_only, wait_final

PURCHASES = 20


def _sessions(cursor: Cursor) -> int:
    """Sessions ever opened to orchestrator_db (pg_stat_database, flushed by now)."""
    cursor.execute("SELECT pg_stat_clear_snapshot()")
    cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
    row = cursor.fetchone()
    assert row is not None
    return int(row[0])


def test_purchases_one_after_another_open_no_orchestrator_session_per_task(
    customer: Customer, make_product: Callable[..., int]
) -> None:
    # Given a product in stock, and workers that have run a purchase already
    product_id = make_product(inventory=PURCHASES + 1)
    wait_final(customer, purchase(customer, [(product_id, 1)]))
    with read_only("orchestrator") as conn, conn.cursor() as cursor:
        time.sleep(1.2)  # a backend flushes its session count at most once a second
        before = _sessions(cursor)

        # when purchases run one after another (a Celery task each, at least)
        for _ in range(PURCHASES):
            assert wait_final(customer, purchase(customer, [(product_id, 1)]))["status"] == (
                "COMPLETED"
            )
        time.sleep(1.2)
        opened = _sessions(cursor) - before

    # then the orchestrator's processes reused their connections: far fewer new
    # sessions than tasks (a few may reach CONN_MAX_AGE or belong to other readers)
    assert opened < PURCHASES // 2, f"{opened} sessions opened for {PURCHASES} purchases"
