"""Strict input parsing for the API: unknown fields and wrong types answer 400.

DRF, by default, ignores fields it does not know and turns a number into a
string for a CharField. An API that silently drops or coerces input hides client
bugs, so input serializers here refuse both.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from account_svc.accounts.models import validate_phone_number


class StrictCharField(serializers.CharField):
    """A CharField that accepts only JSON strings."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class StrictEmailField(serializers.EmailField):
    default_error_messages = {
        "invalid": "Enter a valid email address.",
        "not_a_string": "Must be a string.",
    }

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return str(super().to_internal_value(data))


class PhoneNumberField(StrictCharField):
    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value:
            try:
                validate_phone_number(value)
            except DjangoValidationError as exc:
                raise serializers.ValidationError(list(exc.messages)) from None
        return value


class StrictInputSerializer(serializers.Serializer):
    """An input serializer that refuses a body that is not an object or has unknown fields."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["This field is not allowed."] for name in unknown}
                )
        return super().to_internal_value(data)
