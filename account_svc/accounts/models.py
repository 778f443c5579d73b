"""The customer: the account service's user model, with email as the login."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

EMAIL_MAX_LENGTH = 254
NAME_MAX_LENGTH = 150
ADDRESS_MAX_LENGTH = 500
PHONE_MAX_LENGTH = 32

_PHONE_CHARS = re.compile(r"^\+?[0-9][0-9 ()\-.]*$")


def validate_phone_number(value: str) -> None:
    """An international-looking number: optional leading +, digits with common
    separators, 7 to 15 digits in all (E.164 allows at most 15)."""
    digits = sum(ch.isdigit() for ch in value)
    if not _PHONE_CHARS.match(value) or not 7 <= digits <= 15:
        raise ValidationError(
            "Enter a phone number of 7 to 15 digits, optionally starting with +.",
            code="invalid_phone_number",
        )


def normalize_email(email: str) -> str:
    """Emails are compared case-insensitively: one address, one account."""
    return email.strip().lower()


class CustomerManager(BaseUserManager["Customer"]):
    """What `createsuperuser` and the admin need; the API goes through services."""

    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> Customer:
        customer = self.model(email=normalize_email(email), **fields)
        customer.set_password(password)
        customer.full_clean(exclude=["password"])
        customer.save(using=self._db)
        return customer

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> Customer:
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class Customer(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(max_length=EMAIL_MAX_LENGTH, unique=True)
    first_name = models.CharField(max_length=NAME_MAX_LENGTH)
    last_name = models.CharField(max_length=NAME_MAX_LENGTH)
    address = models.CharField(max_length=ADDRESS_MAX_LENGTH, blank=True)
    phone_number = models.CharField(
        max_length=PHONE_MAX_LENGTH, blank=True, validators=[validate_phone_number]
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(
        default=False, help_text="May write products and categories, and log into the admin."
    )
    date_joined = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects: ClassVar[CustomerManager] = CustomerManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = ["first_name", "last_name"]

    class Meta:
        ordering = ("id",)
        constraints = [
            # Services store emails lowercased; this guards any other writer too.
            models.UniqueConstraint(Lower("email"), name="accounts_customer_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def get_short_name(self) -> str:
        return self.first_name
