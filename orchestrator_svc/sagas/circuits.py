"""Per-participant circuits: while a participant is down, sagas wait instead of calling.

Without them every saga waiting on a dead service burns its own retries against it:
hundreds of calls that can only time out. A participant's circuit opens after
SAGA_CIRCUIT_FAILURES calls to it in a row failed transiently (a batch call counts
once). While it is open, a saga about to call it is held (the machine's `hold`): no
call, no attempt spent, due again when the next probe may go. Every
SAGA_CIRCUIT_OPEN_SECONDS one call is let through as a probe; when a call succeeds the
circuit closes and the engine wakes the sagas held on it at once.

The state lives in this process (the worker's threads share it): a circuit is an
estimate, and a worker that has not seen the outage yet finds out with its own few
failed calls. Ours rather than pybreaker's: pybreaker wraps the call itself (and holds
its lock across it), where the engine needs to ask before a saga's transition and to
report after a batch call, outside any lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum

from orchestrator_svc.sagas import metrics
from orchestrator_svc.sagas.conf import config

logger = logging.getLogger(__name__)


class CircuitState(StrEnum):
    CLOSED = "closed"  # calls go through; transient failures in a row are counted
    OPEN = "open"  # calls are held until the next probe is due
    PROBING = "probing"  # one probe call is in flight; the others are held


class Circuit:
    """One participant's circuit in this process; thread-safe."""

    def __init__(
        self,
        *,
        failures_to_open: int,
        open_seconds: float,
        probe_timeout: float,
        clock: Callable[[], float] = time.monotonic,  # seconds, only differences matter
    ) -> None:
        self.failures_to_open = failures_to_open
        self.open_seconds = open_seconds
        self.probe_timeout = probe_timeout  # a probe that never reported frees the slot
        self._clock = clock
        self._lock = threading.Lock()
        self.state = CircuitState.CLOSED
        self.failures = 0
        self._probe_at = 0.0  # OPEN: when the next probe may go; PROBING: when it went

    def hold_for(self) -> float | None:
        """None: call now (closed, or the caller makes the probe); else the seconds until
        the next probe may go, which the caller waits without calling."""
        with self._lock:
            now = self._clock()
            if self.state is CircuitState.CLOSED:
                return None
            if self.state is CircuitState.PROBING:
                if now < self._probe_at + self.probe_timeout:
                    return self.open_seconds
            elif now < self._probe_at:
                return self._probe_at - now
            self.state, self._probe_at = CircuitState.PROBING, now
            return None

    def succeeded(self) -> bool:
        """A call to the participant was answered; True when this closed the circuit."""
        with self._lock:
            reopened = self.state is not CircuitState.CLOSED
            self.state, self.failures = CircuitState.CLOSED, 0
            return reopened

    def failed(self) -> bool:
        """A call to the participant failed transiently (it did not answer usefully);
        True when this opened the circuit."""
        with self._lock:
            self.failures += 1
            opened = self.state is CircuitState.CLOSED and self.failures >= self.failures_to_open
            if opened or self.state is not CircuitState.CLOSED:
                self.state = CircuitState.OPEN
                self._probe_at = self._clock() + self.open_seconds
            return opened


_lock = threading.Lock()
_circuits: dict[str, Circuit] = {}


def circuit(participant: str) -> Circuit:
    """This process's circuit of `participant` (created on first use from the settings)."""
    with _lock:
        found = _circuits.get(participant)
        if found is None:
            conf = config()
            found = _circuits[participant] = Circuit(
                failures_to_open=max(conf.circuit_failures, 1),
                open_seconds=conf.circuit_open_seconds,
                probe_timeout=conf.circuit_open_seconds + conf.step_deadline_seconds,
            )
        return found


def call_failed(participant: str) -> None:
    """A call to `participant` did not answer usefully (counted; may open its circuit)."""
    if circuit(participant).failed():
        metrics.CIRCUIT_OPENED.labels(participant).inc()
        logger.warning("%s stopped answering: its circuit is open, sagas wait for it", participant)


def call_answered(participant: str) -> bool:
    """A call to `participant` was answered; True when that closed its circuit."""
    closed = circuit(participant).succeeded()
    if closed:
        logger.warning("%s answers again: its circuit is closed", participant)
    return closed


def hold_for(participant: str) -> float | None:
    """`Circuit.hold_for` of `participant`'s circuit (the machine's gate)."""
    return circuit(participant).hold_for()


def reset() -> None:
    """Forget every circuit (tests; a settings change)."""
    with _lock:
        _circuits.clear()
