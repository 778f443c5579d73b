"""How many copies of each process, and cores, a purchase rate needs: a capacity table
computed from a bench run's measured CPU per finished saga (docs/scaling.md).

    python -m bench.capacity [RESULT.json] [--rates 100,1000,10000] [--utilization 0.6]
    python -m bench.capacity RESULT.json --write-doc    # rewrite docs/scaling.md's table

Without RESULT, the newest `*-seed.json` in bench/results/ that finished enough sagas
with every invariant held. The model is linear: CPU per saga times the rate, divided by
the utilization a tier may run at. Per-saga cost falls as the rate grows (bigger batches,
idle work spread thinner), so a burst's figures are the high-rate end (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.settings import REPO_ROOT
from common.topology import INFRA, SERVICES

RESULTS_DIR = REPO_ROOT / "bench" / "results"
DOC = REPO_ROOT / "docs" / "scaling.md"
BEGIN = "<!-- capacity-table:begin (python -m bench.capacity --write-doc) -->"
END = "<!-- capacity-table:end -->"

DEFAULT_RATES = (100.0, 1000.0, 10000.0)
DEFAULT_UTILIZATION = 0.6
DEFAULT_NODE_CORES = 16  # one database primary or Kafka broker: a large VM, not a huge one
MIN_SAGAS = 500  # a run of fewer finished sagas is dominated by idle background

# A copy of a Python process runs on about one core: the GIL lets one thread run at a
# time (the chart gives each pod a limit of one CPU too).
PYTHON_COPY_CORES = 1.0
TRAEFIK_COPY_CORES = 2.0  # Go uses every core it gets; an assumed pod size
REDIS_NODE_CORES = 1.0  # Redis runs commands on one thread
REDIS_CLUSTER_MIN_SHARDS = 3  # the local cluster's masters
# Outbox relays split their rows into this many lanes by key (common/outbox/relay.py,
# docs/adr/0023): a relay beyond them finds every lane taken.
RELAY_LANES = 8

_REPLICA_SUFFIX = re.compile(r"^(?P<kind>.+?)-(?P<copy>\d+)$")
LOCAL_ONLY = frozenset({"supervisord"})  # the local supervisor: no part of a deployment


@dataclass(frozen=True)
class Kind:
    """One kind of process or store, with what one copy of it is and what bounds it."""

    name: str
    cpu_ms: float  # CPU per finished saga, every copy together
    copy: str  # what one copy is, in words
    copy_cores: float  # cores one copy can use
    tier: str = "python"  # python, stateless (Traefik) or stateful (cores, not copies)
    unit: str = "copy"  # what a copy is called; "" for cores only
    min_copies: int = 1
    max_copies: int | None = None  # a hard bound, said by `bound`
    bound: str = ""
    database: str = ""  # the database its copies connect to
    connections: int = 0  # connections one copy holds at most

    def serves(self, utilization: float) -> float:
        """Purchases/s one copy serves at the target utilization (inf: not measurable)."""
        if self.cpu_ms <= 0:
            return math.inf
        return self.copy_cores * utilization * 1000.0 / self.cpu_ms


@dataclass(frozen=True)
class Need:
    """What a kind needs at one rate: cores at the target utilization, whole copies."""

    cores: float
    copies: int
    over_bound: bool


def need(kind: Kind, rate: float, utilization: float) -> Need:
    """The cores and copies `kind` needs to carry `rate` purchases/s at `utilization`."""
    cores = rate * kind.cpu_ms / 1000.0 / utilization
    # The epsilon keeps 2.0000000001 copies (float noise) at 2.
    copies = max(kind.min_copies, math.ceil(cores / kind.copy_cores - 1e-9))
    over = kind.max_copies is not None and copies > kind.max_copies
    return Need(cores, copies, over)


# ------------------------------------------------------------------ the run's figures


def process_costs(result: dict[str, Any]) -> dict[str, float]:
    """CPU ms per finished saga by process kind, copies summed (`purchase-http-2` counts
    as `purchase-http`); the local supervisor left out."""
    by_process: dict[str, float] = result["per_finished_saga"]["cpu_ms"]["by_process"]
    costs: dict[str, float] = {}
    for label, ms in by_process.items():
        kind = kind_of(label)
        if kind not in LOCAL_ONLY:
            costs[kind] = costs.get(kind, 0.0) + float(ms)
    return costs


def kind_of(label: str) -> str:
    """A measured process's kind: its label without a copy number."""
    match = _REPLICA_SUFFIX.match(label)
    if match and _python_role(match["kind"]) is not None:
        return match["kind"]
    return label


def _python_role(name: str) -> str | None:
    service, _, role = name.partition("-")
    return role if service in SERVICES and role else None


