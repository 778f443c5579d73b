"""`manage.py saga resume|compensate PURCHASE_ID...`: the admin's operator actions
from a shell (same service functions); `manage.py saga audit [--since ...]`: the
consistency audit (audit.py) over the sagas that ended in a window."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from common.errors import ApplicationError
from orchestrator_svc.sagas import audit, services

ACTIONS = {
    "resume": services.saga_resume,
    "compensate": services.saga_compensation_retry,
}
DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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


class Command(BaseCommand):
    help = (
        "resume: hand stalled sagas to a worker now. "
        "compensate: retry the failed compensation of sagas in NEEDS_ATTENTION. "
        "audit: check the sagas that ended in a window against the participants' records."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=sorted([*ACTIONS, "audit"]))
        parser.add_argument("purchase_ids", nargs="*", metavar="PURCHASE_ID")
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
            "--json", action="store_true", help="audit: print the report as one JSON object."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "audit":
            self._audit(options)
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
