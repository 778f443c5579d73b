"""`manage.py outbox_relay`: publish this service's outbox to Kafka until SIGTERM."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.kafka.shutdown import stop_event_on_signals


class Command(BaseCommand):
    help = "Relay committed outbox rows to Kafka (see common.outbox.relay)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--idle-timeout", type=float, default=1.0, help="seconds")

    def handle(self, *args: Any, **options: Any) -> None:
        if not apps.is_installed("common.outbox"):
            raise CommandError('add "common.outbox" to INSTALLED_APPS to use the outbox relay')
        from common.outbox.relay import run_relay

        run_relay(
            batch_size=options["batch_size"],
            idle_timeout=options["idle_timeout"],
            stop_event=stop_event_on_signals(),
        )
