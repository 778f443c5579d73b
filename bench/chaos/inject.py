"""One injector per fault kind: do the fault, undo it, and say when the platform was
back. Every blocking step (supervisord, redis-cli, librdkafka) runs in a thread.

Moments are epoch seconds, the clock of the purchases' own timestamps. `back_at` is
when the faulted part runs again (its process RUNNING under supervisord, the replica a
master): the stall is measured from there, so whatever still holds the work up after
it (Django loading, Traefik's view of the backend, a consumer rejoining, a retry's
backoff) counts. `healthy_at` is when the whole platform answered its health checks
again (platform.problems() empty), which each fault waits for before the next.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.chaos import messages, platform, sagas
from bench.chaos.faults import Fault, Kind
from bench.checks import Check
from bench.follow import PurchaseStates
from common.contract.topics import Topic
from common.topology import INFRA
from deploy.local import supervisor

# A process supervisord restarts is RUNNING again within seconds (startsecs 2, Kafka 5).
RESTART_WITHIN_SECONDS = 120.0
# After the drain, how long a poison message may take to reach its dead-letter topic.
DEAD_LETTER_WITHIN_SECONDS = 30.0


@dataclass
class Context:
    """What an injector may need of the run."""

    run_id: str
    customer_ids: list[int]
    states: PurchaseStates  # the run's purchase ids, for the duplicates
    offsets: dict[str, messages.Offsets]  # topic -> its ends when the load began
    health_timeout: float
    note: Callable[[str], None]  # shown on the progress line, kept in the report


@dataclass
class Injection:
    fault: Fault
    injected_at: float | None = None
    back_at: float | None = None  # the faulted part running again
    healthy_at: float | None = None  # the platform healthy again after it
    notes: list[str] = field(default_factory=list)
    # Checks of the fault's own promise, made after the drain (poison dead-lettered).
    verify: Callable[[], list[Check]] | None = None


def _now() -> float:
    return time.time()


async def _healthy(ctx: Context, injection: Injection) -> None:
    await platform.wait_healthy(ctx.health_timeout, ctx.note)
    injection.healthy_at = _now()


def _at_once(injection: Injection) -> None:
    """A fault with nothing to come back: injected, back and healthy now."""
    injection.injected_at = injection.back_at = injection.healthy_at = _now()


async def _none(fault: Fault, ctx: Context, injection: Injection) -> None:
    _at_once(injection)


async def _kill(fault: Fault, ctx: Context, injection: Injection) -> None:
    """SIGKILL the target program, or every one of a comma-separated list at once; back
    when supervisord has started each again."""
    targets = fault.target.split(",")
    olds = {target: await asyncio.to_thread(platform.pid_of, target) for target in targets}
    for old in olds.values():
        os.kill(old, signal.SIGKILL)
    injection.injected_at = _now()
    ctx.note(", ".join(f"{target} (pid {old})" for target, old in olds.items()) + " SIGKILLed")
    restarted = True
    for target, old in olds.items():
        if not await platform.wait_new_process(target, old, RESTART_WITHIN_SECONDS):
            ctx.note(f"{target} not restarted by supervisord")
            restarted = False
    if restarted:
        injection.back_at = _now()
    await _healthy(ctx, injection)


async def _stop_for(
    fault: Fault,
    ctx: Context,
    injection: Injection,
    seconds: float,
    then: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Stop the target, call `then` (if any), start the target `seconds` after its stop."""
    stopped_at = _now()
    if injection.injected_at is None:
        injection.injected_at = stopped_at
    old = await asyncio.to_thread(platform.pid_of, fault.target)
    try:
        await asyncio.to_thread(supervisor.stop, [fault.target], RESTART_WITHIN_SECONDS)
        ctx.note(f"{fault.target} stopped" + (f" for {seconds:g} s" if seconds else ""))
        if then is not None:
            await then()
        await asyncio.sleep(max(0.0, stopped_at + seconds - _now()))
        state = (await asyncio.to_thread(supervisor.status)).get(fault.target)
        if state != "STOPPED":  # a `make up` or `make restart` elsewhere cut it short
            ctx.note(f"{fault.target} was {state} before the fault's end: started by another")
    finally:  # whatever happens to the run, the program runs again
        await asyncio.to_thread(supervisor.start, [fault.target])
    ctx.note(f"{fault.target} started again")
    if await platform.wait_new_process(fault.target, old, RESTART_WITHIN_SECONDS):
        injection.back_at = _now()
    else:
        ctx.note(f"{fault.target} not running {RESTART_WITHIN_SECONDS:g} s after its start")
    await _healthy(ctx, injection)


