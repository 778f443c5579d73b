"""Where a saga's time goes, from the services' own timestamps (read-only SQL).

For each finished purchase of the run, the moments each part of the pipeline left
in its database: the purchase row (purchase service), the saga row and its step log
(orchestrator), and the purchase's final update (purchase service again). One clock:
every process runs on this machine. A schema this does not know (the orchestrator's
tables are young) turns the breakdown off, never the run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg2

from bench.checks import reading
from bench.workload import ENDED

STAGES = (
    ("purchase stored -> saga stored", "purchase relay, Kafka, orchestrator consumer"),
    ("saga stored -> first step begins", "Celery: broker queue and a free worker"),
    ("first step -> last step recorded", "the steps: gRPC calls and their transactions"),
    ("last step -> purchase final", "orchestrator relay, Kafka, purchase consumer"),
)


def breakdown(purchases: dict[str, dict[str, Any]]) -> dict[str, list[float]] | str:
    """{stage: [seconds per finished purchase]}, or why it could not be read."""
    finished = {pid: p for pid, p in purchases.items() if p["status"] in ENDED}
    ids = sorted(finished)
    try:
        with reading("orchestrator") as cursor:
            cursor.execute(
                "SELECT s.purchase_id::text, s.created_at, min(l.created_at), max(l.created_at)"
                " FROM saga s JOIN saga_step_log l ON l.saga_id = s.purchase_id"
                " WHERE s.purchase_id = ANY(%s::uuid[]) GROUP BY s.purchase_id, s.created_at",
                [ids],
            )
            sagas = {row[0]: row[1:] for row in cursor.fetchall()}
    except psycopg2.Error as error:
        return f"orchestrator_db not readable as expected: {str(error).strip()[:200]}"
    stages: dict[str, list[float]] = {name: [] for name, _ in STAGES}
    for pid in ids:
        if pid not in sagas:
            continue
        saga_stored, first_step, last_step = sagas[pid]
        stored = datetime.fromisoformat(finished[pid]["created_at"])
        final = datetime.fromisoformat(finished[pid]["updated_at"])
        moments = (stored, saga_stored, first_step, last_step, final)
        for (name, _), begin, end in zip(STAGES, moments, moments[1:], strict=False):
            stages[name].append((end - begin).total_seconds())
    return stages
