"""The consistency audit: finished sagas checked against what the participants say.

The participants are a fake (`FakeParticipants`) answering the audit's read calls from
dicts a test sets, and recording each call; the live test is in
integration/test_live_audit.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from io import StringIO
from typing import Any

import grpc
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from common.contract.events import PurchaseCreated
from orchestrator_svc.sagas import audit, tasks
from orchestrator_svc.sagas.audit import Record
from orchestrator_svc.sagas.models import AuditFinding, Saga, SagaState, SagaStepLog
from orchestrator_svc.tests.fakes import FakeRpcError, FakeServices, run_to_rest

pytestmark = pytest.mark.django_db

AMOUNT = 24460  # the amount of fakes.purchase_event


class FakeParticipants:
    """The product, order and payment services' read methods and ReleaseInventory."""

    def __init__(self) -> None:
        self.reservation: dict[str, Record] = {}
        self.order: dict[str, Record] = {}
        self.payment: dict[str, Record] = {}
        self.calls: list[tuple[str, int]] = []  # (method, purchases asked about)
        self.released: list[str] = []
        self.release_fails = False
        self.read_failures: list[grpc.StatusCode] = []  # the next reads fail with these

    def consistent(self, purchase_id: str, state: str) -> None:
        """Records that agree with a saga ended in `state`."""
        if state == SagaState.COMPLETED:
            self.reservation[purchase_id] = Record("RESERVED")
            self.order[purchase_id] = Record("CREATED", AMOUNT)
            self.payment[purchase_id] = Record("COMPLETED", AMOUNT)
        else:
            self.reservation[purchase_id] = Record("RELEASED")
            self.order[purchase_id] = Record("CANCELLED", AMOUNT)

    def _answer(
        self, name: str, records: dict[str, Record], ids: Sequence[str]
    ) -> dict[str, Record]:
        self.calls.append((name, len(ids)))
        if self.read_failures:
            raise FakeRpcError(self.read_failures.pop(0))
        return {pid: records[pid] for pid in ids if pid in records}

    def reservations(self, purchase_ids: Sequence[str], timeout: float) -> dict[str, Record]:
        return self._answer("reservations", self.reservation, purchase_ids)

    def orders(self, purchase_ids: Sequence[str], timeout: float) -> dict[str, Record]:
        return self._answer("orders", self.order, purchase_ids)

    def payments(self, purchase_ids: Sequence[str], timeout: float) -> dict[str, Record]:
        return self._answer("payments", self.payment, purchase_ids)

    def release(self, purchase: PurchaseCreated, timeout: float) -> None:
        if self.release_fails:
            raise FakeRpcError(grpc.StatusCode.UNAVAILABLE)
        self.released.append(purchase.purchase_id)
        self.reservation[purchase.purchase_id] = Record("RELEASED")


@pytest.fixture
def participants(monkeypatch: pytest.MonkeyPatch) -> FakeParticipants:
    """The fake, also for the command and the task (which build their own); a failed
    read is tried again at once."""
    fake = FakeParticipants()
    monkeypatch.setattr(audit, "GrpcParticipants", lambda: fake)
    monkeypatch.setattr(audit, "READ_RETRY_SECONDS", 0)
    return fake


@pytest.fixture
def finished(
    start_saga: Callable[..., str], participants: FakeParticipants
) -> Callable[[str], str]:
    """A saga run to COMPLETED or FAILED, with participant records that agree."""

    def finish(state: str) -> str:
        purchase_id = start_saga()
        fake = FakeServices()
        if state == SagaState.FAILED:
            fake.fail("create_payment", grpc.StatusCode.FAILED_PRECONDITION)
        assert run_to_rest(purchase_id, fake).state == state
        participants.consistent(purchase_id, state)
        return purchase_id

    return finish


def run(participants: FakeParticipants, **kwargs: Any) -> audit.AuditReport:
    since = timezone.now() - timedelta(minutes=15)
    return audit.sagas_audit(since=since, participants=participants, **kwargs)


def kinds(report: audit.AuditReport, purchase_id: str) -> list[str]:
    return [d.kind.value for d in report.findings.get(purchase_id, [])]


def test_sagas_that_agree_with_their_participants_have_no_findings(
    finished: Callable[[str], str], participants: FakeParticipants
) -> None:
    finished(SagaState.COMPLETED)
    failed = finished(SagaState.FAILED)
    del participants.order[failed]  # a failed saga may have no order at all

    report = run(participants)

    assert (report.audited, report.discrepancies, report.repaired) == (2, 0, [])
    assert not AuditFinding.objects.exists()


