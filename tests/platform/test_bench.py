"""The bench's arithmetic: counters read from /metrics, deltas and figures per saga,
the steady search's next rate and verdict, the workload's purchases drawn in phases.
Unit tests: no platform needed."""

from __future__ import annotations

import math

from bench import counters, per_saga, procstat, steady
from bench.procstat import Sample
from bench.window import Measured
from bench.workload import MAX_SEARCH_RATE, Options, Workload

METRICS_PAGE = """\
# HELP grpc_server_handled_total RPCs this server answered, by full method name and status code.
# TYPE grpc_server_handled_total counter
grpc_server_handled_total{code="OK",method="/product.ProductService/ReserveInventory"} 40.0
grpc_server_handled_total{code="ABORTED",method="/product.ProductService/ReserveInventory"} 2.0
grpc_server_handled_total{code="OK",method="/product.ProductService/CheckProducts"} 42.0
# HELP grpc_server_handled_created RPCs this server answered.
# TYPE grpc_server_handled_created gauge
grpc_server_handled_created{code="OK",method="/product.ProductService/CheckProducts"} 1.7e9
# HELP http_requests_total HTTP requests handled.
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/healthz"} 9.0
"""


def step(rate: float, sustained: bool) -> steady.Step:
    return steady.Step(rate, 10, 10, 10, 0.1, 0.5 if sustained else 2.0, 20.0, sustained)


# -- counters --------------------------------------------------------------------------


def test_grpc_calls_are_the_handled_counter_summed_over_status_codes() -> None:
    assert counters.handled_by_method(METRICS_PAGE) == {
        "/product.ProductService/ReserveInventory": 42.0,
        "/product.ProductService/CheckProducts": 42.0,
    }


def test_a_page_without_the_counter_counts_no_call() -> None:
    assert counters.handled_by_method('http_requests_total{method="GET"} 3.0\n') == {}


def test_a_delta_is_what_each_key_grew_by_and_a_new_key_started_at_zero() -> None:
    before = {"purchase": 10.0, "purchase.DLQ": 0.0}
    after = {"purchase": 60.0, "purchase.DLQ": 0.0, "purchase-result": 300.0}

    assert counters.delta(before, after) == {
        "purchase": 50.0,
        "purchase.DLQ": 0.0,
        "purchase-result": 300.0,
    }


def test_a_counter_that_shrank_restarted_and_spoils_the_delta() -> None:
    grown = counters.delta({"/order.OrderService/CreateOrder": 90.0}, {})

    assert grown == {}
    spoiled = counters.delta(
        {"/order.OrderService/CreateOrder": 90.0}, {"/order.OrderService/CreateOrder": 5.0}
    )
    assert isinstance(spoiled, str) and "restarted" in spoiled


def test_a_source_that_could_not_be_read_passes_its_reason_on() -> None:
    assert counters.delta("OSError: refused", {"a": 1.0}) == "OSError: refused"
    assert counters.delta({"a": 1.0}, "timed out") == "timed out"


def test_counts_per_saga_divide_by_the_finished_sagas() -> None:
    assert counters.per_saga({"purchase_db": 300.0, "order_db": 50.0}, 100) == {
        "purchase_db": 3.0,
        "order_db": 0.5,
    }
    assert counters.per_saga({"purchase_db": 300.0}, 0) == {}


# -- what counts as the stack ----------------------------------------------------------


def test_the_stack_is_the_platforms_processes_and_its_six_databases() -> None:
    for label in (
        "orchestrator-worker",
        "purchase (other)",
        "postgres backend purchase_db",
        "postgres (server)",
        "kafka",
        "traefik",
        "redis-broker",
        "redis-cluster (6 nodes)",
    ):
        assert procstat.in_stack(label), label
    for label in (
        "bench (this load generator)",
        "pytest (another suite)",
        "postgres backend test_purchase_db",
        "bash",
    ):
        assert not procstat.in_stack(label), label
    postmaster = "/usr/lib/postgresql/15/bin/postgres -D /work/main/var/postgres"
    assert procstat.label_of(1, postmaster, "postgres") == "postgres (server)"


