"""`manage.py kafka_consume <name>`: run one consumer of the registry until SIGTERM."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from common.contract.consumers import CONSUMERS
from common.kafka.consumer import COMMIT_INTERVAL_SECONDS, run_consumer
from common.kafka.shutdown import stop_event_on_signals


class Command(BaseCommand):
    help = "Consume a Kafka topic with a registered handler (see common.contract.consumers)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", choices=sorted(CONSUMERS), help="registered consumer")
        parser.add_argument("--max-batch", type=int, default=None, help="messages per batch")
        parser.add_argument("--poll-timeout", type=float, default=1.0, help="seconds")
        parser.add_argument(
            "--commit-interval",
            type=float,
            default=COMMIT_INTERVAL_SECONDS,
            help="seconds between offset commits while messages keep coming (0: every batch)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        run_consumer(
            CONSUMERS[options["name"]],
            stop_event=stop_event_on_signals(),
            max_batch=options["max_batch"],
            poll_timeout=options["poll_timeout"],
            commit_interval=options["commit_interval"],
        )
