"""Invariants of a finished run, read from the services' databases (read-only).

No API lists what these need (the stock behind reservations, the orders and payments
of many customers at once, the saga rows), so the bench reads each database as its
own service's role, in read-only transactions, and never writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from psycopg2.extensions import cursor as PgCursor

from bench.workload import ENDED
from common.settings import REPO_ROOT
from common.testing import connect, without_django_settings

AUDIT_TIMEOUT_SECONDS = 600.0  # the audit reads ~1,000 purchases per participant call


@contextmanager
def reading(service: str) -> Iterator[PgCursor]:
    """A cursor on `service`'s live database, in a read-only session."""
    conn = connect(service)
    try:
        conn.set_session(readonly=True, autocommit=True)
        with conn.cursor() as cursor:
            yield cursor
    finally:
        conn.close()


def inventories(product_ids: list[int]) -> dict[int, int]:
    with reading("product") as cursor:
        cursor.execute(
            "SELECT id, inventory FROM catalog_product WHERE id = ANY(%s)", [product_ids]
        )
        return {int(pid): int(units) for pid, units in cursor.fetchall()}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _by_status(service: str, table: str, ids: list[str]) -> dict[str, tuple[int, int]]:
    """{status: (rows, sum of amount)} among rows whose id is one of `ids`."""
    with reading(service) as cursor:
        cursor.execute(
            f"SELECT status, count(*), coalesce(sum(amount), 0) FROM {table}"
            " WHERE id = ANY(%s::uuid[]) AND customer_id IS NOT NULL GROUP BY status",
            [ids],
        )
        return {str(s): (int(n), int(a)) for s, n, a in cursor.fetchall()}


def _ids_with(service: str, table: str, ids: list[str], status: str) -> set[str]:
    with reading(service) as cursor:
        cursor.execute(
            f"SELECT id::text FROM {table} WHERE id = ANY(%s::uuid[]) AND status = %s",
            [ids, status],
        )
        return {row[0] for row in cursor.fetchall()}


