"""Input fields of the account API beyond common.serializers' strict ones."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from account_svc.accounts.models import validate_phone_number
from common.serializers import StrictCharField, StrictSerializer


class PhoneNumberField(StrictCharField):
    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value:
            try:
                validate_phone_number(value)
            except DjangoValidationError as exc:
                raise serializers.ValidationError(list(exc.messages)) from None
        return value


class AccountInputSerializer(StrictSerializer):
    """An input serializer that refuses a body that is not an object or has unknown fields."""

    # Only the docstring is its own: it is the OpenAPI description of the account's bodies.