def test_participants_are_asked_once_per_chunk_not_once_per_purchase(
    finished: Callable[[str], str],
    participants: FakeParticipants,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(audit, "CHUNK_SIZE", 2)
    for _ in range(5):
        finished(SagaState.COMPLETED)

    report = run(participants)

    assert report.audited == 5
    assert sorted(participants.calls) == sorted(
        [(name, n) for name in ("reservations", "orders", "payments") for n in (2, 2, 1)]
    )


@pytest.mark.parametrize(
    ("records", "kind"),
    [
        ({"reservation": None}, "RESERVATION"),
        ({"reservation": Record("RELEASED")}, "RESERVATION"),
        ({"order": Record("CANCELLED", AMOUNT)}, "ORDER"),
        ({"order": None}, "ORDER"),
        ({"payment": Record("REFUNDED", AMOUNT)}, "PAYMENT"),
        ({"payment": Record("COMPLETED", AMOUNT - 1)}, "AMOUNT"),
    ],
)
def test_a_completed_saga_needs_its_stock_order_and_payment_at_one_amount(
    finished: Callable[[str], str],
    participants: FakeParticipants,
    records: dict[str, Record | None],
    kind: str,
) -> None:
    purchase_id = finished(SagaState.COMPLETED)
    for name, record in records.items():
        table = getattr(participants, name)
        if record is None:
            del table[purchase_id]
        else:
            table[purchase_id] = record

    report = run(participants)

    assert kinds(report, purchase_id) == [kind]
    finding = AuditFinding.objects.get(saga_id=purchase_id)
    assert (finding.kind, finding.saga_state, finding.repaired_at) == (kind, "COMPLETED", None)
    assert participants.released == []  # reported, not repaired


def test_a_failed_saga_that_still_holds_stock_is_released_and_the_repair_logged(
    finished: Callable[[str], str], participants: FakeParticipants
) -> None:
    purchase_id = finished(SagaState.FAILED)
    participants.reservation[purchase_id] = Record("RESERVED")

    report = run(participants)

    assert kinds(report, purchase_id) == ["RESERVATION"]
    assert report.repaired == [purchase_id]
    assert participants.released == [purchase_id]
    finding = AuditFinding.objects.get(saga_id=purchase_id)
    assert finding.repaired_at is not None
    assert finding.evidence["reservation"] == {"status": "RESERVED", "amount": None}
    repair = SagaStepLog.objects.filter(saga_id=purchase_id).order_by("id").last()
    assert repair is not None
    assert (repair.step, repair.status, repair.error) == (
        "UPDATE_PRODUCT_INVENTORY",
        "ROLLBACK",
        audit.REPAIR_NOTE,
    )
    assert Saga.objects.get(pk=purchase_id).state == SagaState.FAILED

    # The next run finds the stock released: nothing new.
    again = run(participants)
    assert (again.discrepancies, again.repaired) == (0, [])


def test_a_repair_that_cannot_be_made_now_is_left_for_the_next_run(
    finished: Callable[[str], str], participants: FakeParticipants
) -> None:
    purchase_id = finished(SagaState.FAILED)
    participants.reservation[purchase_id] = Record("RESERVED")
    participants.release_fails = True

    first = run(participants)
    participants.release_fails = False
    second = run(participants)

    assert (first.repaired, second.repaired) == ([], [purchase_id])
    finding = AuditFinding.objects.get(saga_id=purchase_id)
    assert finding.times_seen == 2 and finding.repaired_at is not None


@pytest.mark.parametrize(
    ("name", "record", "kind"),
    [
        ("order", Record("CREATED", AMOUNT), "ORDER"),
        ("payment", Record("COMPLETED", AMOUNT), "PAYMENT"),
    ],
)
def test_a_failed_saga_with_a_live_order_or_payment_is_reported_not_repaired(
    finished: Callable[[str], str],
    participants: FakeParticipants,
    name: str,
    record: Record,
    kind: str,
) -> None:
    purchase_id = finished(SagaState.FAILED)
    getattr(participants, name)[purchase_id] = record

    report = run(participants)

    assert kinds(report, purchase_id) == [kind]
    assert report.repaired == [] and participants.released == []
    assert not SagaStepLog.objects.filter(saga_id=purchase_id, error=audit.REPAIR_NOTE).exists()


def test_without_repair_a_held_reservation_is_only_reported(
    finished: Callable[[str], str], participants: FakeParticipants
) -> None:
    purchase_id = finished(SagaState.FAILED)
    participants.reservation[purchase_id] = Record("RESERVED")

    report = run(participants, repair=False)

    assert kinds(report, purchase_id) == ["RESERVATION"]
    assert participants.released == []


def test_a_finding_seen_again_is_kept_once(
    finished: Callable[[str], str], participants: FakeParticipants
) -> None:
    purchase_id = finished(SagaState.COMPLETED)
    participants.order[purchase_id] = Record("CANCELLED", AMOUNT)

    run(participants)
    run(participants)

    finding = AuditFinding.objects.get(saga_id=purchase_id)
    assert finding.times_seen == 2


def test_a_participant_restarting_is_ridden_out(
    finished: Callable[[str], str], participants: FakeParticipants
) -> None:
    purchase_id = finished(SagaState.COMPLETED)
    participants.order[purchase_id] = Record("CANCELLED", AMOUNT)
    participants.read_failures = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED]

    report = run(participants)

    assert (report.audited, report.unaudited, kinds(report, purchase_id)) == (1, 0, ["ORDER"])


