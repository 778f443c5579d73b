"""The measured window of a run: CPU by process and the stack's counts (transactions,
messages, calls), read at its start, after setup (registering customers and creating
products stay out), and at its end, once the load drained."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench import counters, procstat

# After the drain: a purchase is final before the last of its work is done (a relay
# marks its outbox row sent, a consumer commits its offset); that work belongs to it.
SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class Measured:
    seconds: float
    cpu: list[procstat.Sample]
    bench_cpu_seconds: float
    counts: dict[str, counters.Reading]  # source -> what each of its keys grew by


@dataclass(frozen=True)
class Window:
    started: float
    cpu: dict[int, tuple[str, float]]
    own_cpu: float
    counts: dict[str, counters.Reading]

    @classmethod
    def open(cls) -> Window:
        """Blocking: run it in a thread. The counts are read first: reading them costs
        CPU (a /metrics page, Kafka metadata) that is not the load's."""
        counts = {source: counters.read(source) for source in counters.SOURCES}
        return cls(time.time(), procstat.snapshot(), time.process_time(), counts)

    def close(self) -> Measured:
        """Blocking, like `open`: the CPU first, for the same reason."""
        cpu = procstat.cpu_between(self.cpu, procstat.snapshot())
        own = time.process_time() - self.own_cpu
        seconds = time.time() - self.started
        counts = {
            source: counters.delta(before, counters.read(source))
            for source, before in self.counts.items()
        }
        return Measured(seconds, cpu, own, counts)


def stack_cpu_seconds(before: dict[int, tuple[str, float]]) -> float:
    """CPU seconds the stack's processes spent since `before` (a procstat snapshot)."""
    spent = procstat.cpu_between(before, procstat.snapshot())
    return sum(s.cpu_seconds for s in spent if procstat.in_stack(s.label))
