"""`manage.py outbox_prune`: delete outbox rows published long ago."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Delete outbox rows published more than --days ago (unpublished rows stay)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=float, default=7.0)

    def handle(self, *args: Any, **options: Any) -> None:
        if not apps.is_installed("common.outbox"):
            raise CommandError('add "common.outbox" to INSTALLED_APPS to use the outbox')
        from common.outbox.services import outbox_prune

        deleted = outbox_prune(older_than=timedelta(days=options["days"]))
        self.stdout.write(f"deleted {deleted} published outbox rows")
