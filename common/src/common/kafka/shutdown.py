"""Graceful stop for long-running loops (consumer, relay) on SIGTERM/SIGINT.

The signal only sets an event; the loop finishes the batch in hand, commits and
closes. A second signal falls back to the default action, so an impatient
operator can still kill a stuck process.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

logger = logging.getLogger(__name__)


def stop_event_on_signals(
    signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT),
) -> threading.Event:
    """Answer an event set by the first of `signals` (handlers only in the main thread)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        return stop

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s, stopping after the current batch", signal.Signals(signum).name)
        stop.set()
        for sig in signals:
            signal.signal(sig, signal.SIG_DFL)

    for sig in signals:
        signal.signal(sig, on_signal)
    return stop
