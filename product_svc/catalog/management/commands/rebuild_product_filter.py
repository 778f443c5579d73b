"""`manage.py rebuild_product_filter`: rebuild the cuckoo filter of product ids.

Run it after restoring the database or losing the cache cluster's data; the
service also rebuilds the filter at startup when it is missing
(services.product_filter_ensure). Safe to run while the service serves reads.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from product_svc.catalog import services


class Command(BaseCommand):
    help = "Rebuild the cuckoo filter of product ids from the database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="only rebuild when the filter does not exist (as the service does at startup)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_missing"]:
            count = services.product_filter_ensure()
            if count is None:
                self.stdout.write("product filter present; nothing to do")
                return
        else:
            count = services.product_filter_rebuild()
        self.stdout.write(f"product filter rebuilt with {count} ids")
