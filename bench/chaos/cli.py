"""`python -m bench.chaos` (`make chaos`): pick the faults, run each under load, print
the table and write bench/results/<time>-chaos.json."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from bench.chaos import faults, platform, report
from bench.chaos.run import ChaosOptions, run_fault
from bench.client import EdgeError
from bench.workload import SCENARIOS
from common.settings import REPO_ROOT
from common.topology import INFRA


def parse(argv: list[str] | None) -> tuple[ChaosOptions, str, bool]:
    d = ChaosOptions()
    parser = argparse.ArgumentParser(
        prog="make chaos",
        description="Run a bounded bench load per fault, inject the fault, drain, check the"
        " invariants, report per fault (docs/reliability.md).",
    )
    arg = parser.add_argument
    arg("--faults", default=d.faults, help="names or patterns, comma-separated (%(default)s)")
    arg("--list", action="store_true", help="list the faults and exit")
    arg("--purchases", type=int, default=d.purchases, help="purchases per fault (%(default)s)")
    arg("--concurrency", type=int, default=d.concurrency, help="POSTs in flight (%(default)s)")
    arg("--inject-after", type=float, default=d.inject_after, help="seconds into the load")
    arg("--scenario", choices=sorted(SCENARIOS.keys() - {"steady"}), default=d.scenario)
    arg("--customers", type=int, default=d.customers, help="buyers per fault (%(default)s)")
    arg("--rate", type=float, default=d.rate, help="purchases/s to start; 0 = flat out")
    arg("--drain-timeout", type=float, default=d.drain_timeout, help="seconds, once undone")
    arg("--retry-seconds", type=float, default=d.retry_seconds, help="a request's patience")
    arg("--stall-limit", type=float, default=d.stall_limit, help="longest stall that passes")
    arg("--health-timeout", type=float, default=d.health_timeout, help="seconds to recover")
    arg("--seed", type=int, default=d.seed, help="random seed of the workload")
    arg("--out", default=str(REPO_ROOT / d.out_dir), help="where the JSON goes")
    arg("--edge", default=INFRA.edge_url, help="the edge's URL (%(default)s)")
    ns = parser.parse_args(argv)
    if ns.purchases < 1 or ns.concurrency < 1 or ns.customers < 1:
        parser.error("purchases, concurrency and customers must be at least 1")
    if ns.inject_after < 0 or ns.rate < 0 or ns.retry_seconds < 0:
        parser.error("inject-after, rate and retry-seconds must not be negative")
    try:
        faults.select(ns.faults)
    except faults.UnknownFault as error:
        parser.error(str(error))
    options = ChaosOptions(
        faults=ns.faults,
        purchases=ns.purchases,
        concurrency=ns.concurrency,
        inject_after=ns.inject_after,
        scenario=ns.scenario,
        customers=ns.customers,
        rate=ns.rate,
        drain_timeout=ns.drain_timeout,
        retry_seconds=ns.retry_seconds,
        stall_limit=ns.stall_limit,
        health_timeout=ns.health_timeout,
        seed=ns.seed,
        out_dir=ns.out,
    )
    return options, ns.edge, ns.list


def listing() -> str:
    width = max(len(name) for name in faults.FAULTS)
    return "\n".join(f"{name:<{width}}  {f.what}" for name, f in faults.FAULTS.items())


async def run_matrix(chaos: ChaosOptions, edge: str, results: list[dict[str, Any]]) -> None:
    """Each chosen fault in turn, its figures appended to `results` as it ends; stops at
    a fault after which the platform is unhealthy."""
    chosen = faults.select(chaos.faults)
    for n, fault in enumerate(chosen, 1):
        print(f"\n== {n}/{len(chosen)} {fault.name}: {fault.what}", flush=True)
        try:
            try:
                found = await run_fault(fault, chaos, edge)
            except EdgeError as error:
                # The setup or the final listing could not talk to the edge (another
                # engineer's restart of it, say): once more, from a healthy platform.
                print(f"  {fault.name}: {error}; once more", flush=True)
                found = await run_fault(fault, chaos, edge)
        except (platform.Unhealthy, EdgeError) as error:
            print(f"  {fault.name}: the matrix stops: {error}", flush=True)
            results.append(report.unhealthy(fault.name, str(error)))
            break
        data = report.figures(found, chaos.stall_limit)
        verdict = "ok" if data["ok"] else "FAIL: " + "; ".join(data["problems"])
        print(f"  {fault.name}: {verdict}", flush=True)
        results.append(data)


def main(argv: list[str] | None = None) -> int:
    chaos, edge, list_only = parse(argv)
    if list_only:
        print(listing())
        return 0
    started = time.time()
    results: list[dict[str, Any]] = []
    interrupted = False
    try:
        asyncio.run(run_matrix(chaos, edge, results))
    except KeyboardInterrupt:  # the faults so far are still worth their table
        interrupted = True
    data = report.document(chaos, results, started)
    print()
    print(report.table(results))
    if interrupted:
        data["ok"] = False
        data["interrupted"] = True
        print("interrupted: the faults above are the ones that ended")
    print(f"wrote {report.write(data, Path(chaos.out_dir))}")
    return 130 if interrupted else 0 if data["ok"] else 1
