"""A run: set up customers and products, send the load and follow it to its final states
inside the measured window, then the latency run, then collect what the purchase service
says about each purchase and check the invariants."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import checks, profiling, serial, steady, window
from bench.client import Account, Edge, EdgeError
from bench.follow import PurchaseStates
from bench.progress import Progress, report_progress
from bench.sending import Sender, Sent
from bench.workload import Options, Workload
from common.testing import grant_staff


@dataclass
class Setup:
    staff: Account
    customers: list[Account]
    product_ids: list[int]
    stock_before: dict[int, int]


@dataclass
class Outcome:
    setup: Setup
    workload: Workload
    records: dict[str, dict[str, Any]]  # purchase id -> the client's record (with its phase)
    not_accepted: list[dict[str, Any]]
    server: dict[str, dict[str, Any]]  # purchase id -> as listed at the end
    failures: dict[str, dict[str, Any]]  # purchase id -> detail (steps) of a failed one
    progress: Progress
    started: float
    sending_ended: float
    drained: bool
    ended: float
    measured: window.Measured  # the load's window: CPU by process, transactions, messages, calls
    foreign_purchases: int  # other clients' purchases during the window (their work is counted)
    checks: list[checks.Check]
    edge_errors: dict[str, int]
    load_before: list[float]
    steps: list[steady.Step] = field(default_factory=list)  # the steady search's
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


async def track(states: PurchaseStates, setup: Setup, progress: Progress, options: Options) -> bool:
    """Count the customers' PENDING purchases every poll interval until the load is sent
    and none is pending; False if the drain timeout came first. `finished` for the
    progress line is the accepted ones minus the pending ones (a purchase whose 202 is
    still on its way counts as pending, so it is never over-counted)."""
    customer_ids = [c.customer_id for c in setup.customers]
    drain_deadline: float | None = None
    while True:
        began = time.time()
        accepted = progress.accepted
        progress.pending = await asyncio.to_thread(states.pending, customer_ids)
        progress.finished = max(accepted - progress.pending, progress.finished, 0)
        progress.sample(began)
        if progress.sending_done and progress.pending == 0:
            progress.finished = progress.accepted
            return True
        if progress.sending_done:
            drain_deadline = drain_deadline or time.time() + options.drain_timeout
            if time.time() > drain_deadline:
                return False
        await asyncio.sleep(max(0.0, options.poll_interval - (time.time() - began)))


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


async def send_load(
    sender: Sender, workload: Workload, states: PurchaseStates
) -> tuple[Sent, list[steady.Step]]:
    """The load phase: the steady search's steps, or every planned purchase at once (at
    most `concurrency` in flight, and `rate` per second when set)."""
    options = workload.options
    if options.searching:
        steps, sent = await steady.search(sender, workload, states, options)
        return sent, steps
    return await sender.send_all(workload.plans, rate=options.rate, phase="load"), []


async def run(options: Options, base_url: str) -> Outcome:
    run_id = uuid.uuid4().hex[:8]
    load_before = list(os.getloadavg())
    workload = Workload.build(options, run_id)
    control = Edge(base_url, connections=64)
    load = Edge(base_url, connections=options.concurrency)
    states = await asyncio.to_thread(PurchaseStates)
    try:
        setup = await prepare(control, workload, run_id)
        print(
            f"load: {describe_load(options)}, scenario {options.scenario};"
            f" products {setup.product_ids} with {workload.inventory()} units each",
            flush=True,
        )
        measuring = await asyncio.to_thread(window.Window.open)
        progress = Progress(started=time.time())
        sender = Sender(load, setup.customers, setup.product_ids, progress, options.concurrency)
        done = asyncio.Event()
        printer = asyncio.create_task(report_progress(progress, done))
        profiler = (
            asyncio.create_task(asyncio.to_thread(start_profile, options, run_id))
            if options.profile
            else None
        )
        tracker = asyncio.create_task(track(states, setup, progress, options))
        sent, steps = await send_load(sender, workload, states)
        progress.sending_done = True
        sending_ended = time.time()
        drained = await tracker
        ended = time.time()
        await asyncio.sleep(window.SETTLE_SECONDS)
        measured = await asyncio.to_thread(measuring.close)
        foreign = await asyncio.to_thread(
            states.others,
            [c.customer_id for c in setup.customers],
            measuring.started,
            measuring.started + measured.seconds,
        )
        profile = await asyncio.to_thread(stop_profile, await profiler) if profiler else None
        if options.one_at_a_time and drained:
            print(f"latency run: {options.one_at_a_time} purchases one at a time", flush=True)
            sent.add(await serial.one_at_a_time(sender, workload, states))
        done.set()
        await printer
        print("collecting the final states and checking the invariants", flush=True)
        server, failures = await collect(control, setup)
        found = await asyncio.to_thread(
            checks.run_checks,
            accepted=sent.records,
            server=server,
            product_ids=setup.product_ids,
            stock_before=setup.stock_before,
        )
        errors = dict(load.errors + control.errors)
        return Outcome(
            setup=setup,
            workload=workload,
            records=sent.records,
            not_accepted=sent.not_accepted,
            server=server,
            failures=failures,
            progress=progress,
            started=progress.started,
            sending_ended=sending_ended,
            drained=drained,
            ended=ended,
            measured=measured,
            foreign_purchases=foreign,
            checks=found,
            edge_errors=errors,
            load_before=load_before,
            steps=steps,
            profile=profile,
        )
    finally:
        states.close()
        await load.close()
        await control.close()


def describe_load(options: Options) -> str:
    if options.searching:
        return (
            f"steps of {options.step_seconds:g} s at rising rates from {steady.START_RATE:g}/s,"
            f" {options.duration:g} s of sending at most"
        )
    rate = f" at {options.rate:g}/s" if options.rate > 0 else ""
    return f"{options.load_purchases} purchases{rate}, concurrency {options.concurrency}"
