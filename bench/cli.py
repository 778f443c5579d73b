"""`python -m bench` (`make bench`): options, the run, the summary table and the files."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bench import report, runner
from bench.workload import SCENARIOS, Options
from common.settings import REPO_ROOT
from common.topology import INFRA


def parse(argv: list[str] | None) -> tuple[Options, str]:
    d = Options()
    parser = argparse.ArgumentParser(
        prog="make bench",
        description="Drive purchase sagas through the edge and measure them."
        " Scenarios: " + "; ".join(f"{k}: {v}" for k, v in SCENARIOS.items()),
    )
    arg = parser.add_argument
    arg("--scenario", choices=sorted(SCENARIOS), default=d.scenario)
    arg("--purchases", type=int, default=d.purchases, help="purchases to send (%(default)s)")
    arg("--concurrency", type=int, default=d.concurrency, help="POSTs in flight at most")
    arg("--products", type=int, default=d.products, help="products to buy from (%(default)s)")
    arg("--lines", type=int, default=d.lines, help="products per purchase (%(default)s)")
    arg("--quantity", type=int, default=d.quantity, help="units per line (%(default)s)")
    arg("--skew", type=float, default=d.skew, help="Zipf exponent of demand; 0 = uniform")
    arg("--customers", type=int, default=d.customers, help="buyers, registered first")
    arg("--inventory", type=int, default=None, help="units per product (default: enough)")
    arg(
        "--rate",
        type=float,
        default=d.rate,
        help="purchases/s to start (open loop); 0 = flat out, or with steady: search",
    )
    arg(
        "--duration",
        type=float,
        default=d.duration,
        help="steady: seconds of sending at most, all steps of a search together (%(default)s)",
    )
    arg(
        "--step-seconds",
        type=float,
        default=d.step_seconds,
        help="steady search: seconds of sending per rate tried (%(default)s)",
    )
    arg(
        "--p99-target",
        type=float,
        default=d.p99_target,
        help="steady: POST->final p99 in seconds a sustained rate stays under (%(default)s)",
    )
    arg(
        "--one-at-a-time",
        type=int,
        default=d.one_at_a_time,
        help="purchases sent one after another's final state, after the load;"
        " 0 = none (%(default)s)",
    )
    arg("--drain-timeout", type=float, default=d.drain_timeout, help="seconds to wait at the end")
    arg("--poll-interval", type=float, default=d.poll_interval, help="seconds between counts")
    arg("--seed", type=int, default=d.seed, help="random seed of the workload")
    arg("--out", default=str(REPO_ROOT / d.out_dir), help="where the JSON and PNG go")
    arg("--no-chart", action="store_true", help="write no PNG")
    arg(
        "--profile",
        metavar="PROCESS",
        help="py-spy the process with this label (e.g. orchestrator-worker) during the"
        " load; 'auto' picks the hottest service process",
    )
    arg("--edge", default=INFRA.edge_url, help="the edge's URL (%(default)s)")
    ns = parser.parse_args(argv)
    if ns.purchases < 1 or ns.concurrency < 1 or ns.products < 1 or ns.customers < 1:
        parser.error("purchases, concurrency, products and customers must be at least 1")
    if ns.one_at_a_time < 0 or ns.duration <= 0 or ns.step_seconds <= 0 or ns.p99_target <= 0:
        parser.error("one-at-a-time must be at least 0; duration, step and target above 0")
    options = Options(
        scenario=ns.scenario,
        purchases=ns.purchases,
        concurrency=ns.concurrency,
        products=ns.products,
        lines=ns.lines,
        quantity=ns.quantity,
        skew=ns.skew,
        customers=ns.customers,
        inventory=ns.inventory,
        rate=ns.rate,
        duration=ns.duration,
        step_seconds=ns.step_seconds,
        p99_target=ns.p99_target,
        one_at_a_time=ns.one_at_a_time,
        drain_timeout=ns.drain_timeout,
        poll_interval=ns.poll_interval,
        seed=ns.seed,
        out_dir=ns.out,
        chart=not ns.no_chart,
        profile=ns.profile,
    )
    return options, ns.edge


def main(argv: list[str] | None = None) -> int:
    options, edge = parse(argv)
    try:
        outcome = asyncio.run(runner.run(options, edge))
    except runner.EdgeError as error:
        print(f"bench: {error} (is the platform up? make up)", file=sys.stderr)
        return 2
    data = report.figures(outcome)
    print(report.summary(data))
    for path in report.write(data, Path(options.out_dir), chart=options.chart):
        print(f"wrote {path}")
    return 0 if all(c.ok for c in outcome.checks) and outcome.drained else 1
