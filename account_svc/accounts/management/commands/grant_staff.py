"""`manage.py grant_staff EMAIL` (`make staff EMAIL=...`): grant the staff role.

Staff may write products and categories (the access token's `is_staff` claim,
from the next login or refresh on) and view all six admins; `--superuser`
(`make superuser EMAIL=...`) also changes records and runs actions there. The admins
ask for the roles on every page, so a grant or a revoke shows there at once
(docs/adr/0019). Idempotent.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from account_svc.accounts.services import customer_staff_set
from common.errors import ApplicationError


class Command(BaseCommand):
    help = "Grant (or with --revoke, take back) the staff role of the account with EMAIL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument(
            "--superuser", action="store_true", help="also every permission in the admin"
        )
        parser.add_argument("--revoke", action="store_true", help="take the staff role back")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            customer = customer_staff_set(
                email=options["email"],
                is_staff=not options["revoke"],
                superuser=options["superuser"],
            )
        except ApplicationError as error:
            raise CommandError(error.message) from error
        role = "is staff" if customer.is_staff else "is no longer staff"
        extra = " and superuser" if customer.is_superuser else ""
        self.stdout.write(
            f"{customer.email} (customer {customer.pk}) {role}{extra}; "
            "the next login or token refresh carries it."
        )
