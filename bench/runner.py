"""A run: set up customers and products, send the purchases, follow them to their final
state, then collect what the purchase service says about each."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import checks, procstat, profiling
from bench.client import Account, Edge, EdgeError
from bench.workload import Options, PurchasePlan, Workload
from common.testing import grant_staff


@dataclass
class Setup:
    staff: Account
    customers: list[Account]
    product_ids: list[int]
    stock_before: dict[int, int]


@dataclass
class Progress:
    """What the run knows right now, for the line printed every second."""

    started: float = 0.0
    sent: int = 0
    accepted: int = 0
    refused: int = 0  # answered, but not 202 (after retries)
    lost: int = 0  # never answered (after retries)
    finished: int = 0  # final, as the purchase service counts them
    pending: int = 0
    sending_done: bool = False
    samples: list[dict[str, float]] = field(default_factory=list)

    def line(self) -> str:
        now = time.time() - self.started
        return (
            f"[{now:6.1f}s] sent {self.sent:6d}  accepted {self.accepted:6d}"
            f"  finished {self.finished:6d}  in-flight {max(self.accepted - self.finished, 0):6d}"
            f"  refused {self.refused}  lost {self.lost}"
        )


@dataclass
class Outcome:
    setup: Setup
    workload: Workload
    records: dict[str, dict[str, Any]]  # purchase id -> the client's record
    not_accepted: list[dict[str, Any]]
    server: dict[str, dict[str, Any]]  # purchase id -> as listed at the end
    failures: dict[str, dict[str, Any]]  # purchase id -> detail (steps) of a failed one
    progress: Progress
    started: float
    sending_ended: float
    drained: bool
    ended: float
    cpu: list[procstat.Sample]
    bench_cpu_seconds: float
    checks: list[checks.Check]
    edge_errors: dict[str, int]
    load_before: list[float]
    profile: dict[str, Any] | None = None


async def prepare(control: Edge, workload: Workload, run_id: str) -> Setup:
    options = workload.options
    print(f"setup: {options.customers} customers, staff, {options.products} products", flush=True)
    staff = await control.register("staff")
    await asyncio.to_thread(grant_staff, staff.email)
    await control.login(staff)
    gate = asyncio.Semaphore(8)  # registration hashes a password: CPU-bound in the service

    async def one(i: int) -> Account:
        async with gate:
            return await control.register(f"buyer{i}")

    customers = await asyncio.gather(*(one(i) for i in range(options.customers)))
    category = await control.expect(
        201,
        "POST",
        "/api/v1/categories",
        account=staff,
        json_body={"name": f"bench {run_id}", "description": "make bench"},
    )
    product_ids = []
    for k in range(options.products):
        product = await control.expect(
            201,
            "POST",
            "/api/v1/products",
            account=staff,
            json_body={
                "category_id": category["id"],
                "name": f"bench {run_id} product {k + 1}",
                "brand_name": "Bench",
                "price": 1390 + 250 * k,
                "inventory": workload.inventory(),
            },
        )
        product_ids.append(int(product["id"]))
    stock = await asyncio.to_thread(checks.inventories, product_ids)
    return Setup(staff, list(customers), product_ids, stock)


async def send_all(
    load: Edge, setup: Setup, workload: Workload, progress: Progress
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """POST every planned purchase, at most `concurrency` at a time (and `rate` per
    second when set). A retry carries the same Idempotency-Key, so it never buys twice."""
    options = workload.options
    records: dict[str, dict[str, Any]] = {}
    not_accepted: list[dict[str, Any]] = []
    gate = asyncio.Semaphore(options.concurrency)

    async def one(plan: PurchasePlan) -> None:
        async with gate:
            progress.sent += 1
            customer = setup.customers[plan.customer]
            try:
                answer = await load.as_customer(
                    "POST",
                    "/api/v1/purchases",
                    customer,
                    json_body=plan.body(setup.product_ids),
                    headers={"Idempotency-Key": plan.idempotency_key},
                )
            except EdgeError as error:
                progress.lost += 1
                not_accepted.append({"index": plan.index, "error": str(error)})
                return
            if answer.status != 202:
                progress.refused += 1
                not_accepted.append(
                    {"index": plan.index, "status": answer.status, "body": answer.body}
                )
                return
            progress.accepted += 1
            records[answer.body["id"]] = {
                "index": plan.index,
                "customer": plan.customer,
                "sent_at": answer.sent_at,
                "accepted_at": answer.answered_at,
                "attempts": answer.attempts,
                "rejected_on_purpose": plan.rejected_on_purpose,
            }

    tasks = []
    for plan in workload.plans:
        if options.rate > 0:
            due = progress.started + plan.index / options.rate
            await asyncio.sleep(max(0.0, due - time.time()))
        else:
            await asyncio.sleep(0)  # let the started ones run while the rest queue at the gate
        tasks.append(asyncio.create_task(one(plan)))
    await asyncio.gather(*tasks)
    progress.sending_done = True
    return records, not_accepted


async def count(control: Edge, customer: Account, status: str | None = None) -> int:
    query = "?page_size=1" + (f"&status={status}" if status else "")
    answer = await control.as_customer("GET", f"/api/v1/purchases{query}", customer)
    if answer.status != 200:
        raise EdgeError(f"listing purchases: {answer.status} {answer.body!r:.200}")
    return int(answer.body["count"])


async def track(control: Edge, setup: Setup, progress: Progress, options: Options) -> bool:
    """Count each customer's PENDING purchases every poll interval (one cheap request per
    customer, so tracking costs the purchase service little) until the load is sent and
    none is pending; False if the drain timeout came first. `finished` for the progress
    line is the accepted ones minus the pending ones (a purchase whose 202 is still on its
    way counts as pending, so it is never over-counted)."""
    drain_deadline: float | None = None
    while True:
        began = time.time()
        accepted = progress.accepted
        try:
            pending = await asyncio.gather(*(count(control, c, "PENDING") for c in setup.customers))
        except EdgeError as error:
            print(f"  (tracking: {error}; trying again)", flush=True)
        else:
            progress.pending = sum(pending)
            progress.finished = max(accepted - progress.pending, progress.finished, 0)
            progress.samples.append(
                {
                    "t": began - progress.started,
                    "sent": progress.sent,
                    "accepted": accepted,
                    "finished": progress.finished,
                }
            )
            if progress.sending_done and progress.pending == 0:
                progress.finished = progress.accepted
                return True
        if progress.sending_done:
            drain_deadline = drain_deadline or time.time() + options.drain_timeout
            if time.time() > drain_deadline:
                return False
        await asyncio.sleep(max(0.0, options.poll_interval - (time.time() - began)))


async def report_progress(progress: Progress, done: asyncio.Event) -> None:
    while not done.is_set():
        print(progress.line(), flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=1.0)
    print(progress.line(), flush=True)


def epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


async def collect(
    control: Edge, setup: Setup
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every purchase of the run's customers as the purchase service lists it, and the
    step history of each one that did not complete (why it failed)."""
    server: dict[str, dict[str, Any]] = {}

    async def pages(customer: Account) -> None:
        page = 1
        while True:
            answer = await control.as_customer(
                "GET", f"/api/v1/purchases?page_size=100&page={page}", customer
            )
            if answer.status != 200:
                raise EdgeError(f"listing purchases: {answer.status}")
            for purchase in answer.body["results"]:
                server[purchase["id"]] = {**purchase, "customer_id": customer.customer_id}
            if not answer.body["next"]:
                return
            page += 1

    await asyncio.gather(*(pages(c) for c in setup.customers))
    owner = {c.customer_id: c for c in setup.customers}
    gate = asyncio.Semaphore(16)
    failures: dict[str, dict[str, Any]] = {}

    async def detail(purchase_id: str) -> None:
        async with gate:
            customer = owner[server[purchase_id]["customer_id"]]
            answer = await control.as_customer("GET", f"/api/v1/purchases/{purchase_id}", customer)
            if answer.status == 200:
                failures[purchase_id] = answer.body

    await asyncio.gather(*(detail(pid) for pid, p in server.items() if p["status"] != "COMPLETED"))
    return server, failures


