"""Records keyed by their purchase: the shape the order and payment services share.

An order and a payment are each one row per purchase, its primary key the purchase id.
The saga's step creates it; its compensation moves it to a final status once, and a
compensation that overtakes its step leaves a tombstone (that status, no customer) so
the late step creates nothing (common.db.transition_once).

- `PurchaseRecord`: the abstract model (id, customer, amount, timestamps, the indexes
  and checks); each service adds its `status` with its own choices, and its own fields;
- `PurchaseRecords`: the reads of such rows for a service's selectors: one through the
  read-through cache (common.cache) as a plain dict, the customer's own, a customer's
  list, many straight from the database; and the cache entry dropped after a write.

A write drops the entry once its transaction commits, so this process sees the change
at once and every other process within the cache's local lifetime (one second). A miss
is cached too (briefly), which keeps a flood of unknown ids off the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.db import models

from common.cache import ReadThroughCache, process_cache
from common.ids import read_owned


class PurchaseRecord(models.Model):
    """One row per purchase (an order, a payment); see the module docstring."""

    id = models.UUIDField(primary_key=True, help_text="the purchase id")
    customer_id = models.BigIntegerField(
        null=True, blank=True, db_index=True, help_text="empty on a tombstone"
    )
    amount = models.BigIntegerField(default=0, help_text="in the currency's minor unit")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]
        # (Django names them for each model: order_customer_recent, payment_...)
        indexes = [
            models.Index(fields=["customer_id", "-created_at"], name="%(class)s_customer_recent")
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gte=0), name="%(class)s_amount_gte_0"
            ),
        ]

    @property
    def is_tombstone(self) -> bool:
        """In its final status before it was ever created: no customer."""
        return self.customer_id is None


RecordT = TypeVar("RecordT", bound=PurchaseRecord)


@dataclass(frozen=True)
class PurchaseRecords(Generic[RecordT]):
    """The reads of one model's rows: `model`, cached under the namespace `namespace()`
    answers (settings name it; tests use their own), as `to_dict` makes it (plain JSON
    values); `prefetch` names the relations the dict and the lists read."""

    model: type[RecordT]
    namespace: Callable[[], str]
    to_dict: Callable[[RecordT], dict[str, Any]]
    prefetch: tuple[str, ...] = field(default=())

    def cache(self) -> ReadThroughCache:
        """This process's cache of the rows."""
        return process_cache(self.namespace())

    @staticmethod
    def cache_key(record_id: uuid.UUID) -> str:
        return str(record_id)

    def find(self, record_id: uuid.UUID) -> RecordT | None:
        """The row itself, from the database (for writes: never from the cache)."""
        return self.model._default_manager.filter(id=record_id).first()

    def load(self, record_id: uuid.UUID) -> dict[str, Any] | None:
        """One row as `to_dict` makes it, straight from the database (the cache's loader)."""
        rows = self.model._default_manager.filter(id=record_id)
        row = rows.prefetch_related(*self.prefetch).first()
        return self.to_dict(row) if row is not None else None

    def get(self, record_id: uuid.UUID) -> dict[str, Any] | None:
        """One row (as `to_dict` makes it) through the cache, or None if there is none."""
        return self.cache().get(self.cache_key(record_id), lambda: self.load(record_id))

    def get_owned(self, record_id: Any, *, customer_id: int) -> dict[str, Any] | None:
        """The customer's own row with this id, or None: unknown, malformed, a tombstone,
        or another customer's all answer None, so a caller cannot tell them apart."""
        return read_owned(record_id, customer_id=customer_id, read=self.get)

    def list_for(self, *, customer_id: int, status: str | None = None) -> models.QuerySet[RecordT]:
        """A customer's rows, newest first; optionally of one status."""
        rows = (
            self.model._default_manager.filter(customer_id=customer_id)
            .order_by("-created_at", "id")
            .prefetch_related(*self.prefetch)
        )
        return rows.filter(status=status) if status is not None else rows

    def find_many(self, record_ids: Iterable[uuid.UUID]) -> list[RecordT]:
        """The rows with these ids straight from the database (the consistency audit wants
        what is, not what a cache remembers), by id; absent ones left out."""
        return list(self.model._default_manager.filter(id__in=list(record_ids)).order_by("id"))

    def invalidate_on_commit(self, *record_ids: uuid.UUID) -> None:
        """Drop the cached copies once the change is visible; a cache fault is logged, not
        raised (the write has committed: its caller must hear success)."""
        cache = self.cache()
        for record_id in record_ids:
            cache.invalidate_on_commit(self.cache_key(record_id))
