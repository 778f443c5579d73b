"""Helpers shared by the services' test suites."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.test import Client

from common.kafka.messages import MESSAGE_ID_HEADER, ConsumedMessage


def assert_healthy(client: Client) -> dict[str, Any]:
    """`/healthz` answers 200 with every one of the service's checks ok."""
    response = client.get("/healthz")
    body: dict[str, Any] = response.json()
    assert response.status_code == 200, body
    assert body["service"] == settings.SERVICE_NAME
    expected = {path.rsplit(".", 1)[-1].removeprefix("check_") for path in settings.HEALTH_CHECKS}
    assert body["checks"] == {name: "ok" for name in expected}
    return body


def kafka_message(
    value: bytes, *, key: str = "k", message_id: str | None = None, offset: int = 0
) -> ConsumedMessage:
    """A consumed message as a handler receives it, for handler tests."""
    headers = {MESSAGE_ID_HEADER: message_id.encode()} if message_id else {}
    return ConsumedMessage(
        key=key, value=value, topic="test", partition=0, offset=offset, headers=headers
    )
