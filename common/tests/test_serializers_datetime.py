"""Every API answer writes times one way (common.serializers.api_datetime)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from common.serializers import api_datetime


def test_a_utc_time_ends_in_z_and_another_offset_is_written_in_utc() -> None:
    moment = datetime(2026, 12, 7, 10, 0, 5, 123456, tzinfo=UTC)
    assert api_datetime(moment) == "2026-12-07T10:00:05.123456Z"
    in_hanoi = moment.astimezone(timezone(timedelta(hours=7)))
    assert api_datetime(in_hanoi) == "2026-12-07T10:00:05.123456Z"
