"""The capacity table (bench/capacity.py): cores and copies per process kind at given
purchase rates, from a bench run's JSON. A small synthetic run; no platform needed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bench import capacity
from common.settings import REPO_ROOT
from common.topology import INFRA


def run(by_process: dict[str, float], *, sagas: int = 1000, ok: bool = True) -> dict[str, Any]:
    """The parts of a bench JSON the table reads."""
    return {
        "when": "2026-12-07T09:16:58+0000",
        "options": {"scenario": "seed", "purchases": sagas},
        "machine": {"cpus": 2},
        "per_finished_saga": {
            "sagas": sagas,
            "cpu_ms": {"stack": sum(by_process.values()), "by_process": by_process},
            "db_transactions": {"by_database": {"purchase_db": 2.5, "orchestrator_db": 0.1}},
            "kafka_messages": {"by_topic": {"purchase-result": 6.0, "purchase": 1.0}},
            "grpc_calls": {"total": 1.04},
        },
        "invariants": [{"name": "one purchase per request", "ok": ok, "detail": ""}],
    }


SMALL = {
    "purchase-http": 1.5,
    "purchase-http-2": 1.5,  # a second copy: counted with the first
    "purchase-consumer": 0.2,
    "orchestrator-worker": 0.8,
    "kafka": 1.0,
    "traefik": 0.8,
    "redis-cluster (6 nodes)": 0.2,
    "redis-broker": 0.01,
    "postgres backend purchase_db": 0.9,
    "supervisord": 0.01,  # local only
}


def kinds(by_process: dict[str, float] = SMALL) -> dict[str, capacity.Kind]:
    return {k.name: k for k in capacity.all_kinds(run(by_process), node_cores=16)}


def row(table: str, name: str) -> list[str]:
    """The cells of the table's row whose first cell is `name`."""
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] == name:
            return cells
    raise AssertionError(f"no row {name!r} in\n{table}")


def test_copies_of_a_process_count_as_one_kind_and_the_supervisor_is_left_out() -> None:
    costs = capacity.process_costs(run(SMALL))

    assert costs["purchase-http"] == pytest.approx(3.0)
    assert "purchase-http-2" not in costs
    assert "supervisord" not in costs
    assert capacity.kind_of("orchestrator-worker-3") == "orchestrator-worker"
    assert capacity.kind_of("redis-7000") == "redis-7000"  # a node, not a copy


def test_cores_are_the_rate_times_the_cost_over_the_utilization_in_whole_copies() -> None:
    worker = kinds()["orchestrator-worker"]  # 0.8 ms a saga, one core a copy

    at_1000 = capacity.need(worker, 1000, 0.6)  # 0.8 cores of work: 1.33 at 60 %
    at_750 = capacity.need(worker, 750, 0.6)  # exactly 1 core: one copy, not two

    assert at_1000.cores == pytest.approx(1000 * 0.8 / 1000 / 0.6)
    assert at_1000.copies == 2
    assert at_750.copies == 1


def test_every_process_kind_of_the_topology_gets_a_row_measured_or_not() -> None:
    table = capacity.capacity_table(list(kinds().values()), [100.0], 0.6)

    assert row(table, "account-http")[4] == "0.00 / 1"  # not measured: still one copy
    assert row(table, "purchase-http")[2] == "3.00"  # both copies' ms


def test_consumers_beyond_the_partitions_are_marked_over_their_bound() -> None:
    partitions = INFRA.kafka_partitions
    consumer = kinds({"purchase-consumer": 2.0})["purchase-consumer"]
    rate = (partitions + 1) * 0.6 * 1000 / 2.0  # work for one consumer more than partitions

    over = capacity.need(consumer, rate, 0.6)
    table = capacity.capacity_table([consumer], [rate], 0.6)

    assert over.copies == partitions + 1 and over.over_bound
    assert f"**over {partitions} partitions**" in row(table, "purchase-consumer")[4]


def test_beat_stays_one_copy_and_is_marked_when_one_is_not_enough() -> None:
    beat = kinds({"orchestrator-beat": 1.0})["orchestrator-beat"]

    assert capacity.need(beat, 100, 0.6).copies == 1
    assert capacity.need(beat, 10000, 0.6).over_bound


def test_stores_are_sized_in_cores_with_their_own_floors_and_bounds() -> None:
    found = kinds()

    cluster = capacity.need(found["Redis Cluster (cache)"], 100, 0.6)
    broker = capacity.need(found["Redis (Celery broker)"], 100_000, 0.6)  # 1.67 cores
    primary = capacity.need(found["PostgreSQL purchase_db"], 1000, 0.6)

    assert cluster.copies == 3  # the cluster's three masters, however idle
    assert broker.over_bound  # past one single-threaded Redis
    assert primary.cores == pytest.approx(1.5) and not primary.over_bound


