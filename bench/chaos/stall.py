"""The longest stall of a run: time with work pending and no progress.

Progress is a purchase accepted (its 202) or reaching a final state; work is pending
from a purchase's POST until its final state. Pure arithmetic on epoch seconds, so
the fast tests can pin it down.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Work:
    """One purchase's moments (epoch seconds): POSTed, accepted, final (None: not yet)."""

    sent: float
    accepted: float | None
    final: float | None


@dataclass(frozen=True)
class Stall:
    seconds: float
    began: float | None  # None: no stall at all
    ended: float | None


def longest_stall(work: Iterable[Work], *, since: float, until: float) -> Stall:
    """The longest gap within [since, until] during which some purchase was pending and
    none was accepted or reached a final state. `until` is the last moment observed:
    a purchase still pending then stalls up to it."""
    items = list(work)
    moments = sorted(
        {
            at
            for w in items
            for at in (w.accepted, w.final)
            if at is not None and since < at <= until
        }
    )
    best = Stall(0.0, None, None)
    for begin, end in zip([since, *moments], [*moments, until], strict=True):
        # Every final is a progress moment, so work pending at some point of the gap
        # stays pending to its end: the stall starts where the first pending work does.
        starts = [
            max(begin, w.sent)
            for w in items
            if w.sent < end and (w.final is None or w.final > begin)
        ]
        if starts and end - min(starts) > best.seconds:
            best = Stall(end - min(starts), min(starts), end)
    return best