def test_figures_per_saga_count_the_stack_and_list_the_rest_apart() -> None:
    measured = Measured(
        seconds=12.0,
        cpu=[
            Sample("orchestrator-worker", 3.0),
            Sample("bench (this load generator)", 2.0),
            Sample("kafka", 1.0),
        ],
        bench_cpu_seconds=2.0,
        counts={
            "db_transactions": {"purchase_db": 600.0, "order_db": 200.0},
            "kafka_messages": {"purchase": 100.0, "purchase.DLQ": 0.0},
            "grpc_calls": "URLError: refused",
        },
    )

    found = per_saga.figures(measured, 100, foreign_purchases=0)

    assert found["cpu_ms"]["stack"] == 40.0
    assert found["cpu_ms"]["by_process"] == {"orchestrator-worker": 30.0, "kafka": 10.0}
    assert found["cpu_ms"]["not_counted"] == {"bench (this load generator)": 20.0}
    assert found["db_transactions"]["total"] == 8.0
    assert found["db_transactions"]["by_database"] == {"purchase_db": 6.0, "order_db": 2.0}
    assert found["kafka_messages"]["by_topic"] == {"purchase": 1.0, "purchase.DLQ": 0.0}
    assert found["grpc_calls"] == {"error": "URLError: refused"}
    table = dict(per_saga.rows(found, {"orchestrator-worker": 25.0, "kafka": 8.3}))
    assert table["per finished saga (n=100)"] == (
        "CPU 40.0 ms, DB transactions 8.00, Kafka messages 1.00, gRPC calls -"
    )
    assert table["  CPU ms by process (% of a core)"] == (
        "orchestrator-worker 30.0 (25%), kafka 10.0 (8%)"
    )
    assert table["  Kafka messages by topic"] == "purchase 1.00"
    assert table["  gRPC calls by method"] == "not measured: URLError: refused"
    assert "  NOT the bench's alone" not in table
    shared = dict(per_saga.rows(per_saga.figures(measured, 100, foreign_purchases=7), {}))
    assert shared["  NOT the bench's alone"].startswith("7 purchases by other clients")


# -- the steady search -----------------------------------------------------------------


def test_the_search_grows_the_rate_while_each_step_is_sustained() -> None:
    assert steady.next_rate([]) == steady.START_RATE
    assert steady.next_rate([step(10, True)]) == 15.0
    assert steady.next_rate([step(10, True), step(15, True)]) == 22.5
    assert steady.next_rate([step(MAX_SEARCH_RATE, True)]) is None


def test_after_a_failed_step_the_search_halves_the_bracket_until_it_is_narrow() -> None:
    steps = [step(10, True), step(15, True), step(22.5, False)]
    assert steady.next_rate(steps) == 18.8
    steps.append(step(18.8, True))
    assert steady.next_rate(steps) == 20.6
    steps.append(step(20.6, False))
    assert steady.next_rate(steps) is None  # 20.6 is within 10 % of 18.8
    assert steady.highest_sustained(steps) == 18.8


def test_a_first_step_that_fails_halves_the_rate_down_to_one_per_second() -> None:
    assert steady.next_rate([step(10, False)]) == 5.0
    assert steady.next_rate([step(1.5, False)]) is None
    assert steady.highest_sustained([step(10, False)]) is None


def test_a_lucky_step_above_a_failed_rate_is_not_the_answer() -> None:
    assert steady.highest_sustained([step(10, True), step(15, False), step(20, True)]) == 10


def test_a_step_is_sustained_only_if_every_purchase_finished_under_the_target() -> None:
    quick = [0.2] * 99 + [0.4]
    assert steady.judge(10, 100, quick, 100, 2.0, target=1.0).sustained
    assert steady.judge(10, 100, quick, 100, 2.0, target=1.0).cpu_ms_per_saga == 20.0
    slow = [0.2] * 98 + [1.5, 1.6]
    assert not steady.judge(10, 100, slow, 100, 2.0, target=1.0).sustained
    assert not steady.judge(10, 100, quick[:90], 100, 2.0, target=1.0).sustained
    assert not steady.judge(10, 100, quick[:90], 90, 2.0, target=1.0).sustained
    assert math.isnan(steady.judge(10, 100, [], 100, 2.0, target=1.0).p99)


# -- the workload ----------------------------------------------------------------------


def test_later_phases_draw_purchases_after_the_load_with_new_keys() -> None:
    workload = Workload.build(Options(purchases=5, customers=2), "run1")
    more = workload.draw(3)

    assert [p.index for p in workload.plans] == list(range(8))
    assert [p.index for p in more] == [5, 6, 7]
    assert len({p.idempotency_key for p in workload.plans}) == 8
    again = Workload.build(Options(purchases=5, customers=2), "run1")
    assert again.draw(3) == more  # one seed, the same purchases


def test_a_fixed_rate_is_bounded_by_purchases_and_duration_and_a_search_plans_none() -> None:
    assert Options(scenario="steady", rate=5, purchases=50).load_purchases == 50
    assert Options(scenario="steady", rate=5, purchases=1000, duration=60).load_purchases == 300
    search = Options(scenario="steady", duration=120, one_at_a_time=100)
    assert search.searching and search.load_purchases == 0
    assert search.most_purchases == MAX_SEARCH_RATE * 120 + 100
    assert Options(purchases=1000, one_at_a_time=100).most_purchases == 1100
