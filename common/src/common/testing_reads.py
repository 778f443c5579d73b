"""The checks the customer-facing reads of a purchase's record share (GET
/api/v1/orders[/{id}], GET /api/v1/payments[/{id}]) through the edge: a customer reads
their own; another customer's, a tombstone, a malformed or unknown id all read 404; the
list is the customer's own, newest first, filtered by status.

A service's test_apis.py keeps what is its own (how the saga makes a record, its fields,
its final status) and asserts the shared behaviour through `OwnedReads`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

from common.testing import Customer, assert_error, edge, eventually


@dataclass(frozen=True)
class OwnedReads:
    """The reads under `path` (/api/v1/orders): `path/{id}` one record, `path` the list."""

    path: str

    def get(self, record_id: str, token: str | None = None) -> requests.Response:
        return edge("GET", f"{self.path}/{record_id}", token=token, retry=True)

    def list(self, token: str | None = None, query: str = "page_size=100") -> requests.Response:
        return edge("GET", f"{self.path}?{query}", token=token, retry=True)

    def assert_hidden(self, record_id: str, token: str | None) -> None:
        """The record reads as no record at all (404 not_found)."""
        assert_error(self.get(record_id, token), 404, "not_found")

    def assert_anonymous_refused(self, record_id: str) -> None:
        assert_error(self.get(record_id), 401, "unauthenticated")
        assert_error(self.list(), 401, "unauthenticated")

    def status(self, record_id: str, token: str) -> str:
        response = self.get(record_id, token)
        assert response.status_code == 200, response.text
        return str(response.json()["status"])

    def assert_seen_within_the_staleness_bound(
        self, record_id: str, token: str, status: str
    ) -> None:
        """The record reads `status` (a change made after a cached read) soon enough."""
        assert eventually(lambda: self.status(record_id, token), status) == status

    def assert_own_only(self, record_id: str, *, owner: Customer, other: Customer) -> None:
        """`owner`'s list holds their record and only theirs; `other`'s does not hold it."""
        mine = self.list(owner.token)
        theirs = self.list(other.token)

        assert mine.status_code == theirs.status_code == 200
        assert record_id in _ids(mine.json())
        assert {r["customer_id"] for r in mine.json()["results"]} == {owner.id}
        assert record_id not in _ids(theirs.json())

    def assert_newest_first_and_filtered(
        self, made: Sequence[str], token: str, *, moved: str
    ) -> None:
        """The customer's three records `made` in that order (the first since moved to the
        status `moved`) list newest first, paginated, and filter by status."""
        page = self.list(token, "page_size=2").json()
        filtered = self.list(token, f"status={moved}&page_size=100").json()

        assert _ids(page) == [made[2], made[1]]
        assert page["count"] >= 3 and page["next"]
        assert made[0] in _ids(filtered)
        assert {r["status"] for r in filtered["results"]} == {moved}

    def assert_unknown_status_refused(self, token: str) -> None:
        assert_error(self.list(token, "status=LOST"), 400, "invalid_input")


def _ids(page: dict[str, Any]) -> list[str]:
    return [record["id"] for record in page["results"]]