def run_checks(
    *,
    accepted: dict[str, dict[str, Any]],
    server: dict[str, dict[str, Any]],
    product_ids: list[int],
    stock_before: dict[int, int],
) -> list[Check]:
    """`accepted`: id -> the client's record of each 202; `server`: id -> the purchase as
    the purchase service lists it at the end (status, amount, items)."""
    ids = sorted(server)
    checks: list[Check] = []
    status = {pid: p["status"] for pid, p in server.items()}
    completed = {pid for pid, s in status.items() if s == "COMPLETED"}
    # Undone: failed (a step refused), or cancelled by its customer (scenario cancel10):
    # either way nothing may stay reserved, ordered or paid.
    failed = {pid for pid, s in status.items() if s in ("FAILED", "CANCELLED")}

    # One purchase per accepted POST: retries with the same Idempotency-Key made none.
    extra, missing = set(server) - set(accepted), set(accepted) - set(server)
    checks.append(
        Check(
            "one purchase per request",
            not extra and not missing,
            f"{len(server)} purchases for {len(accepted)} accepted requests"
            + (f"; {len(extra)} never acknowledged" if extra else "")
            + (f"; {len(missing)} accepted but not listed" if missing else ""),
        )
    )

    unfinished = Counter(s for s in status.values() if s not in ENDED)
    checks.append(
        Check(
            "no saga left unfinished",
            not unfinished,
            "every purchase COMPLETED, FAILED or CANCELLED"
            if not unfinished
            else ", ".join(f"{n} {s}" for s, n in unfinished.items()),
        )
    )
    with reading("orchestrator") as cursor:
        cursor.execute(
            "SELECT purchase_id::text, state FROM saga WHERE purchase_id = ANY(%s::uuid[])", [ids]
        )
        sagas = dict(cursor.fetchall())
    disagree = [pid for pid in ids if sagas.get(pid) != status[pid]]
    checks.append(
        Check(
            "sagas agree with purchases",
            len(sagas) == len(ids) and not disagree,
            f"{len(sagas)} saga rows, states {dict(Counter(sagas.values()))}"
            + (f"; {len(disagree)} differ, e.g. {disagree[0]}" if disagree else ""),
        )
    )

    # Stock: what left each product is what the completed purchases bought.
    bought: Counter[int] = Counter()
    for pid in completed:
        for line in server[pid]["items"]:
            bought[int(line["product_id"])] += int(line["quantity"])
    stock_after = inventories(product_ids)
    conserved = all(stock_before[p] - stock_after[p] == bought[p] for p in product_ids)
    negative = [p for p in product_ids if stock_after[p] < 0]
    checks.append(
        Check(
            "inventory conservation",
            conserved and not negative,
            "; ".join(
                f"product {p}: {stock_before[p]} - {bought[p]} sold = {stock_after[p]}"
                + ("" if stock_before[p] - bought[p] == stock_after[p] else " (MISMATCH)")
                for p in product_ids
            ),
        )
    )
    with reading("product") as cursor:
        cursor.execute(
            "SELECT r.purchase_id::text, r.state, l.product_id, l.quantity"
            " FROM catalog_reservation r"
            " LEFT JOIN catalog_reservationline l ON l.reservation_id = r.purchase_id"
            " WHERE r.purchase_id = ANY(%s::uuid[])",
            [ids],
        )
        reservations = cursor.fetchall()
    reserved_ids = {r[0] for r in reservations if r[1] == "RESERVED"}
    reserved_units: Counter[int] = Counter()
    for _, state, product, quantity in reservations:
        if state == "RESERVED" and product is not None:
            reserved_units[int(product)] += int(quantity)
    checks.append(
        Check(
            "reservations held = completed",
            reserved_ids == completed and reserved_units == bought,
            f"{len(reserved_ids)} RESERVED for {len(completed)} completed"
            f" ({sum(reserved_units.values())} units); failed still holding:"
            f" {len(reserved_ids & failed)}",
        )
    )

    # Orders and payments: one each per completed saga, none left by a failed one.
    amount_completed = sum(int(server[pid]["amount"]) for pid in completed)
    for service, table, done, undone in (
        ("order", "orders_order", "CREATED", "CANCELLED"),
        ("payment", "payments_payment", "COMPLETED", "REFUNDED"),
    ):
        counts = _by_status(service, table, ids)
        effective = _ids_with(service, table, ids, done)
        rows, amount = counts.get(done, (0, 0))
        checks.append(
            Check(
                f"{service}s = completed sagas",
                effective == completed and amount == amount_completed,
                f"{rows} {done} for {len(completed)} completed (amount {amount} vs"
                f" {amount_completed}); {counts.get(undone, (0, 0))[0]} {undone};"
                f" failed with a {done} {service}: {len(effective & failed)}",
            )
        )
    checks.append(audit_check(sorted(completed | failed)))
    return checks


def audit_check(ids: list[str]) -> Check:
    """The orchestrator's consistency audit (`manage.py saga audit`, docs/adr/0018) over
    the run's finished purchases, report only (the bench writes nothing): every saga's
    reservation, order and payment, as their services answer by gRPC, agree with it."""
    with tempfile.NamedTemporaryFile("w", suffix=".ids", encoding="utf-8") as ids_file:
        ids_file.write("\n".join(ids))
        ids_file.flush()
        result = subprocess.run(
            [
                sys.executable,
                "orchestrator_svc/manage.py",
                "saga",
                "audit",
                "--ids-file",
                ids_file.name,
                "--no-repair",
                "--json",
            ],
            cwd=REPO_ROOT,
            env=without_django_settings(),
            capture_output=True,
            text=True,
            timeout=AUDIT_TIMEOUT_SECONDS,
        )
    if result.returncode != 0:
        return Check("consistency audit", False, f"the audit failed: {result.stderr[-300:]}")
    report = json.loads(result.stdout)
    example = next(iter(report["findings"].items()), None)
    return Check(
        "consistency audit",
        report["discrepancies"] == 0 and report["audited"] == len(ids),
        f"{report['audited']} of {len(ids)} finished sagas audited:"
        f" {report['discrepancies']} discrepancies"
        + (f", e.g. {example[0]}: {example[1][0]['detail']}" if example else ""),
    )
