"""What a saga client must do when a gRPC call fails: compensate or retry.

The split follows one question: did the callee look at this request and
deliberately refuse it, so that the same request will be refused again?

- BUSINESS (compensate): INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
  FAILED_PRECONDITION, OUT_OF_RANGE, PERMISSION_DENIED, UNAUTHENTICATED.
  Repeating the call cannot change the answer, so the saga undoes what it did.
  ALREADY_EXISTS is here because commands are idempotent on purchase id: a repeat
  answers success, so ALREADY_EXISTS can only mean a conflicting request.
- TRANSIENT (retry with backoff, within the step's budget): everything else.
  UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED and ABORTED are the textbook
  cases. INTERNAL, UNKNOWN, CANCELLED, UNIMPLEMENTED and DATA_LOSS are retried too:
  a Python servicer that raises (say, the database restarting) answers UNKNOWN,
  a proxy that drops a stream answers INTERNAL, and a route missing at the edge
  during a deploy answers UNIMPLEMENTED. Retrying those costs a bounded delay;
  compensating them could undo a step that would have succeeded. A genuine bug
  still ends safely: a forward step whose budget is spent compensates, and a
  compensation whose budget is spent leaves the saga in NEEDS_ATTENTION.

A second question matters when a saga stops (a cancel, its deadline): may the command
have taken effect? Only an UNAVAILABLE that the edge answered without a server behind
it, or a connection that never opened, proves the request never reached the callee
(`never_reached`); a timeout, a reset or a 502 may have let it through.
"""

from __future__ import annotations

from enum import StrEnum

import grpc


class Outcome(StrEnum):
    """The saga's next move after a failed call."""

    COMPENSATE = "compensate"
    RETRY = "retry"


BUSINESS_CODES: frozenset[grpc.StatusCode] = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)

TRANSIENT_CODES: frozenset[grpc.StatusCode] = (
    frozenset(code for code in grpc.StatusCode if code is not grpc.StatusCode.OK) - BUSINESS_CODES
)


def classify(code: grpc.StatusCode) -> Outcome:
    """Map a non-OK status code to COMPENSATE (business) or RETRY (transient)."""
    if code is grpc.StatusCode.OK:
        raise ValueError("StatusCode.OK is not a failure and has no outcome")
    return Outcome.COMPENSATE if code in BUSINESS_CODES else Outcome.RETRY


_BY_NUMBER: dict[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}


def status_code_from_number(number: int) -> grpc.StatusCode:
    """The StatusCode whose wire number is `number` (UNKNOWN for one grpc does not know):
    the inverse of what a batch reply carries per item (ItemResult.code)."""
    return _BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)


def status_code_of(error: BaseException) -> grpc.StatusCode | None:
    """The status code a failed call carries; None for one without a code (never sent)."""
    code_of = getattr(error, "code", None)
    code = code_of() if callable(code_of) else None
    return code if isinstance(code, grpc.StatusCode) else None


def details_of(error: BaseException) -> str:
    """The status message a failed call carries ("" without one)."""
    details = getattr(error, "details", None)
    return str(details() or "") if callable(details) else ""


class CallFailed(grpc.RpcError):
    """A failed call as a stub raises one, made of its status code and details: how an
    item of a batch reply that failed is answered (its single call would have raised
    the same), and what tests fake a failure with."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def classify_error(error: grpc.RpcError) -> Outcome:
    """Classify a raised RpcError; one without a code (never sent) is transient."""
    code = status_code_of(error)
    if code is None:
        return Outcome.RETRY
    return classify(code)


# The details gRPC gives an UNAVAILABLE that never left for the callee: the edge answered
# 503 (no server to send it to), or no connection could be opened at all.
UNREACHED_MARKERS = (
    "Received http2 header with status: 503",
    "failed to connect to all addresses",
    "Connection refused",
)


def never_reached(error: BaseException) -> bool:
    """Whether a failed call proves its request never reached the callee, so the
    command cannot have taken effect."""
    return status_code_of(error) is grpc.StatusCode.UNAVAILABLE and any(
        marker in details_of(error) for marker in UNREACHED_MARKERS
    )
