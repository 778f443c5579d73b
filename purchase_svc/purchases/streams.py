"""Server-Sent Events of one purchase: its state, every step change, then its final status.

The wire format (text/event-stream), in order:

    retry: 3000                                    reconnect delay for EventSource
    event: state     data: {id, status, amount, currency_code}       once, on connect
    id: <n>  event: step  data: {step, status, purchase_status, sequence, attempt,
                                 error, at}       each step already recorded, then
                                                  each new one as it is recorded
    event: status    data: {id, status, reason}   the final status (COMPLETED, FAILED,
                                                  NEEDS_ATTENTION or CANCELLED) and why
                                                  ("cancelled", "deadline" or ""); then
                                                  the stream ends
    : keepalive                                   a comment every ~15 s of silence

The events tell the story in its order, the final one last: `state` gives the status
where the stream starts (PENDING, how every purchase begins, or what the steps before
`Last-Event-ID` made it), not the current one, which the steps and `status` then reach.
Steps go out in the saga's order (sequence, then arrival), also when the consumer
recorded one late. A step's `id` is the row id up to which every step has been sent
(its own id when the steps arrived in order): EventSource sends it back as
`Last-Event-ID` when it reconnects, and the stream resumes after it without skipping
one. A stream that reaches its time limit (PURCHASE_SSE_MAX_SECONDS) ends without a
`status` event; the client reconnects.

Each open stream holds one gunicorn thread for its whole life, so a process opens at
most PURCHASE_SSE_MAX_STREAMS at once (`StreamSlots`); beyond that the view answers
503 and the process keeps threads for the rest of the API. A stream whose client went
away ends within a poll interval (`socket_closed_by_peer`), not at its next write.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from typing import Any

from django.db import DatabaseError

from common.contract.events import PurchaseStatus
from common.serializers import api_datetime
from purchase_svc.purchases import selectors
from purchase_svc.purchases.conf import config
from purchase_svc.purchases.models import Purchase, PurchaseStepEvent
from purchase_svc.purchases.notifications import hub

logger = logging.getLogger(__name__)

RECONNECT_MILLISECONDS = 3000


def sse_event(event: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    """One SSE event; `data` as compact JSON on a single line."""
    lines = [f"id: {event_id}"] if event_id is not None else []
    lines += [f"event: {event}", f"data: {json.dumps(data, separators=(',', ':'))}"]
    return ("\n".join(lines) + "\n\n").encode()


def sse_comment(text: str) -> bytes:
    return f": {text}\n\n".encode()


def step_data(step: PurchaseStepEvent) -> dict[str, Any]:
    """A step as the API shows it (the stream and GET /purchases/{id} alike)."""
    return {
        "step": step.step,
        "status": step.status,
        "purchase_status": step.purchase_status,
        "sequence": step.sequence,
        "attempt": step.attempt,
        "error": step.error,
        "retry_at": api_datetime(step.retry_at) if step.retry_at else None,
        "at": api_datetime(step.received_at),
    }


class StreamSlots:
    """How many streams this process may hold open at once (each holds a thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = 0

    def try_acquire(self) -> bool:
        with self._lock:
            if self.open >= config().sse_max_streams:
                return False
            self.open += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.open = max(0, self.open - 1)


SLOTS = StreamSlots()


class PurchaseEventStream:
    """The SSE body of one purchase: iterate for the chunks; `close()` frees its slot.

    Django's StreamingHttpResponse calls `close()` when the response ends, also when the
    client went away or the iteration never started, so the slot is never leaked.
    """

    def __init__(
        self,
        *,
        purchase_id: uuid.UUID,
        after_id: int = 0,
        release: Callable[[], None] = lambda: None,
        client_gone: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.purchase_id = str(purchase_id)
        self.after_id = after_id
        self._release: Callable[[], None] | None = release
        self._client_gone = client_gone
        self._clock = clock
        self._chunks = self._generate()

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        self._chunks.close()
        release, self._release = self._release, None
        if release is not None:
            release()

    def _generate(self) -> Generator[bytes, None, None]:
        max_seconds = config().sse_max_seconds
        heartbeat = config().sse_heartbeat_seconds
        listener = hub()
        with listener.subscribe(self.purchase_id) as subscription:
            started = last_write = self._clock()
            yield f"retry: {RECONNECT_MILLISECONDS}\n\n".encode()
            first = True
            opening_status = PurchaseStatus.PENDING.value
            while True:
                try:
                    # Status before steps: a final status commits with its step, so the
                    # steps read next include every step up to it.
                    purchase = Purchase.objects.filter(id=self.purchase_id).first()
                    steps = selectors.purchase_steps_after(
                        purchase_id=self.purchase_id, after_id=self.after_id
                    )
                    if first:
                        opening_status = selectors.purchase_status_as_of(
                            purchase_id=self.purchase_id, after_id=self.after_id
                        )
                except DatabaseError as exc:
                    logger.warning("purchase stream %s: database error: %s", self.purchase_id, exc)
                    yield sse_comment("database unavailable; reconnect")
                    return
                if purchase is None:  # cannot happen: the view found it, and none is deleted
                    return
                if first:
                    yield sse_event("state", _state_data(purchase, status=opening_status))
                    first = False
                for step, resume_id in in_saga_order(steps, after_id=self.after_id):
                    yield sse_event("step", step_data(step), event_id=resume_id)
                self.after_id = max((step.id for step in steps), default=self.after_id)
                if steps:
                    last_write = self._clock()
                if PurchaseStatus(purchase.status).is_final:
                    yield sse_event(
                        "status",
                        {
                            "id": self.purchase_id,
                            "status": purchase.status,
                            "reason": purchase.reason,
                        },
                    )
                    return
                now = self._clock()
                if now - started >= max_seconds:
                    yield sse_comment("stream time limit reached; reconnect to continue")
                    return
                if now - last_write >= heartbeat:
                    yield sse_comment("keepalive")
                    last_write = now
                poll = (
                    config().sse_safety_poll_seconds
                    if listener.listening
                    else config().sse_fallback_poll_seconds
                )
                timeout = min(poll, heartbeat - (now - last_write), max_seconds - (now - started))
                subscription.wait(max(timeout, 0.01))
                if self._client_gone():
                    return  # free the thread now rather than at the next failed write


def socket_closed_by_peer(sock: socket.socket | None) -> Callable[[], bool]:
    """A check whether the client closed the connection (gunicorn exposes the socket
    as `gunicorn.socket`); without a socket it always answers False.

    A WSGI app learns of a gone client only when a write fails, up to a heartbeat
    later; peeking at the socket frees the stream's thread within a poll interval.
    """

    def gone() -> bool:
        if sock is None:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False  # open, nothing sent: the usual case
        except OSError:
            return True

    return gone


def in_saga_order(
    steps: list[PurchaseStepEvent], *, after_id: int
) -> list[tuple[PurchaseStepEvent, int]]:
    """New steps in the saga's order (sequence, then arrival), each with the SSE id to
    send with it: the highest row id up to which every step has been sent by then.

    Steps that arrived in order keep their own id. A step that arrived before an
    earlier one (a FAILED before the SUCCESS it follows) goes out after it, and the id
    holds back until the late one is sent too, so resuming after it skips nothing.
    """
    unsent = sorted(step.id for step in steps)
    sent: set[int] = set()
    resume_id = after_id
    ordered = []
    for step in sorted(steps, key=lambda s: (s.sequence, s.id)):
        sent.add(step.id)
        while unsent and unsent[0] in sent:
            resume_id = unsent.pop(0)
        ordered.append((step, resume_id))
    return ordered


def _state_data(purchase: Purchase, *, status: str) -> dict[str, Any]:
    return {
        "id": str(purchase.id),
        "status": status,
        "amount": purchase.amount,
        "currency_code": purchase.currency_code,
    }


def stream_has_nothing_new(*, purchase: Purchase, after_id: int) -> bool:
    """True when a client that saw steps up to `after_id` has seen the whole, final story:
    its EventSource reconnected after the end and should be told to stop (204)."""
    if not purchase.is_final:
        return False
    return not selectors.purchase_steps_after(purchase_id=purchase.id, after_id=after_id)