def start_profile(options: Options, run_id: str) -> profiling.Recording | None:
    """py-spy on the chosen process, a few seconds into the load (a thread's work)."""
    assert options.profile
    time.sleep(2.0)
    label = profiling.hottest() if options.profile == "auto" else options.profile
    pid = profiling.root_pid(label) if label else None
    if label is None or pid is None:
        print(f"  (profile: no process {options.profile!r} found)", flush=True)
        return None
    path = Path(options.out_dir) / f"profile-{run_id}-{label}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"  (profiling {label}, pid {pid} and its children, into {path})", flush=True)
    return profiling.Recording(label, pid, path)


def stop_profile(recording: profiling.Recording | None) -> dict[str, Any] | None:
    if recording is None:
        return None
    problem = recording.stop()
    found: dict[str, Any] = {"process": recording.label, "pid": recording.pid}
    if problem:
        return {**found, "error": problem}
    return {**found, "file": str(recording.path), **profiling.summarize(recording.path)}


async def run(options: Options, base_url: str) -> Outcome:
    run_id = uuid.uuid4().hex[:8]
    load_before = list(os.getloadavg())
    workload = Workload.build(options, run_id)
    control = Edge(base_url, connections=64)
    load = Edge(base_url, connections=options.concurrency)
    try:
        setup = await prepare(control, workload, run_id)
        print(
            f"load: {options.purchases} purchases, concurrency {options.concurrency},"
            f" scenario {options.scenario}; products {setup.product_ids}"
            f" with {workload.inventory()} units each",
            flush=True,
        )
        progress = Progress(started=time.time())
        cpu_before = procstat.snapshot()
        own_cpu_before = time.process_time()
        done = asyncio.Event()
        printer = asyncio.create_task(report_progress(progress, done))
        profiler = (
            asyncio.create_task(asyncio.to_thread(start_profile, options, run_id))
            if options.profile
            else None
        )
        tracker = asyncio.create_task(track(control, setup, progress, options))
        records, not_accepted = await send_all(load, setup, workload, progress)
        sending_ended = time.time()
        drained = await tracker
        ended = time.time()
        cpu = procstat.cpu_between(cpu_before, procstat.snapshot())
        bench_cpu = time.process_time() - own_cpu_before
        profile = await asyncio.to_thread(stop_profile, await profiler) if profiler else None
        done.set()
        await printer
        print("collecting the final states and checking the invariants", flush=True)
        server, failures = await collect(control, setup)
        found = await asyncio.to_thread(
            checks.run_checks,
            accepted=records,
            server=server,
            product_ids=setup.product_ids,
            stock_before=setup.stock_before,
        )
        errors = dict(load.errors + control.errors)
        return Outcome(
            setup=setup,
            workload=workload,
            records=records,
            not_accepted=not_accepted,
            server=server,
            failures=failures,
            progress=progress,
            started=progress.started,
            sending_ended=sending_ended,
            drained=drained,
            ended=ended,
            cpu=cpu,
            bench_cpu_seconds=bench_cpu,
            checks=found,
            edge_errors=errors,
            load_before=load_before,
            profile=profile,
        )
    finally:
        await load.close()
        await control.close()
