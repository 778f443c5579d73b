"""Reads of the account service."""

from __future__ import annotations

from account_svc.accounts.models import Customer, normalize_email


def customer_get_active(*, customer_id: int) -> Customer | None:
    """The active customer with this id, or None."""
    return Customer.objects.filter(pk=customer_id, is_active=True).first()


def customer_get_by_email(*, email: str) -> Customer | None:
    return Customer.objects.filter(email=normalize_email(email)).first()


def customer_get(*, customer_id: int) -> Customer | None:
    """The customer with this id, active or not, or None."""
    return Customer.objects.filter(pk=customer_id).first()
