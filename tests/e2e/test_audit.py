"""The consistency audit on the running system (`manage.py saga audit`, docs/adr/0018).

Given a purchase completed and one failed through the edge, when a participant's row
is corrupted directly in its own database, then the audit (the real command, asking the
real services by gRPC through Traefik) finds the discrepancy, keeps it as a finding, and
releases the stock a FAILED purchase still holds, by the saga's own compensation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from common.testing import Customer, connect, manage
from tests.e2e.conftest import inventory_of, purchase, read_only, wait_final

REPAIR_NOTE = "audit repair: the FAILED purchase still held stock; released"


def audit(*purchase_ids: str) -> dict[str, Any]:
    """The audit of these purchases, as an operator runs it; its JSON report."""
    report: dict[str, Any] = json.loads(
        manage("orchestrator", "saga", "audit", *purchase_ids, "--json")
    )
    return report


def corrupt(service: str, statement: str, *params: Any) -> None:
    """Change a participant's row behind its back, as a bug or a hand edit would."""
    conn = connect(service)
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute(statement, params)
            assert cursor.rowcount >= 1, statement
    finally:
        conn.close()


def findings(purchase_id: str) -> dict[str, tuple[str, bool]]:
    """{kind: (detail, repaired)} of the saga's findings in orchestrator_db."""
    with read_only("orchestrator") as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT kind, detail, repaired_at IS NOT NULL FROM saga_audit_finding"
            " WHERE saga_id = %s",
            [purchase_id],
        )
        return {str(kind): (str(detail), bool(done)) for kind, detail, done in cursor.fetchall()}


def step_log(purchase_id: str) -> list[tuple[str, str, str]]:
    with read_only("orchestrator") as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT step, status, error FROM saga_step_log WHERE saga_id = %s ORDER BY id",
            [purchase_id],
        )
        return [(str(s), str(st), str(e)) for s, st, e in cursor.fetchall()]


@pytest.fixture
def product(make_product: Callable[..., int]) -> int:
    return make_product(inventory=100, price=1000)


@pytest.fixture
def completed(customer: Customer, product: int) -> str:
    purchase_id = purchase(customer, [(product, 2)])
    assert wait_final(customer, purchase_id)["status"] == "COMPLETED"
    return purchase_id


@pytest.fixture
def failed(customer: Customer, product: int) -> str:
    # The payment service refuses XXX: the order is cancelled, the stock released.
    purchase_id = purchase(customer, [(product, 3)], currency_code="XXX")
    assert wait_final(customer, purchase_id)["status"] == "FAILED"
    return purchase_id


def test_purchases_that_ended_cleanly_have_no_discrepancy(completed: str, failed: str) -> None:
    report = audit(completed, failed)

    assert (report["audited"], report["discrepancies"], report["repaired"]) == (2, 0, [])


def test_a_completed_purchase_with_a_cancelled_order_and_a_wrong_payment_is_reported(
    completed: str,
) -> None:
    # Given the order cancelled and the payment's amount changed behind the saga's back
    corrupt("order", "UPDATE orders_order SET status = 'CANCELLED' WHERE id = %s", completed)
    corrupt("payment", "UPDATE payments_payment SET amount = amount + 1 WHERE id = %s", completed)

    # when the audit runs
    report = audit(completed)

    # then both are found, kept for the admin, and nothing is repaired
    assert sorted(f["kind"] for f in report["findings"][completed]) == ["AMOUNT", "ORDER"]
    assert report["repaired"] == []
    kept = findings(completed)
    assert set(kept) == {"AMOUNT", "ORDER"}
    assert "the order is CANCELLED" in kept["ORDER"][0]
    assert not any(repaired for _, repaired in kept.values())


def test_a_completed_purchase_whose_payment_vanished_is_reported(completed: str) -> None:
    corrupt("payment", "DELETE FROM payments_payment WHERE id = %s", completed)

    report = audit(completed)

    assert [f["kind"] for f in report["findings"][completed]] == ["PAYMENT"]


def test_a_failed_purchase_that_still_holds_stock_is_released_by_the_audit(
    failed: str, product: int
) -> None:
    # Given the failed purchase's reservation back to RESERVED, its 3 units taken again
    before = inventory_of(product)
    corrupt(
        "product",
        "UPDATE catalog_reservation SET state = 'RESERVED' WHERE purchase_id = %s",
        failed,
    )
    corrupt(
        "product", "UPDATE catalog_product SET inventory = inventory - 3 WHERE id = %s", product
    )

    # when the audit runs
    report = audit(failed)

    # then it is found and repaired by ReleaseInventory: the stock is whole again,
    # the repair is in the saga's step log, and the next audit finds nothing
    assert [f["kind"] for f in report["findings"][failed]] == ["RESERVATION"]
    assert report["repaired"] == [failed]
    assert inventory_of(product) == before
    assert findings(failed)["RESERVATION"][1] is True
    assert step_log(failed)[-1] == ("UPDATE_PRODUCT_INVENTORY", "ROLLBACK", REPAIR_NOTE)
    assert audit(failed)["discrepancies"] == 0


def test_a_failed_purchase_with_a_live_order_is_reported_not_repaired(failed: str) -> None:
    corrupt("order", "UPDATE orders_order SET status = 'CREATED' WHERE id = %s", failed)

    report = audit(failed)

    assert [f["kind"] for f in report["findings"][failed]] == ["ORDER"]
    assert report["repaired"] == []
