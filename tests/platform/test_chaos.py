"""`make chaos`, the fault matrix: its own logic (the fault table, the stall, the
verdict and the table, the client's patience) without a platform, and one cheap fault
end to end against the running one."""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import Collection
from datetime import UTC, datetime

import pytest
from aiohttp import web

from bench.chaos import faults, inject, report
from bench.chaos.faults import Fault, Kind
from bench.chaos.run import ChaosOptions, FaultRun, run_fault
from bench.chaos.stall import Stall, Work, longest_stall
from bench.checks import Check
from bench.client import Edge
from bench.runner import epoch
from bench.workload import Options
from common.contract.topics import Topic
from common.topology import INFRA
from deploy.local import supervisor
from deploy.local.programs import app_programs

# -- the fault table -------------------------------------------------------------------


def test_faults_are_picked_by_name_in_the_tables_order_each_once() -> None:
    chosen = faults.select("pg-restart, payment-down,pg-restart")

    assert [f.name for f in chosen] == ["payment-down", "pg-restart"]
    assert chosen[0] == Fault("payment-down", Kind.DOWN, "payment-grpc", chosen[0].what, seconds=60)


def test_a_pattern_picks_every_matching_fault_and_all_picks_the_table() -> None:
    kills = faults.select("kill-*")

    assert {f.target for f in kills if f.kind is Kind.KILL} >= {
        p.name for p in app_programs(observability=False)
    }
    assert [f.name for f in faults.select("all")] == list(faults.FAULTS)


@pytest.mark.parametrize("spec", ["no-such-fault", "kill-nothing-*", " , "])
def test_a_name_that_matches_nothing_is_refused_with_the_known_ones(spec: str) -> None:
    with pytest.raises(faults.UnknownFault) as refused:
        faults.select(spec)

    if spec.strip(" ,"):
        assert "payment-down" in str(refused.value)


def test_the_table_has_the_issues_faults() -> None:
    # Given the faults the issue lists, then each is in the table as that kind of fault
    table = faults.FAULTS
    order_down = table["order-down"]
    assert (order_down.target, order_down.seconds, order_down.scenario) == (
        "order-grpc",
        180,
        "reject10",
    )
    # payments held first, so the ones refused meet the outage with an order to cancel
    assert (order_down.hold, order_down.refused_step) == ("payment-grpc", "CREATE_PAYMENT")
    assert table["payment-down"].seconds == 60
    assert table["pg-kill"].kind is Kind.KILL and table["pg-kill"].target == "postgres"
    for name, target in (
        ("pg-restart", "postgres"),
        ("kafka-restart", "kafka"),
        ("traefik-restart", "traefik"),
        ("broker-restart", "redis-broker"),
    ):
        assert (table[name].kind, table[name].target) == (Kind.RESTART, target)
    assert table["redis-failover"].kind is Kind.FAILOVER
    for topic in Topic:
        assert table[f"poison-{topic}"].kind is Kind.POISON
        assert table[f"duplicate-{topic}"].kind is Kind.DUPLICATE
    assert set(inject.INJECTORS) == set(Kind)


def test_a_fault_that_needs_its_own_workload_gets_it_and_the_drain_is_the_matrixs() -> None:
    chaos = ChaosOptions(purchases=40, concurrency=8, scenario="seed")

    options = chaos.bench_options(faults.FAULTS["order-down"])

    assert (options.scenario, options.purchases, options.concurrency) == ("reject10", 40, 8)
    assert options.one_at_a_time == 0
    assert chaos.bench_options(faults.FAULTS["pg-kill"]).scenario == "seed"


# -- the stall -------------------------------------------------------------------------


def test_no_work_pending_is_no_stall() -> None:
    work = [Work(0.0, 0.1, 1.0), Work(0.0, 0.1, 2.0)]

    assert longest_stall(work, since=5.0, until=9.0) == Stall(0.0, None, None)


def test_the_stall_is_the_longest_gap_without_progress_while_work_is_pending() -> None:
    # Given purchases final at 1, 2 and 14 s, all POSTed at 0
    work = [Work(0.0, 0.1, 1.0), Work(0.0, 0.1, 2.0), Work(0.0, 0.1, 14.0)]

    # then the stall is 2 -> 14 s
    assert longest_stall(work, since=0.0, until=14.0) == Stall(12.0, 2.0, 14.0)
    # and measured from 8 s (the faulted process back), only its part after 8 s counts
    assert longest_stall(work, since=8.0, until=14.0) == Stall(6.0, 8.0, 14.0)


