"""`manage.py saga resume|compensate|cancel PURCHASE_ID...`: the admin's operator actions
from a shell (same service functions); `manage.py saga audit [--since ...]`: the
consistency audit (audit.py) over the sagas that ended in a window;
`manage.py saga list [--state STATE ...] [--limit N]` and `saga show PURCHASE_ID`:
where sagas stand and what each step did (selectors; docs/operations.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from common.errors import ApplicationError
from orchestrator_svc.sagas import audit, selectors, services
from orchestrator_svc.sagas.apis import SagaDetailOutputSerializer, SagaOutputSerializer
from orchestrator_svc.sagas.models import Saga, SagaState

ACTIONS = {
    "resume": services.saga_resume,
    "compensate": services.saga_compensation_retry,
    "cancel": services.saga_cancel,
}
DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
READS = ("list", "show")
ERROR_WIDTH = 60  # `list` shows the first line of the last error, cut to this
LIST_COLUMNS = ("PURCHASE_ID", "STATE", "STEP", "ATTEMPT", "AGE", "NEXT_RUN", "LAST_ERROR")
LOG_COLUMNS = ("AT", "STEP", "STATUS", "ATTEMPT", "DURATION", "ERROR")


def parse_since(value: str) -> datetime:
    """`--since`: a duration back from now (`90s`, `15m`, `2h`, `1d`) or an ISO 8601 time."""
    match = DURATION.match(value.strip())
    if match:
        seconds = float(match.group(1)) * UNIT_SECONDS[match.group(2)]
        return timezone.now() - timedelta(seconds=seconds)
    parsed = parse_datetime(value.strip())
    if parsed is None:
        raise CommandError(f"--since: {value!r} is neither a duration (15m) nor an ISO time.")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


def duration_text(seconds: float) -> str:
    """A duration for people: `850ms`, `42s`, `7m05s`, `3h12m`, `2d04h`."""
    seconds = abs(seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def next_run_text(saga: Saga, now: datetime) -> str:
    """When the saga is due next: `in 12s`, `overdue 3s`, or `-` once it ended."""
    if saga.is_final or saga.next_run_at is None:
        return "-"
    delta = (saga.next_run_at - now).total_seconds()
    return f"in {duration_text(delta)}" if delta >= 0 else f"overdue {duration_text(delta)}"


def deadline_text(saga: Saga, now: datetime) -> str:
    """The saga's deadline and how far it is: `... (in 58m12s)`, `(passed 3s ago)`."""
    if saga.deadline_at is None:
        return "-"
    delta = (saga.deadline_at - now).total_seconds()
    when = f"in {duration_text(delta)}" if delta >= 0 else f"passed {duration_text(delta)} ago"
    return f"{saga.deadline_at.isoformat()} ({when})"


def cancel_text(saga: Saga) -> str:
    """Who asked to cancel and when, or `-`."""
    if saga.cancel_requested_at is None:
        return "-"
    return f"asked by {saga.cancel_requested_by or '?'} at {saga.cancel_requested_at.isoformat()}"


def short_error(error: str, width: int = ERROR_WIDTH) -> str:
    """The first line of an error, cut to `width` characters."""
    first = error.strip().splitlines()[0] if error.strip() else "-"
    return first if len(first) <= width else first[: width - 3] + "..."


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> list[str]:
    """Rows as aligned columns under a header; the last column is not padded."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    return [
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]
        ).rstrip()
        for row in [header, *rows]
    ]


def state_text(saga: Saga) -> str:
    """The state, with why the saga stopped going forward (`FAILED:deadline`) or that a
    cancel waits for its next transition (`RUNNING:cancelling`); one word, a column."""
    if saga.stop_reason and saga.state != SagaState.CANCELLED:
        return f"{saga.state}:{saga.stop_reason}"
    if saga.cancel_requested_at is not None and not saga.is_final and not saga.stop_reason:
        return f"{saga.state}:cancelling"
    return str(saga.state)


def saga_row(saga: Saga, now: datetime) -> tuple[str, ...]:
    return (
        str(saga.purchase_id),
        state_text(saga),
        selectors.saga_current_step(saga),
        str(saga.attempt),
        duration_text((now - saga.created_at).total_seconds()),
        next_run_text(saga, now),
        short_error(saga.last_error),
    )


def saga_detail_lines(saga: Saga, now: datetime) -> list[str]:
    """`saga show`: the saga's row, then every step-log row with its time since the
    saga began, the call's duration and its error, then per step its calls and time."""
    logs = list(selectors.saga_step_logs(saga=saga))
    age = (now - saga.created_at).total_seconds()
    lines = [
        f"purchase     {saga.purchase_id}",
        f"customer     {saga.customer_id}",
        f"state        {state_text(saga)}",
        f"step         {selectors.saga_current_step(saga)}"
        f" (#{saga.step_index + 1}, {saga.phase}, attempt {saga.attempt})",
        f"created      {saga.created_at.isoformat()} ({duration_text(age)} ago)",
        f"updated      {saga.updated_at.isoformat()}",
        f"next run     {next_run_text(saga, now)}",
        f"deadline     {deadline_text(saga, now)}",
        f"cancel       {cancel_text(saga)}",
        f"lease        {saga.lease_owner or '-'}"
        + (
            f" until {saga.lease_until.isoformat()}"
            if saga.lease_owner and saga.lease_until
            else ""
        ),
        f"last error   {saga.last_error.strip() or '-'}",
        "",
    ]
    if not logs:
        return [*lines, "no step has begun"]
    rows = [
        (
            f"+{duration_text((log.created_at - saga.created_at).total_seconds())}",
            log.step,
            log.status,
            str(log.attempt),
            "-" if log.duration_ms is None else f"{log.duration_ms}ms",
            short_error(log.error, width=100) if log.error else "",
        )
        for log in logs
    ]
    lines += table(rows, LOG_COLUMNS)
    calls: dict[str, tuple[int, int]] = {}
    for log in logs:
        count, total = calls.get(log.step, (0, 0))
        calls[log.step] = (count + (log.duration_ms is not None), total + (log.duration_ms or 0))
    lines.append("")
    lines += [
        f"{step}: {count} calls, {total}ms in calls" for step, (count, total) in calls.items()
    ]
    elapsed = (logs[-1].created_at - saga.created_at).total_seconds()
    lines.append(f"{len(logs)} transitions over {duration_text(elapsed)}")
    return lines


