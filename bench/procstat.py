"""CPU time per process during a run, read from /proc (Linux), grouped by role."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
SERVICES = ("account", "product", "order", "payment", "purchase", "orchestrator")


@dataclass(frozen=True)
class Sample:
    label: str
    cpu_seconds: float


def label_of(pid: int, cmdline: str, comm: str) -> str:
    """The platform's name of a process (as `make status` names programs), else its own."""
    if pid == os.getpid():
        return "bench (this load generator)"
    if "pytest" in cmdline:
        return "pytest (another suite)"
    if cmdline.startswith("postgres:"):
        match = re.match(r"postgres: (\S+) (\S+_db)", cmdline)
        return f"postgres backend {match.group(2)}" if match else "postgres (server)"
    if comm == "postgres":  # the postmaster: it forks every new connection's backend
        return "postgres (server)"
    for service in SERVICES:
        if f"{service}_svc" not in cmdline:
            continue
        for needle, role in (
            ("gunicorn", "http"),
            ("grpcserve", "grpc"),
            ("outbox_relay", "relay"),
            ("kafka_consume", "consumer"),
            (" worker", "worker"),
            (" beat", "beat"),
        ):
            if needle in cmdline:
                return f"{service}-{role}"
        return f"{service} (other)"
    if "redis-server" in cmdline:
        return "redis-broker" if ":6380" in cmdline else "redis-cluster (6 nodes)"
    if "kafka.Kafka" in cmdline:
        return "kafka"
    if "traefik" in cmdline:
        return "traefik"
    if "supervisord" in cmdline:
        return "supervisord"
    return comm


STACK_LABELS = (
    "postgres (server)",
    "redis-broker",
    "redis-cluster (6 nodes)",
    "kafka",
    "traefik",
    "supervisord",
)
STACK_DATABASES = tuple(f"{service}_db" for service in SERVICES)


def in_stack(label: str) -> bool:
    """Whether a process of this label is part of the platform the bench measures (the
    figures per saga add these up), not the bench, a test suite or anything else. A
    backend of another database (a test suite's test_*_db) is not."""
    if label in STACK_LABELS:
        return True
    if label.startswith("postgres backend "):
        return label.removeprefix("postgres backend ") in STACK_DATABASES
    return any(label.startswith((f"{s}-", f"{s} (")) for s in SERVICES)


def snapshot() -> dict[int, tuple[str, float]]:
    """{pid: (label, cpu seconds so far)} of every process this user can read."""
    found: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
        pid = int(entry.name)
        found[pid] = (label_of(pid, cmdline or comm, comm), cpu)
    return found


def cpu_between(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> list[Sample]:
    """CPU seconds spent between two snapshots, per label, most first. A process that
    ended in between is missed (its time is not in /proc any more)."""
    spent: dict[str, float] = {}
    for pid, (label, cpu) in after.items():
        start = before.get(pid, (label, 0.0))[1]
        spent[label] = spent.get(label, 0.0) + max(cpu - start, 0.0)
    return sorted(
        (Sample(label, seconds) for label, seconds in spent.items() if seconds > 0.005),
        key=lambda sample: -sample.cpu_seconds,
    )
