"""`Idempotency-Key` on POST /api/v1/purchases: a retried request gets the first answer.

A key is scoped to the customer who sends it and bound for good to the purchase its
first request created (there is no expiry: keys are cheap and a purchase is kept).
The same key with the same body answers the stored first response (status and body)
and creates nothing; the same key with a different body answers 422, because
replaying the first answer would silently ignore what the client now asks for.
Only a request that created a purchase binds its key: a refused one (4xx, 503)
stores nothing, so a retry is judged afresh.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol, TypeVar

from rest_framework.request import Request

from common.errors import ApplicationError, ErrorCode
from purchase_svc.purchases.models import IDEMPOTENCY_KEY_MAX_LENGTH

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


class IdempotencyKeyReused(ApplicationError):
    """The key was first used with another request body: 422 Unprocessable Content.

    ErrorCode has no 422 code yet, so this one refusal overrides the status of
    CONFLICT (the closest meaning) and says why in `details.reason`.
    """

    def __init__(self, key: str) -> None:
        super().__init__(
            ErrorCode.CONFLICT,
            f"The {HEADER} was already used with a different request body.",
            {"reason": "idempotency_key_reused", "idempotency_key": key},
        )

    @property
    def http_status(self) -> int:
        return 422


class KeptAnswer(Protocol):
    """A row that keeps the first answer to a keyed request (a purchase, a cancel key)."""

    request_fingerprint: str


KeptT = TypeVar("KeptT", bound=KeptAnswer)


def replay_of(earlier: KeptT | None, *, key: str, fingerprint: str) -> KeptT | None:
    """`earlier`, the row that keeps the first answer to `key`, to answer again (None:
    the key is new). IdempotencyKeyReused (422) when that first request was another."""
    if earlier is not None and earlier.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused(key)
    return earlier


def idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key, or None; 400 if present but not 1-128 visible ASCII
    characters."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > IDEMPOTENCY_KEY_MAX_LENGTH or not _visible_ascii(key):
        raise ApplicationError(
            ErrorCode.INVALID_INPUT,
            f"{HEADER} must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} visible ASCII characters.",
            {"headers": {HEADER: ["Invalid value."]}},
        )
    return key


def _visible_ascii(value: str) -> bool:
    return all(" " <= ch <= "~" for ch in value)


def request_fingerprint(body: Any) -> str:
    """sha256 of the body as canonical JSON: key order and whitespace do not matter."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
