"""One fault of the matrix: a bounded bench load, the fault injected a few seconds in,
the drain, then what the purchase service says of each purchase and the invariants.

The load is the bench's (runner.prepare, Sender, runner.track, runner.collect,
checks.run_checks) with a well-behaved client: it retries 429/502/503/504 and lost
connections with the same Idempotency-Key for `retry_seconds`, as docs/adr/0014 asks of
a client, so a purchase it could not place is one no client could.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from bench import checks, runner
from bench.chaos import inject, messages, platform
from bench.chaos.faults import Fault, Kind
from bench.client import Edge
from bench.follow import PurchaseStates
from bench.progress import Progress
from bench.sending import Sender
from bench.workload import Options, Workload
from common.contract.topics import saga_topics
from deploy.local import supervisor

# runner.track gives up on its own only after this; the matrix's drain is bounded here.
TRACK_FOREVER = 10.0**9
PRINT_EVERY_SECONDS = 5.0


@dataclass(frozen=True)
class ChaosOptions:
    faults: str = "all"
    purchases: int = 300
    concurrency: int = 50
    inject_after: float = 4.0  # seconds into the load
    scenario: str = "seed"  # unless the fault needs its own (Fault.scenario)
    customers: int = 10
    # Purchases/s to start (0: as fast as the concurrency allows). Open loop, so the load
    # lasts past the fault: flat out, 300 purchases are over in 2-3 s on two cores.
    rate: float = 25.0
    drain_timeout: float = 120.0  # seconds to drain once the fault is undone
    retry_seconds: float = 120.0  # the client's patience with one request
    stall_limit: float = 10.0  # the longest stall after the fault that passes
    health_timeout: float = 180.0  # seconds for the platform to be healthy again
    seed: int = 1
    out_dir: str = "bench/results"

    def bench_options(self, fault: Fault) -> Options:
        return Options(
            scenario=fault.scenario or self.scenario,
            purchases=self.purchases,
            concurrency=self.concurrency,
            customers=self.customers,
            rate=self.rate,
            one_at_a_time=0,
            drain_timeout=TRACK_FOREVER,
            seed=self.seed,
            out_dir=self.out_dir,
            chart=False,
        )


@dataclass
class FaultRun:
    """What one fault's run saw, for the report."""

    fault: Fault
    options: Options
    injection: inject.Injection
    started: float = 0.0
    sending_ended: float = 0.0
    ended: float = 0.0
    drained: bool = False
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    not_accepted: list[dict[str, Any]] = field(default_factory=list)
    server: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: list[checks.Check] = field(default_factory=list)
    edge_errors: dict[str, int] = field(default_factory=dict)
    samples: list[dict[str, float]] = field(default_factory=list)
    error: str | None = None  # the injector's, if it failed


async def _print_progress(name: str, progress: Progress, done: asyncio.Event) -> None:
    while not done.is_set():
        print(f"  {name} {progress.line()}", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=PRINT_EVERY_SECONDS)
    print(f"  {name} {progress.line()}", flush=True)


async def _inject_later(
    delay: float, fault: Fault, ctx: inject.Context, injection: inject.Injection
) -> str | None:
    """Inject `fault` after `delay` seconds; why it failed, or None. Unhealthy goes up:
    the platform is not fit for anything more."""
    await asyncio.sleep(delay)
    try:
        await inject.inject(fault, ctx, injection)
    except platform.Unhealthy:
        raise
    except Exception as error:  # noqa: BLE001 - reported as the fault's result
        ctx.note(f"injector failed: {type(error).__name__}: {error}")
        await platform.wait_healthy(ctx.health_timeout, ctx.note)
        return f"{type(error).__name__}: {error}"
    return None


async def _tracked(
    states: PurchaseStates, setup: runner.Setup, progress: Progress, options: Options
) -> float:
    """When the load drained (every purchase final)."""
    await runner.track(states, setup, progress, options)
    return time.time()


def _restore(fault: Fault) -> None:
    """After a run that stopped half-way: the programs a stop fault stopped run again."""
    if fault.kind in (Kind.RESTART, Kind.DOWN):
        supervisor.start([name for name in (fault.target, fault.hold) if name])


async def run_fault(fault: Fault, chaos: ChaosOptions, edge_url: str) -> FaultRun:
    """Run `fault` under load and collect what happened. Raises platform.Unhealthy if
    the platform is not healthy before, or does not become healthy after."""
    await platform.wait_healthy(chaos.health_timeout)
    options = chaos.bench_options(fault)
    run_id = uuid.uuid4().hex[:8]
    workload = Workload.build(options, run_id)
    control = Edge(edge_url, connections=16, retry_seconds=chaos.retry_seconds)
    load = Edge(edge_url, connections=options.concurrency, retry_seconds=chaos.retry_seconds)
    states = await asyncio.to_thread(PurchaseStates)
    injection = inject.Injection(fault)
    found = FaultRun(fault, options, injection)
    try:
        setup = await runner.prepare(control, workload, run_id)
        offsets = await asyncio.to_thread(
            lambda: {topic: messages.end_offsets(topic) for topic in saga_topics()}
        )
        progress = Progress(started=time.time())
        found.started = progress.started

        def note(message: str) -> None:
            injection.notes.append(f"{time.time() - progress.started:.1f}s: {message}")
            progress.note = message
            print(f"  {fault.name}: {message}", flush=True)

        ctx = inject.Context(
            run_id,
            [c.customer_id for c in setup.customers],
            states,
            offsets,
            chaos.health_timeout,
            note,
        )
        sender = Sender(load, setup.customers, setup.product_ids, progress, options.concurrency)
        done = asyncio.Event()
        printer = asyncio.create_task(_print_progress(fault.name, progress, done))
        tracker = asyncio.create_task(_tracked(states, setup, progress, options))
        injector = asyncio.create_task(_inject_later(chaos.inject_after, fault, ctx, injection))
        try:
            sent = await sender.send_all(workload.plans, rate=options.rate, phase="load")
            progress.sending_done = True
            found.sending_ended = time.time()
            found.error = await injector  # the fault undone, the platform healthy again
            try:
                found.ended = await asyncio.wait_for(tracker, timeout=chaos.drain_timeout)
                found.drained = True
            except TimeoutError:
                found.ended = time.time()
        finally:
            for task in (tracker, injector):
                task.cancel()
            done.set()
            await printer
        print(f"  {fault.name}: collecting the final states, checking the invariants", flush=True)
        found.server, found.failures = await runner.collect(control, setup)
        found.records, found.not_accepted = sent.records, sent.not_accepted
        found.checks = await asyncio.to_thread(
            checks.run_checks,
            accepted=sent.records,
            server=found.server,
            product_ids=setup.product_ids,
            stock_before=setup.stock_before,
        )
        if injection.verify is not None:
            found.checks += await asyncio.to_thread(injection.verify)
        found.edge_errors = dict(load.errors + control.errors)
        found.samples = progress.samples
        return found
    except BaseException:
        await asyncio.to_thread(_restore, fault)
        raise
    finally:
        states.close()
        await load.close()
        await control.close()
