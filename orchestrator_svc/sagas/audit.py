"""The consistency audit: do the participants' records agree with each finished saga?

For every saga that ended COMPLETED, FAILED or CANCELLED in a window, the audit asks each
participant, by its read-only gRPC method and one call per chunk of purchases, for the
purchase's reservation, order and payment, and checks them against the outcome:

- COMPLETED: the stock RESERVED, the order CREATED, the payment COMPLETED, and the
  order, the payment and the saga agreeing on the amount;
- FAILED or CANCELLED (every step done undone alike): the reservation RELEASED or none,
  the order CANCELLED or none, the payment REFUNDED or none.

NEEDS_ATTENTION sagas are skipped: a person already owns them. A discrepancy is logged
with its evidence, counted (metrics.AUDIT_DISCREPANCIES), and kept as an AuditFinding
(listed in the admin). The one that a compensation fixes, a FAILED saga whose purchase
still holds stock, is repaired by the same idempotent ReleaseInventory the saga uses
and recorded in the saga's step log; the others are reported for a person to judge.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import grpc
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from common.contract.events import PurchaseCreated, Step, parse_purchase_created
from common.grpc.errors import Outcome, classify_error, status_code_of
from common.kafka.messages import PoisonMessage
from orchestrator_svc.sagas import clients, metrics
from orchestrator_svc.sagas.conf import config
from orchestrator_svc.sagas.machine import retry_delay
from orchestrator_svc.sagas.models import (
    AuditFinding,
    AuditFindingKind,
    Saga,
    SagaState,
    SagaStepLog,
    StepLogStatus,
)

logger = logging.getLogger(__name__)

AUDITED_STATES = (SagaState.COMPLETED, SagaState.FAILED, SagaState.CANCELLED)
CHUNK_SIZE = 500  # purchases per read call: the participants' MAX_BATCH_ITEMS
REPAIR_NOTE = "audit repair: the FAILED purchase still held stock; released"
# A read that fails transiently is tried again after 1-2, 2-4, 4-8 s (the saga's own
# jittered backoff, machine.retry_delay): long enough to ride out a participant's
# restart; past that the chunk is left unaudited (the next run covers it).
READ_ATTEMPTS = 4
READ_RETRY_SECONDS = 1.0

RESERVED, RELEASED = "RESERVED", "RELEASED"
ORDER_CREATED, ORDER_CANCELLED = "CREATED", "CANCELLED"
PAYMENT_COMPLETED, PAYMENT_REFUNDED = "COMPLETED", "REFUNDED"


@dataclass(frozen=True)
class Record:
    """A participant's record of one purchase: its status and (order, payment) amount."""

    status: str
    amount: int | None = None


@dataclass(frozen=True)
class Records:
    """What the three participants answered for one purchase (None: they have none)."""

    reservation: Record | None
    order: Record | None
    payment: Record | None

    def evidence(self) -> dict[str, Any]:
        return {
            name: None if record is None else {"status": record.status, "amount": record.amount}
            for name, record in (
                ("reservation", self.reservation),
                ("order", self.order),
                ("payment", self.payment),
            )
        }


@dataclass(frozen=True)
class Discrepancy:
    kind: AuditFindingKind
    detail: str
    # Only stock held by a FAILED purchase has a compensation that fixes it.
    repairable: bool = False


class Participants(Protocol):
    """The participants' read methods (one call per chunk) and the one repair."""

    def reservations(self, purchase_ids: Sequence[str], timeout: float) -> dict[str, Record]: ...

    def orders(self, purchase_ids: Sequence[str], timeout: float) -> dict[str, Record]: ...

    def payments(self, purchase_ids: Sequence[str], timeout: float) -> dict[str, Record]: ...

    def release(self, purchase: PurchaseCreated, timeout: float) -> None: ...


class GrpcParticipants:
    """The participants through the edge (clients.py), as the saga calls them."""

    def reservations(self, purchase_ids: Sequence[str], timeout: float) -> dict[str, Record]:
        found = clients.reservations(purchase_ids, timeout)
        return {r.purchase_id: Record(r.state) for r in found}

    def orders(self, purchase_ids: Sequence[str], timeout: float) -> dict[str, Record]:
        found = clients.orders(purchase_ids, timeout)
        return {o.order_id: Record(o.status, o.amount) for o in found}

    def payments(self, purchase_ids: Sequence[str], timeout: float) -> dict[str, Record]:
        found = clients.payments(purchase_ids, timeout)
        return {p.payment_id: Record(p.status, p.amount) for p in found}

    def release(self, purchase: PurchaseCreated, timeout: float) -> None:
        clients.release_inventory(purchase, timeout)