async def _restart(fault: Fault, ctx: Context, injection: Injection) -> None:
    await _stop_for(fault, ctx, injection, 0.0)


async def _down(fault: Fault, ctx: Context, injection: Injection) -> None:
    if not fault.hold:
        await _stop_for(fault, ctx, injection, fault.seconds)
        return
    injection.injected_at = _now()
    outage: list[float] = []  # when the target went down

    async def release() -> None:
        outage.append(_now())
        await asyncio.to_thread(supervisor.start, [fault.hold])
        ctx.note(f"{fault.hold} started again")

    try:
        await asyncio.to_thread(supervisor.stop, [fault.hold], RESTART_WITHIN_SECONDS)
        ctx.note(f"{fault.hold} stopped for {fault.hold_seconds:g} s first")
        await asyncio.sleep(fault.hold_seconds)
        await _stop_for(fault, ctx, injection, fault.seconds, then=release)
    finally:
        await asyncio.to_thread(supervisor.start, [fault.hold])
    if fault.refused_step and outage and injection.back_at is not None:
        since, until, target = outage[0], injection.back_at, fault.target
        injection.verify = lambda: [
            sagas.refused_during(ctx, fault.refused_step, since, until, target)
        ]


def _redis(port: int, *args: str) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=30
    ).stdout.strip()


def cache_replica() -> int:
    """The port of a healthy replica of the cache cluster."""
    for line in _redis(INFRA.redis_cluster_ports[0], "cluster", "nodes").splitlines():
        fields = line.split()
        flags = fields[2].split(",")
        if "slave" in flags and not {"fail", "fail?"} & set(flags):
            return int(fields[1].split("@")[0].rpartition(":")[2])
    raise RuntimeError("the cache cluster has no healthy replica")


async def _failover(fault: Fault, ctx: Context, injection: Injection) -> None:
    port = await asyncio.to_thread(cache_replica)
    answer = await asyncio.to_thread(_redis, port, "cluster", "failover")
    injection.injected_at = _now()
    ctx.note(f"CLUSTER FAILOVER on replica :{port}: {answer}")
    deadline = time.monotonic() + RESTART_WITHIN_SECONDS
    while time.monotonic() < deadline:
        role = await asyncio.to_thread(_redis, port, "role")
        if role.splitlines()[:1] == ["master"]:
            break
        await asyncio.sleep(0.2)
    else:
        ctx.note(f":{port} did not become a master")
    injection.back_at = _now()
    await _healthy(ctx, injection)


async def _poison(fault: Fault, ctx: Context, injection: Injection) -> None:
    topic = Topic(fault.target)
    since = ctx.offsets[topic.dlq]
    keys = await asyncio.to_thread(messages.publish_poison, topic, f"chaos-{ctx.run_id}-poison")
    _at_once(injection)
    ctx.note(f"{len(keys)} poison messages on {topic}")

    def verify() -> list[Check]:
        found = messages.dead_lettered(topic.dlq, since, keys, wait=DEAD_LETTER_WITHIN_SECONDS)
        return [
            Check(
                "poison dead-lettered",
                found == set(keys),
                f"{len(found)} of {len(keys)} poison messages on {topic.dlq}",
            )
        ]

    injection.verify = verify


async def _duplicate(fault: Fault, ctx: Context, injection: Injection) -> None:
    topic = fault.target
    ids = await asyncio.to_thread(ctx.states.ids, ctx.customer_ids)
    count = await asyncio.to_thread(messages.republish, topic, ctx.offsets[topic], set(ids))
    _at_once(injection)
    ctx.note(f"{count} messages of {len(ids)} purchases published again on {topic}")
    injection.verify = lambda: [
        Check(
            "duplicates injected",
            count > 0,
            f"{count} messages published twice on {topic}"
            if count
            else f"no message of the run on {topic} yet: nothing was duplicated",
        )
    ]


INJECTORS: dict[Kind, Callable[[Fault, Context, Injection], Awaitable[None]]] = {
    Kind.NONE: _none,
    Kind.KILL: _kill,
    Kind.RESTART: _restart,
    Kind.DOWN: _down,
    Kind.FAILOVER: _failover,
    Kind.POISON: _poison,
    Kind.DUPLICATE: _duplicate,
}


async def inject(fault: Fault, ctx: Context, injection: Injection) -> None:
    """Do `fault` and undo it, filling `injection` in as it goes (a caller that stops
    waiting still has the moments so far)."""
    await INJECTORS[fault.kind](fault, ctx, injection)
