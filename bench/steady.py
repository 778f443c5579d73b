"""SCENARIO=steady without RATE: the highest open-loop rate the stack sustains.

Short steps at rising rates (x1.5 from 10/s) until one is not sustained (its POST->final
p99 over the target, or its purchases not all final soon after its last POST), then
halving the bracket between the best sustained rate and the lowest failed one until it
is within 10 %. The sending of all steps together stays within `options.duration`.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import asdict, dataclass
from typing import Any

from bench import procstat, window
from bench.follow import PurchaseStates
from bench.sending import Sender, Sent
from bench.stats import percentile
from bench.workload import MAX_SEARCH_RATE, Options, Workload

START_RATE = 10.0
GROWTH = 1.5
MIN_RATE = 1.0
PRECISION = 0.1  # stop when the failed rate is within 10 % above the sustained one
# A step's purchases not all final this long after its last POST: the rate is not
# sustained (at a sustained rate the last ones finish within the p99 target).
STEP_DRAIN_SECONDS = 10.0
# How long a failed step's backlog may take to clear before the next step; a step
# started on a backlog would measure the backlog, so the search stops instead.
BACKLOG_SECONDS = 60.0
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Step:
    rate: float  # purchases/s sent
    sent: int
    accepted: int
    finished: int  # final within STEP_DRAIN_SECONDS of the last POST
    p50: float  # POST->final seconds of the finished ones
    p99: float
    cpu_ms_per_saga: float  # the stack's CPU during the step and its drain
    sustained: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(
    rate: float, sent: int, latencies: list[float], accepted: int, cpu_seconds: float, target: float
) -> Step:
    """A step's figures: sustained if every POST was accepted, every purchase finished
    in time and the p99 of POST->final is under `target` seconds."""
    p99 = percentile(latencies, 99)
    finished = len(latencies)
    return Step(
        rate=rate,
        sent=sent,
        accepted=accepted,
        finished=finished,
        p50=percentile(latencies, 50),
        p99=p99,
        cpu_ms_per_saga=1000 * cpu_seconds / finished if finished else math.nan,
        sustained=sent > 0 and accepted == sent and finished == accepted and p99 < target,
    )


def next_rate(steps: list[Step]) -> float | None:
    """The rate of the next step, or None when the search is over."""
    if not steps:
        return START_RATE
    failed = [s.rate for s in steps if not s.sustained]
    if not failed:
        best = max(s.rate for s in steps)
        return None if best >= MAX_SEARCH_RATE else min(best * GROWTH, MAX_SEARCH_RATE)
    lowest_failed = min(failed)
    below = [s.rate for s in steps if s.sustained and s.rate < lowest_failed]
    if not below:
        half = lowest_failed / 2
        return half if half >= MIN_RATE else None
    best = max(below)
    if lowest_failed - best <= PRECISION * best:
        return None
    return round((best + lowest_failed) / 2, 1)


def highest_sustained(steps: list[Step]) -> float | None:
    """The best sustained rate below every failed one (a higher lucky step does not count)."""
    failed = min((s.rate for s in steps if not s.sustained), default=math.inf)
    return max((s.rate for s in steps if s.sustained and s.rate < failed), default=None)


async def run_step(
    sender: Sender, workload: Workload, states: PurchaseStates, rate: float, number: int
) -> tuple[Step, Sent]:
    options = workload.options
    plans = workload.draw(max(1, round(rate * options.step_seconds)))
    sender.progress.note = f"step {number}: {rate:.1f}/s"
    cpu_before = await asyncio.to_thread(procstat.snapshot)
    sent = await sender.send_all(plans, rate=rate, phase=f"step {number}")
    ids = list(sent.records)
    final = await states.wait_final(ids, timeout=STEP_DRAIN_SECONDS, interval=POLL_SECONDS)
    cpu = await asyncio.to_thread(window.stack_cpu_seconds, cpu_before)
    latencies = [final[pid][1] - sent.records[pid]["sent_at"] for pid in final]
    step = judge(rate, len(plans), latencies, len(ids), cpu, options.p99_target)
    return step, sent


async def search(
    sender: Sender, workload: Workload, states: PurchaseStates, options: Options
) -> tuple[list[Step], Sent]:
    """Steps until the bracket is narrow or the sending budget is spent."""
    steps: list[Step] = []
    everything = Sent()
    budget = options.duration
    while (rate := next_rate(steps)) is not None and budget >= options.step_seconds:
        step, sent = await run_step(sender, workload, states, rate, len(steps) + 1)
        budget -= options.step_seconds
        steps.append(step)
        everything.add(sent)
        print(f"  step {len(steps)}: {describe(step)}", flush=True)
        if not await cleared(states, sent):
            print("  (that step's backlog did not clear: the search stops)", flush=True)
            break
    sender.progress.note = ""
    return steps, everything


async def cleared(states: PurchaseStates, sent: Sent) -> bool:
    """Whether a step's purchases all end within BACKLOG_SECONDS (at once if they have)."""
    ids = list(sent.records)
    final = await states.wait_final(ids, timeout=BACKLOG_SECONDS, interval=POLL_SECONDS)
    return len(final) == len(ids)


def describe(step: Step) -> str:
    verdict = "sustained" if step.sustained else "NOT sustained"
    return (
        f"{step.rate:.1f}/s: sent {step.sent}, finished {step.finished},"
        f" POST->final p50 {step.p50 * 1000:,.0f} ms p99 {step.p99 * 1000:,.0f} ms,"
        f" {step.cpu_ms_per_saga:.0f} ms CPU/saga: {verdict}"
    )