def test_a_stall_begins_when_work_arrives_and_an_acceptance_is_progress() -> None:
    # Given nothing pending until a POST at 5 s, accepted at 6 s, final at 9 s
    work = [Work(0.0, 0.1, 1.0), Work(5.0, 6.0, 9.0)]

    found = longest_stall(work, since=0.0, until=9.0)

    assert found == Stall(3.0, 6.0, 9.0)


def test_a_purchase_never_final_stalls_until_the_last_look() -> None:
    work = [Work(0.0, 0.2, 1.0), Work(0.0, 0.3, None)]

    assert longest_stall(work, since=0.5, until=31.0) == Stall(30.0, 1.0, 31.0)


# -- the verdict and the table ---------------------------------------------------------


def _run(
    statuses: list[str], *, rejected: Collection[int] = (), refused: int = 0, gap: float = 0.0
) -> FaultRun:
    """A fault's run as collected: purchase n POSTed at n/10 s, final 1 s later, the
    last one `gap` s later; the fault injected at 1 s, back at 2 s."""
    fault = faults.FAULTS["kill-purchase-relay"]
    t0 = 1000.0
    found = FaultRun(fault, Options(purchases=len(statuses)), inject.Injection(fault))
    found.injection.injected_at, found.injection.back_at = t0 + 1, t0 + 2
    found.started, found.drained = t0, True
    for n, status in enumerate(statuses):
        sent = t0 + n / 10
        final = sent + 1 + (gap if n == len(statuses) - 1 else 0)
        pid = f"p{n}"
        found.records[pid] = {
            "sent_at": sent,
            "accepted_at": sent + 0.05,
            "rejected_on_purpose": n in rejected,
        }
        found.server[pid] = {
            "status": status,
            "updated_at": datetime.fromtimestamp(final, tz=UTC).isoformat(),
        }
    found.ended = max(epoch(p["updated_at"]) for p in found.server.values())
    found.not_accepted = [{"index": 99, "phase": "load", "status": 500}] * refused
    found.checks = [Check("inventory conservation", True, "fine")]
    return found


def test_a_run_with_everything_completed_and_no_stall_passes() -> None:
    data = report.figures(_run(["COMPLETED"] * 20), stall_limit=10.0)

    assert data["ok"], data["problems"]
    assert data["requests"] == {
        "accepted": 20,
        "refused": 0,
        "refused_by_answer": {},
        "retried_by_kind": {},
    }
    assert data["back_after_seconds"] == 1.0
    assert data["last_final_after_injection_seconds"] == pytest.approx(1.9)
    assert data["latency_seconds"]["p50"] == pytest.approx(1.0)


def test_a_purchase_refused_is_reported_by_the_answer_it_got() -> None:
    data = report.figures(_run(["COMPLETED"] * 5, refused=2), stall_limit=10.0)

    assert not data["ok"]
    assert data["requests"]["refused_by_answer"] == {"500": 2}
    assert data["problems"] == ["2 purchase(s) refused"]


def test_only_purchases_rejected_on_purpose_may_fail() -> None:
    statuses = ["COMPLETED", "FAILED", "COMPLETED", "FAILED"]

    on_purpose = report.figures(_run(statuses, rejected={1, 3}), stall_limit=10.0)
    by_the_fault = report.figures(_run(statuses, rejected={1}), stall_limit=10.0)

    assert on_purpose["ok"] and on_purpose["outcomes"]["rejected_on_purpose"] == 2
    assert by_the_fault["outcomes"]["failed_by_fault"] == 1
    assert by_the_fault["problems"] == ["1 purchase(s) failed because of the fault"]


def test_a_stall_after_the_fault_longer_than_the_limit_fails_the_fault() -> None:
    # Given five purchases final at 1.0-1.3 s but the last at 26.4 s, the fault's
    # process back at 2 s
    data = report.figures(_run(["COMPLETED"] * 5, gap=25.0), stall_limit=10.0)

    # then the stall is 2 -> 26.4 s, and too long
    assert data["stall_seconds"] == pytest.approx(24.4)
    assert data["stall_window_seconds"] == [2.0, 26.4]
    assert data["problems"] == ["stall 24.4 s > 10 s"]


