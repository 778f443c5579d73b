"""The platform as the fault matrix sees it: its processes under supervisord and their
health, read with deploy.local's own helpers (blocking: the waits run them in threads).

Before each fault the platform must be healthy, and after it healthy again: every
program RUNNING, every service answering through the edge (HTTP and gRPC), the cache
cluster ok with three masters and three replicas, Kafka answering metadata.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bench.chaos import messages
from common.contract.topics import saga_topics
from common.topology import INFRA
from deploy.local import health, redis_cluster, supervisor
from deploy.local.programs import app_programs, infra_programs

# supervisord gave up on the program (its start retries spent, say while Kafka was
# away). STOPPED is left alone: someone stopped it (a `make restart` in progress).
GAVE_UP = "FATAL"
SAY_EVERY_SECONDS = 30.0


class Unhealthy(RuntimeError):
    """The platform did not become healthy in time: the matrix cannot go on."""


def program_names() -> list[str]:
    """Every program of the infra and apps groups (not the optional observability)."""
    return [p.name for p in infra_programs() + app_programs(observability=False)]


def kafka_problem() -> str | None:
    consumer = messages.reader()
    try:
        topics = consumer.list_topics(timeout=5).topics
    except Exception as error:  # noqa: BLE001 - any failure is the answer
        return f"kafka: {type(error).__name__}: {error}"
    finally:
        consumer.close()
    missing = [t for t in saga_topics() if t not in topics]
    return f"kafka: topics missing {missing}" if missing else None


def cache_problem() -> str | None:
    info = redis_cluster.cluster_info(INFRA.redis_cluster_ports[0])
    if info.get("cluster_state") != "ok":
        return f"redis cluster: cluster_state {info.get('cluster_state', 'unknown')}"
    found = redis_cluster.roles()
    return None if found == (3, 3) else f"redis cluster: {found[0]} masters, {found[1]} replicas"


def problems(states: dict[str, str] | None = None) -> list[str]:
    """What is not healthy now (empty: everything is)."""
    states = supervisor.status() if states is None else states
    found = [
        f"{name}: {states.get(name, 'MISSING')}"
        for name in program_names()
        if states.get(name) != "RUNNING"
    ]
    if found:  # the checks below would only repeat what is down
        return found
    for name, check in health.edge_checks().items():
        ok, detail = check()
        if not ok:
            found.append(f"{name}: {detail[:120]}")
    for other in (cache_problem, kafka_problem):
        if problem := other():
            found.append(problem)
    return found


def restart_given_up(started_again: set[str], note: Callable[[str], None]) -> dict[str, str]:
    """Start again, once each, the programs supervisord gave up on; the states read."""
    states = supervisor.status()
    for name in program_names():
        if states.get(name) == GAVE_UP and name not in started_again:
            note(f"{name} was {GAVE_UP}: started it again")
            started_again.add(name)
            supervisor.start([name])
    return states


async def wait_healthy(timeout: float, note: Callable[[str], None] = print) -> None:
    """Wait until `problems()` is empty. A program supervisord gave up on is started
    again, once, and `note`d: the fault's report says so. Raises Unhealthy with what
    is still wrong. Each look runs in a thread; a cancel (Ctrl-C) ends it between two."""
    deadline = time.monotonic() + timeout
    started_again: set[str] = set()
    said = 0.0
    while True:
        states = await asyncio.to_thread(restart_given_up, started_again, note)
        found = await asyncio.to_thread(problems, states)
        if not found:
            return
        if time.monotonic() > deadline:
            raise Unhealthy("; ".join(found))
        if time.monotonic() - said > SAY_EVERY_SECONDS:  # why the matrix waits
            said = time.monotonic()
            note(f"waiting for the platform: {'; '.join(found)[:200]}")
        await asyncio.sleep(1.0)


def pid_of(program: str) -> int:
    return supervisor.pids()[program]


def runs_anew(program: str, old_pid: int) -> bool:
    """Whether supervisord runs `program` as another process than `old_pid`. The pid
    first: once it is new, RUNNING is the new process's state (STARTING until
    supervisord's startsecs passed), never the old one's."""
    return pid_of(program) not in (0, old_pid) and supervisor.status().get(program) == "RUNNING"


async def wait_new_process(program: str, old_pid: int, timeout: float) -> bool:
    """Wait until `runs_anew(program, old_pid)`; False if not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(runs_anew, program, old_pid):
            return True
        await asyncio.sleep(0.2)
    return False