@dataclass
class AuditReport:
    audited: int = 0
    findings: dict[str, list[Discrepancy]] = field(default_factory=dict)  # by purchase id
    repaired: list[str] = field(default_factory=list)  # purchase ids
    unaudited: int = 0  # sagas whose participants could not be asked

    @property
    def discrepancies(self) -> int:
        return sum(len(found) for found in self.findings.values())


# --------------------------------------------------------------------- selectors


def sagas_to_audit(
    *, since: datetime | None = None, purchase_ids: Iterable[str] | None = None
) -> Iterator[Saga]:
    """COMPLETED, FAILED and CANCELLED sagas that ended since `since` (their last change), or those
    of `purchase_ids`, oldest first, streamed."""
    sagas = Saga.objects.filter(state__in=AUDITED_STATES)
    if since is not None:
        sagas = sagas.filter(updated_at__gte=since)
    if purchase_ids is not None:
        sagas = sagas.filter(purchase_id__in=list(purchase_ids))
    return sagas.order_by("updated_at", "purchase_id").iterator(chunk_size=CHUNK_SIZE)


def discrepancies(*, state: str, amount: int, records: Records) -> list[Discrepancy]:
    """How the participants' `records` of one purchase disagree with its saga's outcome."""
    found: list[Discrepancy] = []
    reservation, order, payment = records.reservation, records.order, records.payment

    def status(record: Record | None) -> str:
        return "none" if record is None else record.status

    if state == SagaState.COMPLETED:
        if status(reservation) != RESERVED:
            found.append(
                Discrepancy(
                    AuditFindingKind.RESERVATION,
                    f"COMPLETED, but the reservation is {status(reservation)}, not {RESERVED}",
                )
            )
        if status(order) != ORDER_CREATED:
            found.append(
                Discrepancy(
                    AuditFindingKind.ORDER,
                    f"COMPLETED, but the order is {status(order)}, not {ORDER_CREATED}",
                )
            )
        if status(payment) != PAYMENT_COMPLETED:
            found.append(
                Discrepancy(
                    AuditFindingKind.PAYMENT,
                    f"COMPLETED, but the payment is {status(payment)}, not {PAYMENT_COMPLETED}",
                )
            )
        amounts = {
            "saga": amount,
            "order": None if order is None else order.amount,
            "payment": None if payment is None else payment.amount,
        }
        if order is not None and payment is not None and len(set(amounts.values())) > 1:
            found.append(
                Discrepancy(
                    AuditFindingKind.AMOUNT,
                    "COMPLETED, but the amounts differ: "
                    + ", ".join(f"{name} {value}" for name, value in amounts.items()),
                )
            )
    elif state in (SagaState.FAILED, SagaState.CANCELLED):
        for kind, record, undone in (
            (AuditFindingKind.RESERVATION, reservation, RELEASED),
            (AuditFindingKind.ORDER, order, ORDER_CANCELLED),
            (AuditFindingKind.PAYMENT, payment, PAYMENT_REFUNDED),
        ):
            if record is not None and record.status != undone:
                found.append(
                    Discrepancy(
                        kind,
                        f"{state}, but the {kind.lower()} is {record.status}, not {undone} or none",
                        repairable=kind == AuditFindingKind.RESERVATION,
                    )
                )
    return found


# ---------------------------------------------------------------------- services


def sagas_audit(
    *,
    since: datetime | None = None,
    purchase_ids: Iterable[str] | None = None,
    repair: bool = True,
    participants: Participants | None = None,
) -> AuditReport:
    """Audit the sagas that ended since `since` (or those of `purchase_ids`): record each
    discrepancy as an AuditFinding (logged, counted) and, with `repair`, release the stock
    a FAILED purchase still holds. Safe to run again: findings are kept once per saga and
    kind, and a release of released stock changes nothing."""
    participants = participants or GrpcParticipants()
    report = AuditReport()
    chunk: list[Saga] = []
    for saga in sagas_to_audit(since=since, purchase_ids=purchase_ids):
        chunk.append(saga)
        if len(chunk) == CHUNK_SIZE:
            _audit_chunk(chunk, participants, report, repair=repair)
            chunk = []
    if chunk:
        _audit_chunk(chunk, participants, report, repair=repair)
    metrics.AUDITED.inc(report.audited)
    return report


