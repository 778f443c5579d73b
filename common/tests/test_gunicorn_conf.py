"""The gunicorn hook that keeps a refused large body from poisoning a pooled connection."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from common.gunicorn_conf import pre_request


@pytest.mark.parametrize(
    ("headers", "closes"),
    [
        ([("CONTENT-LENGTH", str(70 * 1024))], True),  # more than gunicorn drains
        ([("CONTENT-LENGTH", str(64 * 1024))], False),
        ([("CONTENT-LENGTH", "120")], False),
        ([("TRANSFER-ENCODING", "chunked")], True),  # length unknown
        ([], False),
    ],
)
def test_only_a_body_gunicorn_may_not_drain_closes_the_connection(
    headers: list[tuple[str, str]], closes: bool
) -> None:
    request = SimpleNamespace(headers=headers, must_close=False)

    pre_request(None, request)

    assert request.must_close is closes