def _flag(command: str, flag: str, default: int) -> int:
    words = shlex.split(command)
    return int(words[words.index(flag) + 1]) if flag in words else default


def python_kinds(costs: dict[str, float]) -> list[Kind]:
    """Every process kind of the topology (measured or not: each needs one copy), each
    copy as the local platform runs it."""
    from deploy.local.programs import app_programs  # the commands as `make up` runs them

    kinds = []
    for program in app_programs(observability=False, copies=1):
        role = program.name.removeprefix(f"{program.service}-")
        copy, connections, max_copies, bound = program.name, 1, None, ""
        if role == "http":
            workers = _flag(program.command, "--workers", 2)
            threads = _flag(program.command, "--threads", 8)
            copy = f"gunicorn, {workers} workers x {threads} threads"
            # A connection per thread (CONN_MAX_AGE keeps them); the purchase service's
            # workers each LISTEN for the event streams too.
            connections = workers * threads + (workers if program.service == "purchase" else 0)
        elif role == "grpc":
            connections = int(os.environ.get("GRPC_MAX_WORKERS", "16"))  # grpcserve's default
            copy = f"gRPC server, {connections} threads"
        elif role == "worker":
            connections = _flag(program.command, "--concurrency", 4)
            copy = f"Celery worker, {connections} task threads"
        elif role == "beat":
            copy, max_copies, bound = "Celery beat", 1, "one beat"
        elif role == "relay":
            # One connection for its batches, one that LISTENs for new rows.
            copy, connections = "outbox relay", 2
            max_copies, bound = RELAY_LANES, f"{RELAY_LANES} lanes"
        elif role == "consumer":
            copy, max_copies = "Kafka consumer", INFRA.kafka_partitions
            bound = f"{max_copies} partitions"
        kinds.append(
            Kind(
                program.name,
                costs.get(program.name, 0.0),
                copy,
                PYTHON_COPY_CORES,
                max_copies=max_copies,
                bound=bound,
                database=SERVICES[program.service].database,
                connections=connections,
            )
        )
    return kinds


def infra_kinds(costs: dict[str, float], node_cores: float) -> list[Kind]:
    """Traefik and the stateful tiers, from what the run measured of them."""
    kinds = [
        Kind(
            "Traefik",
            costs.get("traefik", 0.0),
            f"a replica of {TRAEFIK_COPY_CORES:g} cores",
            TRAEFIK_COPY_CORES,
            tier="stateless",
            unit="replica",
        ),
        Kind(
            "Kafka",
            costs.get("kafka", 0.0),
            f"a broker of {node_cores:g} cores",
            node_cores,
            tier="stateful",
            unit="broker",
        ),
        Kind(
            "Redis Cluster (cache)",
            costs.get("redis-cluster (6 nodes)", 0.0),
            "a shard: a master (one thread) and its replica",
            REDIS_NODE_CORES,
            tier="stateful",
            unit="shard",
            min_copies=REDIS_CLUSTER_MIN_SHARDS,
        ),
        Kind(
            "Redis (Celery broker)",
            costs.get("redis-broker", 0.0),
            "one Redis, one thread",
            REDIS_NODE_CORES,
            tier="stateful",
            unit="node",
            max_copies=1,
            bound="a single Redis",
        ),
    ]
    for label, cost in sorted(costs.items()):
        if label.startswith("postgres backend "):
            database = label.removeprefix("postgres backend ")
            kinds.append(
                Kind(
                    f"PostgreSQL {database}",
                    cost,
                    f"its primary, up to {node_cores:g} cores",
                    node_cores,
                    tier="stateful",
                    unit="primary",
                    max_copies=1,
                    bound="one primary",
                )
            )
    if "postgres (server)" in costs:
        kinds.append(
            Kind(
                "PostgreSQL server (WAL, checkpoints)",
                costs["postgres (server)"],
                "shared by the databases",
                node_cores,
                tier="stateful",
                unit="",
            )
        )
    return kinds


# The labels infra_kinds reads (bench/procstat.py names them).
_INFRA_LABELS = frozenset(
    {"traefik", "kafka", "redis-cluster (6 nodes)", "redis-broker", "postgres (server)"}
)


def all_kinds(result: dict[str, Any], node_cores: float) -> list[Kind]:
    """The Python kinds, Traefik and the stores; whatever else the run measured (say a
    management command) as a row of its own, cores only."""
    costs = process_costs(result)
    kinds = python_kinds(costs) + infra_kinds(costs, node_cores)
    known = {k.name for k in kinds} | _INFRA_LABELS
    for label, cost in sorted(costs.items()):
        if label not in known and not label.startswith("postgres backend "):
            kinds.append(
                Kind(
                    label,
                    cost,
                    "not a process kind of the topology",
                    node_cores,
                    tier="stateful",
                    unit="",
                )
            )
    return kinds