class Command(BaseCommand):
    help = (
        "list: sagas, newest first, one a line (--state, --limit). "
        "show: one saga with its step log. "
        "resume: hand stalled sagas to a worker now. "
        "compensate: retry the failed compensation of sagas in NEEDS_ATTENTION. "
        "cancel: stop sagas going forward and undo their steps (they end CANCELLED). "
        "audit: check the sagas that ended in a window against the participants' records."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=sorted([*ACTIONS, *READS, "audit"]))
        parser.add_argument("purchase_ids", nargs="*", metavar="PURCHASE_ID")
        parser.add_argument(
            "--state",
            action="append",
            choices=SagaState.values,
            help="list: only sagas in this state (repeat for several).",
        )
        parser.add_argument(
            "--limit", type=int, default=50, help="list: at most this many sagas (50)."
        )
        parser.add_argument(
            "--since",
            default="1h",
            help="audit: sagas that ended since then: a duration (15m, 2h) or an ISO time.",
        )
        parser.add_argument(
            "--ids-file",
            help="audit: only the sagas whose purchase ids this file lists, one a line.",
        )
        parser.add_argument(
            "--no-repair", action="store_true", help="audit: report only, repair nothing."
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="audit, list, show: print JSON (list and show: the staff API's shapes).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "audit":
            self._audit(options)
            return
        if options["action"] == "list":
            self._list(options)
            return
        if options["action"] == "show":
            self._show(options)
            return
        if not options["purchase_ids"]:
            raise CommandError(f"{options['action']} needs at least one PURCHASE_ID.")
        action = ACTIONS[options["action"]]
        refused = []
        for purchase_id in options["purchase_ids"]:
            try:
                saga = action(purchase_id=purchase_id)
            except ApplicationError as error:
                refused.append(f"{purchase_id}: {error.message}")
                continue
            self.stdout.write(f"{saga.purchase_id}: {options['action']} -> {saga.state}")
        if refused:
            raise CommandError("; ".join(refused))

    def _list(self, options: dict[str, Any]) -> None:
        if options["purchase_ids"]:
            raise CommandError("list takes no PURCHASE_ID (saga show PURCHASE_ID shows one).")
        if options["limit"] < 1:
            raise CommandError("--limit must be at least 1.")
        sagas = selectors.saga_list()
        if options["state"]:
            sagas = sagas.filter(state__in=options["state"])
        page = list(sagas[: options["limit"]])
        if options["json"]:
            self.stdout.write(json.dumps(SagaOutputSerializer(page, many=True).data))
            return
        now = timezone.now()
        for line in table([saga_row(saga, now) for saga in page], LIST_COLUMNS):
            self.stdout.write(line)

    def _show(self, options: dict[str, Any]) -> None:
        if len(options["purchase_ids"]) != 1:
            raise CommandError("show needs exactly one PURCHASE_ID.")
        purchase_id = options["purchase_ids"][0]
        saga = selectors.saga_get(purchase_id=purchase_id)
        if saga is None:
            raise CommandError(f"no saga has the purchase id {purchase_id!r}.")
        if options["json"]:
            self.stdout.write(json.dumps(SagaDetailOutputSerializer(saga).data))
            return
        for line in saga_detail_lines(saga, timezone.now()):
            self.stdout.write(line)

    def _audit(self, options: dict[str, Any]) -> None:
        ids: list[str] | None = list(options["purchase_ids"]) or None
        if options["ids_file"]:
            with open(options["ids_file"], encoding="utf-8") as lines:
                ids = [*(ids or []), *filter(None, (line.strip() for line in lines))]
        since = None if ids is not None else parse_since(options["since"])
        report = audit.sagas_audit(since=since, purchase_ids=ids, repair=not options["no_repair"])
        if options["json"]:
            self.stdout.write(json.dumps(audit.report_to_dict(report)))
        else:
            for purchase_id, found in report.findings.items():
                for discrepancy in found:
                    self.stdout.write(f"{purchase_id}: {discrepancy.kind}: {discrepancy.detail}")
            self.stdout.write(
                f"audited {report.audited} sagas: {report.discrepancies} discrepancies,"
                f" {len(report.repaired)} repaired"
            )
        if report.unaudited:
            raise CommandError(
                f"{report.unaudited} sagas not audited: a participant did not answer"
            )