def test_a_participant_that_stays_down_leaves_the_chunk_unaudited_and_the_command_fails(
    finished: Callable[[str], str], participants: FakeParticipants
) -> None:
    finished(SagaState.COMPLETED)
    participants.read_failures = [grpc.StatusCode.UNAVAILABLE] * audit.READ_ATTEMPTS

    report = run(participants)

    assert (report.audited, report.unaudited, report.discrepancies) == (0, 1, 0)
    participants.read_failures = [grpc.StatusCode.UNAVAILABLE] * audit.READ_ATTEMPTS
    with pytest.raises(CommandError, match="1 sagas not audited"):
        call_command("saga", "audit", "--since", "15m", stdout=StringIO())


def test_only_sagas_that_ended_in_the_window_are_audited(
    finished: Callable[[str], str], participants: FakeParticipants
) -> None:
    old = finished(SagaState.COMPLETED)
    Saga.objects.filter(pk=old).update(updated_at=timezone.now() - timedelta(hours=2))
    participants.order.pop(old)  # would be a finding, were it in the window
    recent = finished(SagaState.COMPLETED)

    report = run(participants)

    assert report.audited == 1 and report.discrepancies == 0
    assert audit.sagas_audit(purchase_ids=[old], participants=participants).discrepancies == 1
    assert recent not in audit.sagas_audit(purchase_ids=[old], participants=participants).findings


def test_sagas_still_running_or_needing_attention_are_not_audited(
    start_saga: Callable[..., str], participants: FakeParticipants
) -> None:
    start_saga()  # STARTED
    stuck = start_saga()
    fake = FakeServices()
    fake.fail("create_payment", grpc.StatusCode.FAILED_PRECONDITION)
    fake.fail_always("release_inventory", grpc.StatusCode.FAILED_PRECONDITION)
    assert run_to_rest(stuck, fake).state == SagaState.NEEDS_ATTENTION

    assert run(participants).audited == 0


def test_the_command_reports_findings_and_refuses_a_bad_window(
    finished: Callable[[str], str], participants: FakeParticipants
) -> None:
    purchase_id = finished(SagaState.FAILED)
    participants.payment[purchase_id] = Record("COMPLETED", AMOUNT)
    out = StringIO()

    call_command("saga", "audit", "--since", "15m", "--json", stdout=out)

    report = json.loads(out.getvalue())
    assert report["audited"] == 1 and report["discrepancies"] == 1
    assert report["findings"][purchase_id][0]["kind"] == "PAYMENT"
    with pytest.raises(CommandError, match="neither a duration"):
        call_command("saga", "audit", "--since", "yesterday-ish")
    with pytest.raises(CommandError, match="PURCHASE_ID"):
        call_command("saga", "resume")


def test_the_command_audits_the_purchases_of_an_ids_file(
    finished: Callable[[str], str], participants: FakeParticipants, tmp_path: Any
) -> None:
    listed = finished(SagaState.COMPLETED)
    other = finished(SagaState.COMPLETED)
    participants.order.pop(other)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(f"{listed}\n\n")
    out = StringIO()

    call_command("saga", "audit", "--ids-file", str(ids_file), "--no-repair", stdout=out)

    assert out.getvalue().strip() == "audited 1 sagas: 0 discrepancies, 0 repaired"


def test_the_beat_task_audits_the_recent_window(
    finished: Callable[[str], str], participants: FakeParticipants, settings: Any
) -> None:
    settings.SAGA_AUDIT_WINDOW_SECONDS = 900
    purchase_id = finished(SagaState.FAILED)
    participants.reservation[purchase_id] = Record("RESERVED")

    assert tasks.audit_recent_sagas() == 1
    assert participants.released == [purchase_id]


def test_the_admin_lists_findings_and_shows_them_on_the_saga(
    admin_client: Client, finished: Callable[[str], str], participants: FakeParticipants
) -> None:
    purchase_id = finished(SagaState.COMPLETED)
    participants.payment[purchase_id] = Record("COMPLETED", AMOUNT + 5)
    run(participants)

    listing = admin_client.get(reverse("admin:sagas_auditfinding_changelist"))
    saga_page = admin_client.get(reverse("admin:sagas_saga_change", args=[purchase_id]))

    assert listing.status_code == 200 and purchase_id in listing.content.decode()
    assert saga_page.status_code == 200
    assert "the amounts differ" in saga_page.content.decode()