# ------------------------------------------------------------------- the markdown


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def _cores(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:,.1f}"


def _ms(value: float) -> str:
    return "~0" if value <= 0 else f"{value:.2f}"


def _serves(kind: Kind, utilization: float) -> str:
    serves = kind.serves(utilization)
    if math.isinf(serves):
        return "-"
    text = _rate(serves)
    if kind.max_copies is not None and kind.max_copies > 1:
        text += f" ({_rate(serves * kind.max_copies)} with {kind.bound})"
    return text


def _unit(unit: str, count: int) -> str:
    if unit == "copy":
        return ""
    if count == 1:
        return f" {unit}"
    return " primaries" if unit == "primary" else f" {unit}s"


def _cell(kind: Kind, n: Need) -> str:
    if not kind.unit:
        return _cores(n.cores)
    text = f"{_cores(n.cores)} / {n.copies}{_unit(kind.unit, n.copies)}"
    return f"{text} **over {kind.bound}**" if n.over_bound else text


def capacity_table(kinds: Sequence[Kind], rates: Sequence[float], utilization: float) -> str:
    """The table: per kind, its CPU per saga, what one copy serves, and per rate the
    cores at the target utilization and the copies; then the totals."""
    head = ["process kind", "one copy is", "CPU ms per saga", "one copy serves (purchases/s)"]
    head += [f"{_rate(r)}/s: cores / copies" for r in rates]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind in kinds:
        row = [kind.name, kind.copy, _ms(kind.cpu_ms), _serves(kind, utilization)]
        row += [_cell(kind, need(kind, r, utilization)) for r in rates]
        lines.append("| " + " | ".join(row) + " |")
    needed = [sum(need(k, r, utilization).cores for k in kinds) for r in rates]
    copies = [
        sum(need(k, r, utilization).copies for k in kinds if k.tier == "python") for r in rates
    ]
    # Stateless copies take their cores whole; a store's cores are what it needs.
    whole = [
        sum(
            need(k, r, utilization).cores
            if k.tier == "stateful"
            else need(k, r, utilization).copies * k.copy_cores
            for k in kinds
        )
        for r in rates
    ]
    total_ms = sum(k.cpu_ms for k in kinds)
    lines.append(
        f"| **total: cores needed** | | {total_ms:.2f} | | "
        + " | ".join(f"**{_cores(c)}**" for c in needed)
        + " |"
    )
    lines.append(
        "| total: Python processes / cores with copies rounded up | | | | "
        + " | ".join(f"{n} / {_cores(w)}" for n, w in zip(copies, whole, strict=True))
        + " |"
    )
    return "\n".join(lines)


