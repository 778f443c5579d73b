"""What the sagas of a run did during a fault, from the orchestrator's step log
(read-only, as the bench's checks read it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.checks import Check, reading

if TYPE_CHECKING:
    from bench.chaos.inject import Context


def refused_during(ctx: Context, step: str, since: float, until: float, target: str) -> Check:
    """Some of the run's sagas had `step` refused between two moments (epoch seconds),
    while `target` was down: their compensations had to wait for it."""
    ids = ctx.states.ids(ctx.customer_ids)
    with reading("orchestrator") as cursor:
        cursor.execute(
            "SELECT count(DISTINCT saga_id) FROM saga_step_log WHERE saga_id = ANY(%s::uuid[])"
            " AND step = %s AND status = 'FAILED'"
            " AND created_at BETWEEN to_timestamp(%s) AND to_timestamp(%s)",
            [ids, step, since, until],
        )
        row = cursor.fetchone()
    refused = int(row[0]) if row else 0
    return Check(
        "compensations met the outage",
        refused > 0,
        f"{refused} sagas refused at {step} while {target} was down, compensated after it"
        if refused
        else f"no saga was refused at {step} while {target} was down: nothing to compensate",
    )
