"""What a run knows right now, for the line printed every second."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field


@dataclass
class Progress:
    started: float = 0.0
    sent: int = 0
    accepted: int = 0
    refused: int = 0  # answered, but not 202 (after retries)
    lost: int = 0  # never answered (after retries)
    finished: int = 0  # final, as the purchase service's database says
    pending: int = 0
    sending_done: bool = False
    note: str = ""  # the phase, when there is more than one
    samples: list[dict[str, float]] = field(default_factory=list)

    def line(self) -> str:
        now = time.time() - self.started
        return (
            f"[{now:6.1f}s] sent {self.sent:6d}  accepted {self.accepted:6d}"
            f"  finished {self.finished:6d}  in-flight {max(self.accepted - self.finished, 0):6d}"
            f"  refused {self.refused}  lost {self.lost}" + (f"  {self.note}" if self.note else "")
        )

    def sample(self, at: float) -> None:
        self.samples.append(
            {
                "t": at - self.started,
                "sent": self.sent,
                "accepted": self.accepted,
                "finished": self.finished,
            }
        )


async def report_progress(progress: Progress, done: asyncio.Event) -> None:
    """Print the progress line every second until `done`, and once more then."""
    while not done.is_set():
        print(progress.line(), flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=1.0)
    print(progress.line(), flush=True)