def test_a_broken_invariant_and_an_undrained_load_are_named() -> None:
    found = _run(["COMPLETED", "PENDING"])
    found.drained = False
    found.checks.append(Check("no saga left unfinished", False, "1 PENDING"))

    data = report.figures(found, stall_limit=10.0)

    assert data["problems"][:2] == ["invariant broken: no saga left unfinished", "not drained"]


def test_a_fault_that_came_after_the_load_was_over_proves_nothing() -> None:
    # Given a load whose purchases were all final before the fault came
    found = _run(["COMPLETED"] * 5)
    found.injection.injected_at = found.injection.back_at = found.ended + 5

    data = report.figures(found, stall_limit=10.0)

    # then the fault fails for it, unless it is the baseline (no fault at all)
    assert data["hit"] == 0
    assert data["problems"] == [
        "the fault hit no purchase: the load was over before it (send slower: RATE)"
    ]
    found.fault = faults.FAULTS["baseline"]
    assert report.figures(found, stall_limit=10.0)["ok"]


def test_the_table_has_a_row_per_fault_and_says_why_one_failed() -> None:
    passed = report.figures(_run(["COMPLETED"] * 3), stall_limit=10.0)
    failed = report.figures(_run(["COMPLETED"] * 3, refused=1), stall_limit=10.0)
    stopped = report.unhealthy("kafka-restart", "kafka: topics missing")

    lines = report.table([passed, failed, stopped]).splitlines()

    assert lines[0].split()[:2] == ["fault", "verdict"]
    assert lines[2].split()[:4] == ["kill-purchase-relay", "ok", "2", "1/1"]
    assert lines[3].split()[:2] == ["kill-purchase-relay", "FAIL"]
    assert lines[4].split()[:2] == ["kafka-restart", "ABORTED"]
    assert "kill-purchase-relay: 1 purchase(s) refused" in lines
    assert "kafka-restart: platform not healthy: kafka: topics missing" in lines
    assert not report.document(ChaosOptions(), [passed, failed], 0.0)["ok"]


# -- the well-behaved client -----------------------------------------------------------


def test_the_chaos_client_retries_an_outage_for_its_patience_with_the_same_key() -> None:
    # Given an edge that answers 503 three times, then 202
    seen: list[str | None] = []

    async def purchase(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Idempotency-Key"))
        if len(seen) <= 3:
            return web.json_response({"error": {"code": "unavailable"}}, status=503)
        return web.json_response({"id": "p1"}, status=202)

    async def scenario(retry_seconds: float | None) -> int:
        seen.clear()
        app = web.Application()
        app.router.add_post("/api/v1/purchases", purchase)
        runner = web.AppRunner(app)
        await runner.setup()
        with socket.socket() as probe:  # a free port
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        await web.TCPSite(runner, "127.0.0.1", port).start()
        edge = Edge(f"http://127.0.0.1:{port}", connections=1, retry_seconds=retry_seconds)
        try:
            answer = await edge.request(
                "POST", "/api/v1/purchases", headers={"Idempotency-Key": "k1"}, retries=1
            )
            return answer.status
        finally:
            await edge.close()
            await runner.cleanup()

    # when a client with 30 s of patience posts, then it gets the 202, each try keyed alike
    assert asyncio.run(scenario(30.0)) == 202
    assert seen == ["k1"] * 4
    # and one with a count of retries (the bench's) gives up with the 503
    assert asyncio.run(scenario(None)) == 503


# -- one fault against the running platform --------------------------------------------


def test_a_relay_killed_under_load_costs_no_purchase() -> None:
    # Given a small load, with the purchase relay SIGKILLed a second into it
    fault = faults.FAULTS["kill-purchase-relay"]
    before = supervisor.pids()[fault.target]
    chaos = ChaosOptions(
        purchases=30, concurrency=10, customers=3, inject_after=1.0, rate=15.0, drain_timeout=40
    )

    # when the matrix runs that fault
    found = asyncio.run(run_fault(fault, chaos, INFRA.edge_url))
    data = report.figures(found, chaos.stall_limit)

    # then a new relay runs, and every purchase was accepted and completed, the
    # invariants hold and nothing stalled
    assert supervisor.pids()[fault.target] != before
    assert data["timeline_seconds"]["injected"] is not None
    assert data["back_after_seconds"] is not None and not math.isnan(data["back_after_seconds"])
    assert data["ok"], data["problems"]
    assert data["outcomes"]["by_status"] == {"COMPLETED": 30}
