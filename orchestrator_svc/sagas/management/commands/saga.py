"""`manage.py saga resume|compensate PURCHASE_ID...`: the admin's operator actions
from a shell (same service functions)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.errors import ApplicationError
from orchestrator_svc.sagas import services

ACTIONS = {
    "resume": services.saga_resume,
    "compensate": services.saga_compensation_retry,
}


class Command(BaseCommand):
    help = (
        "resume: hand stalled sagas to a worker now. "
        "compensate: retry the failed compensation of sagas in NEEDS_ATTENTION."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=sorted(ACTIONS))
        parser.add_argument("purchase_ids", nargs="+", metavar="PURCHASE_ID")

    def handle(self, *args: Any, **options: Any) -> None:
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
