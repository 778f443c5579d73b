"""Strict input parsing for the REST APIs: unknown fields and wrong JSON types answer 400.

DRF, by default, ignores fields it does not know, turns a number into a string for a
CharField and takes "12", 12.0 and true for an IntegerField. An API that silently
drops or coerces input hides client bugs, so the services' input serializers build on
these classes, which refuse both.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rest_framework import serializers


def _refuse_over_max_length(field: serializers.CharField, data: str) -> None:
    """`max_length` counts what the client sent: DRF checks it after trimming whitespace,
    so 300 characters of which 250 are trailing blanks would pass a 100-character field
    that the API's schema (maxLength) says refuses them."""
    if field.max_length is not None and len(data) > field.max_length:
        field.fail("max_length", max_length=field.max_length)


class StrictCharField(serializers.CharField):
    """Only a JSON string (DRF would turn 42 into "42"), at most `max_length` as sent."""

    default_error_messages = {"invalid": "Must be a string."}

    def run_validation(self, data: Any = serializers.empty) -> Any:
        if isinstance(data, str):
            _refuse_over_max_length(self, data)
        return super().run_validation(data)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class StrictEmailField(serializers.EmailField):
    """Only a JSON string, and a valid email address."""

    default_error_messages = {
        "invalid": "Enter a valid email address.",
        "not_a_string": "Must be a string.",
    }

    def run_validation(self, data: Any = serializers.empty) -> Any:
        if isinstance(data, str):
            _refuse_over_max_length(self, data)
        return super().run_validation(data)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return str(super().to_internal_value(data))


class StrictIntegerField(serializers.IntegerField):
    """Only a JSON integer (DRF would take "12", 12.0 and true)."""

    default_error_messages = {"invalid": "Must be an integer."}

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class StrictSerializer(serializers.Serializer):
    """A body serializer that refuses unknown fields instead of ignoring them."""

    # (Its docstring is the OpenAPI description of every input serializer without its own.)
    unknown_field_message = "This field is not allowed."

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [self.unknown_field_message] for name in unknown}
                )
        return super().to_internal_value(data)


def api_datetime(moment: datetime) -> str:
    """A time as every API answer writes it: ISO 8601 in UTC, ending in `Z`, as DRF's
    DateTimeField writes it under our TIME_ZONE (UTC). For the dicts a service caches and
    answers as they are, so they agree with its serializers' output."""
    return moment.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"