def test_totals_add_every_kind_and_count_the_python_processes() -> None:
    found = list(kinds().values())
    table = capacity.capacity_table(found, [1000.0], 0.6)

    needed = sum(capacity.need(k, 1000, 0.6).cores for k in found)
    python = sum(capacity.need(k, 1000, 0.6).copies for k in found if k.tier == "python")

    assert row(table, "**total: cores needed**")[4] == f"**{needed:.1f}**"
    assert row(table, "total: Python processes / cores with copies rounded up")[4].startswith(
        f"{python} / "
    )


def test_the_stateful_figures_scale_with_the_rate() -> None:
    found = list(kinds().values())
    table = capacity.bounds_table(run(SMALL), found, [100.0, 1000.0], 0.6)

    assert row(table, "purchase_db transactions/s")[2:] == ["250", "2,500"]
    per_partition = 6.0 * 1000 / INFRA.kafka_partitions
    assert row(table, "Kafka `purchase-result` messages/s")[3] == (
        f"6,000 ({per_partition:,.0f} a partition)"
    )


def test_connections_per_database_follow_the_copies_and_their_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GUNICORN_WORKERS", "3")
    monkeypatch.setenv("GUNICORN_THREADS", "4")
    found = list(kinds().values())

    table = capacity.bounds_table(run(SMALL), found, [1000.0], 0.6)

    # 1,000/s: purchase-http 5 copies x 3 workers x (4 threads + 1 stream listener),
    # one relay (its batches and its LISTEN), one consumer.
    assert row(table, "purchase_db connections, at most (the copies above)")[2] == "78"


def test_the_relay_bound_is_the_relays_own_number_of_lanes() -> None:
    source = (REPO_ROOT / "common/src/common/outbox/relay.py").read_text()
    lanes = re.search(r"^LANES = (\d+)", source, re.MULTILINE)

    assert lanes is not None and int(lanes.group(1)) == capacity.RELAY_LANES


def test_the_newest_seed_run_with_enough_sagas_and_invariants_held_is_chosen(
    tmp_path: Path,
) -> None:
    for name, result in (
        ("20261207-080000-seed.json", run(SMALL)),
        ("20261207-090000-seed.json", run(SMALL, ok=False)),  # an invariant broke
        ("20261207-091000-seed.json", run(SMALL, sagas=1)),  # too few to measure
        ("20261207-092000-steady.json", run(SMALL)),  # not the seed scenario
    ):
        (tmp_path / name).write_text(json.dumps(result))

    assert capacity.newest_seed_result(tmp_path).name == "20261207-080000-seed.json"


def test_write_doc_replaces_only_the_block_between_the_markers(tmp_path: Path) -> None:
    result = tmp_path / "20261207-080000-seed.json"
    result.write_text(json.dumps(run(SMALL)))
    doc = tmp_path / "scaling.md"
    doc.write_text(f"# Scaling\nbefore\n{capacity.BEGIN}\nold table\n{capacity.END}\nafter\n")

    code = capacity.main([str(result), "--rates", "100,1000", "--write-doc", str(doc)])

    text = doc.read_text()
    assert code == 0
    assert "old table" not in text
    assert text.startswith("# Scaling\nbefore\n") and text.endswith(f"{capacity.END}\nafter\n")
    assert "`bench/results/20261207-080000-seed.json`" in text
    assert "| 1,000/s: cores / copies |" in text


def test_a_doc_without_markers_is_left_alone_and_the_command_fails(tmp_path: Path) -> None:
    result = tmp_path / "run.json"
    result.write_text(json.dumps(run(SMALL)))
    doc = tmp_path / "scaling.md"
    doc.write_text("# Scaling\n")

    assert capacity.main([str(result), "--write-doc", str(doc)]) == 2
    assert doc.read_text() == "# Scaling\n"


def test_a_run_without_finished_sagas_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = tmp_path / "run.json"
    result.write_text(json.dumps(run(SMALL, sagas=0)))

    assert capacity.main([str(result)]) == 2
    assert "no finished saga" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--utilization", "1.5"], ["--rates", "100,-1"]])
def test_bad_options_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        capacity.main(argv)

    assert exited.value.code == 2


def test_the_scaling_doc_holds_a_generated_table() -> None:
    doc = (REPO_ROOT / "docs" / "scaling.md").read_text()
    inside = doc.split(capacity.BEGIN, 1)[1].split(capacity.END, 1)[0]

    assert "`bench/results/" in inside
    assert "| **total: cores needed** |" in inside
