"""The purchase service's Prometheus metrics (docs/observability.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from django.db import transaction

from common.contract.events import END_REASONS, PurchaseStatus
from common.observability.metrics import counter

FINISHED = counter(
    "purchase_finished",
    "Final statuses applied to purchases (COMPLETED, FAILED, NEEDS_ATTENTION, CANCELLED),"
    " by status and reason (cancelled, deadline, or empty)",
    ["status", "reason"],
)


def count_finished_on_commit(applied: Iterable[tuple[str, str]]) -> None:
    """Count the (status, reason) pairs just applied to purchases that are final, when
    the transaction commits: a batch rolled back (and retried) counts once."""
    finals = Counter(
        (status, reason if reason in END_REASONS else "other")
        for status, reason in applied
        if PurchaseStatus(status).is_final
    )
    if not finals:
        return

    def increment() -> None:
        for (status, reason), n in finals.items():
            FINISHED.labels(status=status, reason=reason).inc(n)

    transaction.on_commit(increment, robust=True)
