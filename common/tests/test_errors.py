"""common.errors without Django settings: the code tables and the gRPC abort.

The DRF handler is exercised with Django configured in
account_svc/tests/test_error_handler.py and through every service's API.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from common.errors import (
    GRPC_ERROR_CODE_METADATA,
    GRPC_STATUS,
    HTTP_STATUS,
    ApplicationError,
    ErrorCode,
    abort_grpc,
)
from common.grpc.errors import BUSINESS_CODES, TRANSIENT_CODES


def test_every_code_maps_to_an_http_and_a_grpc_status() -> None:
    assert set(HTTP_STATUS) == set(ErrorCode) == set(GRPC_STATUS)
    assert all(400 <= status < 600 for status in HTTP_STATUS.values())


@pytest.mark.parametrize(
    ("code", "http", "grpc_status"),
    [
        (ErrorCode.INVALID_INPUT, 400, grpc.StatusCode.INVALID_ARGUMENT),
        (ErrorCode.UNAUTHENTICATED, 401, grpc.StatusCode.UNAUTHENTICATED),
        (ErrorCode.PERMISSION_DENIED, 403, grpc.StatusCode.PERMISSION_DENIED),
        (ErrorCode.NOT_FOUND, 404, grpc.StatusCode.NOT_FOUND),
        (ErrorCode.CONFLICT, 409, grpc.StatusCode.ALREADY_EXISTS),
        (ErrorCode.INSUFFICIENT_STOCK, 409, grpc.StatusCode.FAILED_PRECONDITION),
        (ErrorCode.FAILED_PRECONDITION, 409, grpc.StatusCode.FAILED_PRECONDITION),
        (ErrorCode.PAYLOAD_TOO_LARGE, 413, grpc.StatusCode.INVALID_ARGUMENT),
        (ErrorCode.THROTTLED, 429, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (ErrorCode.INTERNAL, 500, grpc.StatusCode.INTERNAL),
        (ErrorCode.UNAVAILABLE, 503, grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_an_application_error_knows_its_statuses(
    code: ErrorCode, http: int, grpc_status: grpc.StatusCode
) -> None:
    error = ApplicationError(code, "nope", {"id": 7})
    assert (error.http_status, error.grpc_status) == (http, grpc_status)
    assert error.as_body() == {
        "error": {"code": code.value, "message": "nope", "details": {"id": 7}}
    }


def test_business_refusals_compensate_and_only_transient_faults_retry() -> None:
    # The saga decides by gRPC status (common.grpc.errors): a 4xx-like refusal must
    # never map to a code it would retry.
    transient = {ErrorCode.THROTTLED, ErrorCode.INTERNAL, ErrorCode.UNAVAILABLE}
    for code, status in GRPC_STATUS.items():
        if code in transient:
            assert status in TRANSIENT_CODES, code
        elif code is not ErrorCode.METHOD_NOT_ALLOWED:
            assert status in BUSINESS_CODES, code


class FakeContext:
    def __init__(self) -> None:
        self.trailing: Any = None

    def set_trailing_metadata(self, metadata: Any) -> None:
        self.trailing = metadata

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise RuntimeError((code, details))


def test_abort_grpc_sends_the_mapped_status_and_the_code_as_metadata() -> None:
    context = FakeContext()

    with pytest.raises(RuntimeError) as aborted:
        abort_grpc(context, ApplicationError(ErrorCode.INSUFFICIENT_STOCK, "only 2 left"))  # type: ignore[arg-type]

    assert aborted.value.args[0] == (grpc.StatusCode.FAILED_PRECONDITION, "only 2 left")
    assert dict(context.trailing) == {GRPC_ERROR_CODE_METADATA: "insufficient_stock"}
