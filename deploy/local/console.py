"""What `make up` prints: one line per step, so a user sees where it is."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

_START = time.monotonic()


def step(message: str) -> None:
    print(f"[{time.monotonic() - _START:6.1f}s] {message}", flush=True)


def fail(message: str) -> SystemExit:
    print(f"\nFAILED: {message}", file=sys.stderr, flush=True)
    return SystemExit(1)


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for r in rows:
        print(line.format(*r))
