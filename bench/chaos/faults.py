"""The fault table: what `make chaos` can do to the platform, by name.

A fault is one of a few kinds (`Kind`) applied to a target: a supervisord program, a
Kafka topic, or the cache cluster. The table is derived from the platform's own
description (deploy.local.programs), so a new process kind gets its SIGKILL fault
without an edit here.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from enum import StrEnum

from common.contract.topics import Topic
from deploy.local.programs import app_programs


class Kind(StrEnum):
    NONE = "none"  # the load alone: the reference the faults are compared with
    KILL = "kill"  # SIGKILL the program's process; supervisord starts a new one
    RESTART = "restart"  # stop the program gracefully, start it again at once
    DOWN = "down"  # stop the program, start it again after `seconds`
    FAILOVER = "failover"  # CLUSTER FAILOVER on a replica of the cache cluster
    POISON = "poison"  # messages no consumer can parse, on a topic
    DUPLICATE = "duplicate"  # the run's messages so far on a topic, published again


@dataclass(frozen=True)
class Fault:
    name: str
    kind: Kind
    # a supervisord program (KILL: one or more, comma-separated), a Topic value, or ""
    # (the cache cluster, none)
    target: str
    what: str  # one line for the table and the docs
    seconds: float = 0.0  # DOWN: how long the program stays stopped
    scenario: str | None = None  # a bench scenario the fault needs (None: the run's)
    # DOWN: a program stopped first for `hold_seconds`, and started again once the target
    # is down, so that work piled up behind it meets the target's outage.
    hold: str = ""
    hold_seconds: float = 0.0
    # DOWN: the step whose refusals during the outage need the target to compensate; the
    # fault checks that some did (else it proved nothing about compensations).
    refused_step: str = ""


def _kills() -> list[Fault]:
    """A SIGKILL of every service process kind (gunicorn masters, gRPC servers, relays,
    consumers, the Celery worker and beat)."""
    found = []
    for program in app_programs(observability=False):
        if program.name.endswith("-http"):
            what = f"SIGKILL {program.name}'s gunicorn master (its workers die with it)"
        else:
            what = f"SIGKILL {program.name}"
        found.append(Fault(f"kill-{program.name}", Kind.KILL, program.name, what))
    return found


def _replica_kills() -> list[Fault]:
    """With `make up REPLICAS=2` or more: one SIGKILL, at once, of the first copy of
    every process kind that has copies (gunicorns, gRPC servers, relays, consumers, the
    Celery worker): the other copies must carry the load on (docs/adr/0023)."""
    programs = app_programs(observability=False)
    kinds_with_copies = {p.kind for p in programs if p.replica > 1}
    targets = [p.name for p in programs if p.replica == 1 and p.name in kinds_with_copies]
    if not targets:
        return []
    return [
        Fault(
            "kill-replicas",
            Kind.KILL,
            ",".join(targets),
            f"SIGKILL the first copy of every process kind at once ({len(targets)} processes);"
            " needs make up REPLICAS=2",
        )
    ]


def _table() -> dict[str, Fault]:
    faults = [
        Fault("baseline", Kind.NONE, "", "no fault: the same load, for reference"),
        Fault(
            "payment-down",
            Kind.DOWN,
            "payment-grpc",
            "payment-grpc stopped for 60 s, then started",
            seconds=60,
        ),
        Fault(
            "order-down",
            Kind.DOWN,
            "order-grpc",
            "order-grpc stopped for 180 s under the reject10 load, payment-grpc held for 5 s"
            " first: the payments it then refuses need CancelOrder while order-grpc is away",
            seconds=180,
            scenario="reject10",
            hold="payment-grpc",
            hold_seconds=5,
            refused_step="CREATE_PAYMENT",
        ),
        Fault("pg-restart", Kind.RESTART, "postgres", "PostgreSQL stopped (fast) and started"),
        Fault("pg-kill", Kind.KILL, "postgres", "SIGKILL the PostgreSQL postmaster"),
        Fault("kafka-restart", Kind.RESTART, "kafka", "Kafka stopped and started"),
        Fault("traefik-restart", Kind.RESTART, "traefik", "Traefik (the edge) stopped and started"),
        Fault(
            "broker-restart",
            Kind.RESTART,
            "redis-broker",
            "the Celery broker (redis-broker) stopped and started",
        ),
        Fault(
            "redis-failover",
            Kind.FAILOVER,
            "",
            "CLUSTER FAILOVER on a replica of the cache cluster: it becomes a master",
        ),
        *_kills(),
        *_replica_kills(),
    ]
    for topic in Topic:
        faults.append(
            Fault(
                f"poison-{topic}",
                Kind.POISON,
                topic,
                f"messages no consumer can parse on {topic} (expected in {topic.dlq})",
            )
        )
        faults.append(
            Fault(
                f"duplicate-{topic}",
                Kind.DUPLICATE,
                topic,
                f"every message of the run on {topic} so far, published again",
            )
        )
    return {f.name: f for f in faults}


FAULTS: dict[str, Fault] = _table()


class UnknownFault(ValueError):
    pass


def select(spec: str, table: dict[str, Fault] | None = None) -> list[Fault]:
    """The faults named by `spec`: comma-separated names or shell patterns (`kill-*`),
    or `all`; in the table's order, each once. Raises UnknownFault for a name or a
    pattern that matches nothing."""
    table = FAULTS if table is None else table
    words = [w.strip() for w in spec.split(",") if w.strip()]
    if not words:
        raise UnknownFault("no fault named")
    chosen: set[str] = set()
    for word in words:
        matches = set(table) if word == "all" else set(fnmatch.filter(table, word))
        if not matches:
            raise UnknownFault(f"no fault {word!r}; known: {', '.join(table)}")
        chosen |= matches
    return [fault for name, fault in table.items() if name in chosen]