def bounds_table(
    result: dict[str, Any], kinds: Sequence[Kind], rates: Sequence[float], utilization: float
) -> str:
    """What bounds the stateful tiers at each rate: transactions/s and connections per
    database, Kafka messages/s per topic (and per partition), gRPC calls/s."""
    per_saga = result["per_finished_saga"]
    partitions = INFRA.kafka_partitions
    head = ["figure", "per saga", *(f"at {_rate(r)}/s" for r in rates)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(name: str, each: float, cells: Iterable[str]) -> None:
        lines.append(f"| {name} | {each:.3g} | " + " | ".join(cells) + " |")

    databases: dict[str, float] = per_saga.get("db_transactions", {}).get("by_database", {})
    for database, each in databases.items():
        row(f"{database} transactions/s", each, (_rate(each * r) for r in rates))
    for database in sorted({k.database for k in kinds if k.database}):
        at_most = [
            sum(
                need(k, r, utilization).copies * k.connections
                for k in kinds
                if k.database == database
            )
            for r in rates
        ]
        lines.append(
            f"| {database} connections, at most (the copies above) | | "
            + " | ".join(_rate(n) for n in at_most)
            + " |"
        )
    topics: dict[str, float] = per_saga.get("kafka_messages", {}).get("by_topic", {})
    for topic, each in topics.items():
        if each > 0:
            cells = (
                f"{_rate(each * r)} ({_rate(each * r / partitions)} a partition)" for r in rates
            )
            row(f"Kafka `{topic}` messages/s", each, cells)
    grpc = per_saga.get("grpc_calls", {}).get("total")
    if grpc is not None:
        row("gRPC calls/s through Traefik", grpc, (_rate(grpc * r) for r in rates))
    return "\n".join(lines)


def source_line(path: Path, result: dict[str, Any]) -> str:
    """Which run the figures come from, and what it was."""
    per_saga = result["per_finished_saga"]
    invariants = result.get("invariants") or []
    held = sum(1 for i in invariants if i.get("ok"))
    options = result.get("options", {})
    # Recorded by runs that know the REPLICAS switch; older runs ran one copy of each.
    replicas = f", REPLICAS={options['replicas']}" if "replicas" in options else ""
    return (
        f"From `bench/results/{path.name}` (run of {result.get('when', '?')}, scenario"
        f" `{options.get('scenario', '?')}`{replicas}):"
        f" {per_saga['sagas']:,} finished sagas, {per_saga['cpu_ms']['stack']:.2f} ms of CPU"
        f" per saga over the stack, {result['machine']['cpus']} cores,"
        f" invariants held {held} of {len(invariants)}."
    )


def block(
    path: Path,
    result: dict[str, Any],
    *,
    rates: Sequence[float] = DEFAULT_RATES,
    utilization: float = DEFAULT_UTILIZATION,
    node_cores: float = DEFAULT_NODE_CORES,
) -> str:
    """The markdown docs/scaling.md holds between its markers: source, tables."""
    if not (result.get("per_finished_saga") or {}).get("sagas"):
        raise ValueError(f"{path.name}: no finished saga measured, nothing to scale from")
    kinds = all_kinds(result, node_cores)
    assumptions = (
        f"Cores are those needed at {utilization:.0%} utilization; a copy of a Python process"
        f" gets {PYTHON_COPY_CORES:g} core, a database primary or Kafka broker"
        f" {node_cores:g} (`--node-cores`). **Bold over**: past a hard bound."
    )
    return "\n\n".join(
        [
            source_line(path, result) + " " + assumptions,
            capacity_table(kinds, rates, utilization),
            bounds_table(result, kinds, rates, utilization),
        ]
    )


def replace_block(doc: str, new_block: str) -> str:
    """`doc` with the text between its markers replaced by `new_block`."""
    start, end = doc.find(BEGIN), doc.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the markers {BEGIN!r} and {END!r} are missing")
    return doc[: start + len(BEGIN)] + "\n" + new_block + "\n" + doc[end:]


def newest_seed_result(directory: Path = RESULTS_DIR, min_sagas: int = MIN_SAGAS) -> Path:
    """The newest seed run that finished at least `min_sagas` sagas, every invariant
    held (a run of a handful measures mostly idle background)."""
    for path in sorted(directory.glob("*-seed.json"), reverse=True):
        result = json.loads(path.read_text())
        sagas = (result.get("per_finished_saga") or {}).get("sagas") or 0
        invariants = result.get("invariants") or []
        if sagas >= min_sagas and invariants and all(i.get("ok") for i in invariants):
            return path
    raise FileNotFoundError(f"no seed run of {min_sagas}+ sagas in {directory}")


# ------------------------------------------------------------------------- the CLI


def _rates(text: str) -> list[float]:
    try:
        rates = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: give rates like 100,1000,10000") from exc
    if not rates or any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError(f"{text!r}: give positive rates like 100,1000")
    return rates


def _utilization(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text}: a fraction of a core, above 0, at most 1")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.capacity",
        description="A capacity table (cores and copies per process kind at given purchase"
        " rates) from a bench run's measured CPU per saga.",
    )
    parser.add_argument(
        "result",
        nargs="?",
        type=Path,
        help=f"a bench/results/*.json (default: the newest seed run of {MIN_SAGAS}+ sagas)",
    )
    parser.add_argument(
        "--rates",
        type=_rates,
        default=list(DEFAULT_RATES),
        help="purchases/s, comma-separated (100,1000,10000)",
    )
    parser.add_argument(
        "--utilization",
        type=_utilization,
        default=DEFAULT_UTILIZATION,
        help="target CPU utilization of every tier (0.6)",
    )
    parser.add_argument(
        "--node-cores",
        type=float,
        default=DEFAULT_NODE_CORES,
        help="cores of one database primary or Kafka broker (16)",
    )
    parser.add_argument(
        "--write-doc",
        nargs="?",
        type=Path,
        const=DOC,
        default=None,
        metavar="DOC",
        help="rewrite the table in DOC (docs/scaling.md)",
    )
    args = parser.parse_args(argv)
    try:
        path = args.result or newest_seed_result()
        result = json.loads(path.read_text())
        text = block(
            path, result, rates=args.rates, utilization=args.utilization, node_cores=args.node_cores
        )
        if args.write_doc is not None:
            doc = args.write_doc
            doc.write_text(replace_block(doc.read_text(), text))
            print(f"{doc}: capacity table rewritten from {path.name}")
        else:
            print(text)
    except (OSError, ValueError, KeyError) as exc:
        print(f"bench.capacity: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