def _audit_chunk(
    sagas: Sequence[Saga], participants: Participants, report: AuditReport, *, repair: bool
) -> None:
    """One read call per participant for the chunk, then each saga's verdict."""
    timeout = config().step_deadline_seconds
    ids = [str(saga.purchase_id) for saga in sagas]
    try:
        reservations = _read(participants.reservations, ids, timeout)
        orders = _read(participants.orders, ids, timeout)
        payments = _read(participants.payments, ids, timeout)
    except grpc.RpcError as exc:
        logger.warning(
            "saga audit: %d sagas not audited: a participant did not answer (%s)",
            len(ids),
            status_code_of(exc),
        )
        report.unaudited += len(ids)
        return
    for saga in sagas:
        pid = str(saga.purchase_id)
        records = Records(reservations.get(pid), orders.get(pid), payments.get(pid))
        found = discrepancies(
            state=saga.state, amount=int(saga.payload.get("amount", 0)), records=records
        )
        report.audited += 1
        if not found:
            continue
        report.findings[pid] = found
        for discrepancy in found:
            logger.warning(
                "saga audit: purchase %s: %s; evidence %s",
                pid,
                discrepancy.detail,
                records.evidence(),
            )
            _finding_record(saga, discrepancy, records)
        repairable = repair and any(d.repairable for d in found)
        if repairable and _repair_release(saga, participants, timeout):
            report.repaired.append(pid)


def _read(
    read: Callable[[Sequence[str], float], dict[str, Record]], ids: Sequence[str], timeout: float
) -> dict[str, Record]:
    """`read(ids)`, tried again after a transient failure (READ_ATTEMPTS in all)."""
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            return read(ids, timeout)
        except grpc.RpcError as exc:
            if attempt == READ_ATTEMPTS or classify_error(exc) is not Outcome.RETRY:
                raise
            cap = READ_RETRY_SECONDS * 2 ** (READ_ATTEMPTS - 1)
            time.sleep(retry_delay(attempt, base=2 * READ_RETRY_SECONDS, cap=cap))
    raise AssertionError("unreachable")


def _finding_record(saga: Saga, discrepancy: Discrepancy, records: Records) -> None:
    """Keep the finding once per saga and kind; count it the first time it is seen."""
    now = timezone.now()
    with transaction.atomic():
        finding, created = AuditFinding.objects.get_or_create(
            saga=saga,
            kind=discrepancy.kind,
            defaults={
                "saga_state": saga.state,
                "detail": discrepancy.detail,
                "evidence": records.evidence(),
                "last_seen_at": now,
            },
        )
        if created:
            kind = discrepancy.kind.value
            metrics.count_on_commit(lambda: metrics.AUDIT_DISCREPANCIES.labels(kind).inc())
            return
        AuditFinding.objects.filter(pk=finding.pk).update(
            detail=discrepancy.detail,
            evidence=records.evidence(),
            last_seen_at=now,
            times_seen=F("times_seen") + 1,
        )


def _repair_release(saga: Saga, participants: Participants, timeout: float) -> bool:
    """Release the stock of a FAILED purchase by the saga's own idempotent compensation
    and record it in the step log (no event: the purchase stays FAILED). A call that
    fails is logged and left for the next audit (answers False)."""
    try:
        # The purchase as the engine reads it from the saga row (the event that started it).
        purchase = parse_purchase_created(saga.payload)
    except PoisonMessage as exc:
        logger.error("saga audit: %s: its stored purchase cannot be read: %s", saga.pk, exc)
        return False
    try:
        participants.release(purchase, timeout)
    except grpc.RpcError as exc:  # down or refusing: the next run tries again
        logger.warning("saga audit: could not release %s: %r", saga.purchase_id, exc)
        return False
    with transaction.atomic():
        SagaStepLog.objects.create(
            saga=saga,
            step=Step.UPDATE_PRODUCT_INVENTORY.value,
            status=StepLogStatus.ROLLBACK,
            attempt=1,
            error=REPAIR_NOTE,
        )
        AuditFinding.objects.filter(
            saga=saga, kind=AuditFindingKind.RESERVATION, repaired_at__isnull=True
        ).update(repaired_at=timezone.now())
        metrics.count_on_commit(lambda: metrics.AUDIT_REPAIRS.inc())
    logger.warning("saga audit: purchase %s: %s", saga.purchase_id, REPAIR_NOTE)
    return True


def report_to_dict(report: AuditReport) -> dict[str, Any]:
    """The report as plain JSON values (the command's --json, the bench)."""
    return {
        "audited": report.audited,
        "discrepancies": report.discrepancies,
        "repaired": report.repaired,
        "unaudited": report.unaudited,
        "findings": {
            pid: [{"kind": d.kind.value, "detail": d.detail} for d in found]
            for pid, found in report.findings.items()
        },
    }
