"""The matrix's figures per fault, its verdict, the printed table and the JSON file."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.chaos.faults import Kind
from bench.chaos.run import ChaosOptions, FaultRun
from bench.chaos.stall import Work, longest_stall
from bench.report import failure_kind
from bench.runner import epoch
from bench.stats import distribution
from bench.workload import ENDED

FINAL = (*ENDED, "NEEDS_ATTENTION")


def _since(moment: float | None, origin: float) -> float | None:
    return None if moment is None else round(moment - origin, 2)


def work_of(found: FaultRun) -> list[Work]:
    """Each accepted purchase's moments: POSTed, accepted, final (if it got there)."""
    work = []
    for pid, record in found.records.items():
        purchase = found.server.get(pid)
        final = (
            epoch(purchase["updated_at"])
            if purchase is not None and purchase["status"] in FINAL
            else None
        )
        work.append(Work(record["sent_at"], record["accepted_at"], final))
    return work


def problems(data: dict[str, Any], stall_limit: float) -> list[str]:
    """Why a fault's run does not pass (empty: it does): an invariant broken, the load
    not drained, a purchase refused or failed because of the fault, a stall too long."""
    found = [f"invariant broken: {c['name']}" for c in data["invariants"] if not c["ok"]]
    if not data["drained"]:
        found.append("not drained")
    if data["requests"]["refused"]:
        found.append(f"{data['requests']['refused']} purchase(s) refused")
    if data["outcomes"]["failed_by_fault"]:
        found.append(
            f"{data['outcomes']['failed_by_fault']} purchase(s) failed because of the fault"
        )
    stall = data["stall_seconds"]
    if stall > stall_limit:
        found.append(f"stall {stall:.1f} s > {stall_limit:g} s")
    if data["hit"] == 0 and data["kind"] != Kind.NONE.value:
        found.append("the fault hit no purchase: the load was over before it (send slower: RATE)")
    if data["back_after_seconds"] is None:
        found.append("the faulted part did not come back")
    if data["injector_error"]:
        found.append(f"injector failed: {data['injector_error']}")
    return found


def figures(found: FaultRun, stall_limit: float) -> dict[str, Any]:
    """Everything measured of one fault's run, as plain data."""
    fault, injection, t0 = found.fault, found.injection, found.started
    work = work_of(found)
    finals = [w.final for w in work if w.final is not None]
    last_final = max(finals, default=None)
    until = last_final if found.drained and last_final is not None else found.ended
    injected = injection.injected_at
    back = injection.back_at if injection.back_at is not None else found.ended
    after_back = longest_stall(work, since=back, until=max(until, back))
    from_injection = (
        longest_stall(work, since=injected, until=max(until, injected))
        if injected is not None
        else after_back
    )
    statuses = Counter(p["status"] for p in found.server.values())
    on_purpose = {pid for pid, r in found.records.items() if r["rejected_on_purpose"]}
    failed_by_fault = sum(
        1 for pid, p in found.server.items() if p["status"] != "COMPLETED" and pid not in on_purpose
    )
    not_accepted = Counter(
        str(n.get("status", n.get("error", "?")))[:80] for n in found.not_accepted
    )
    # Purchases the fault could touch: POSTed and not final when it came, or POSTed after.
    hit = (
        sum(1 for w in work if w.final is None or w.final > injected) if injected is not None else 0
    )
    latencies = [w.final - w.sent for w in work if w.final is not None]  # POST -> final
    data: dict[str, Any] = {
        "fault": fault.name,
        "kind": fault.kind.value,
        "target": fault.target,
        "what": fault.what,
        "scenario": found.options.scenario,
        "purchases": found.options.purchases,
        "concurrency": found.options.concurrency,
        "rate": found.options.rate,
        "drained": found.drained,
        "hit": hit,
        "requests": {
            "accepted": len(found.records),
            "refused": len(found.not_accepted),
            "refused_by_answer": dict(not_accepted),
            "retried_by_kind": found.edge_errors,
        },
        "outcomes": {
            "by_status": dict(statuses),
            "rejected_on_purpose": len(on_purpose),
            "failed_by_fault": failed_by_fault,
            "failures_by_kind": dict(Counter(failure_kind(d) for d in found.failures.values())),
        },
        # Seconds since the load's first POST.
        "timeline_seconds": {
            "injected": _since(injected, t0),
            "back": _since(injection.back_at, t0),
            "healthy": _since(injection.healthy_at, t0),
            "sending_ended": _since(found.sending_ended, t0),
            "last_final": _since(last_final, t0),
            "drain_ended": _since(found.ended, t0),
        },
        "back_after_seconds": _since(injection.back_at, injected or t0),
        "healthy_after_seconds": _since(injection.healthy_at, injected or t0),
        "stall_seconds": round(after_back.seconds, 2),
        "stall_window_seconds": [_since(after_back.began, t0), _since(after_back.ended, t0)],
        "stall_from_injection_seconds": round(from_injection.seconds, 2),
        "last_final_after_injection_seconds": None
        if injected is None or last_final is None
        else round(last_final - injected, 2),
        "latency_seconds": distribution(latencies),
        "invariants": [asdict(c) for c in found.checks],
        "injector_error": found.error,
        "notes": injection.notes,
        "progress_samples": found.samples,
    }
    data["problems"] = problems(data, stall_limit)
    data["ok"] = not data["problems"]
    return data


def unhealthy(fault_name: str, reason: str) -> dict[str, Any]:
    """The entry of a fault after which the platform did not come back: the matrix stops."""
    return {"fault": fault_name, "ok": False, "problems": [f"platform not healthy: {reason}"]}


def _seconds(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.1f}"


def table(results: list[dict[str, Any]]) -> str:
    """One row per fault: its verdict and the figures the verdict is made of."""
    header = (
        "fault",
        "verdict",
        "hit",
        "invariants",
        "accepted",
        "refused",
        "failed by fault",
        "stall s",
        "back s",
        "last final s",
        "p99 s",
    )
    rows = [header]
    for r in results:
        if "invariants" not in r:
            rows.append((r["fault"], "ABORTED", *(["-"] * (len(header) - 2))))
            continue
        held = sum(1 for c in r["invariants"] if c["ok"])
        rows.append(
            (
                r["fault"],
                "ok" if r["ok"] else "FAIL",
                str(r["hit"]),
                f"{held}/{len(r['invariants'])}",
                str(r["requests"]["accepted"]),
                str(r["requests"]["refused"]),
                str(r["outcomes"]["failed_by_fault"]),
                _seconds(r["stall_seconds"]),
                _seconds(r["back_after_seconds"]),
                _seconds(r["last_final_after_injection_seconds"]),
                _seconds(r["latency_seconds"]["p99"]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in results:
        for problem in r["problems"]:
            lines.append(f"{r['fault']}: {problem}")
    return "\n".join(line.rstrip() for line in lines)


def document(chaos: ChaosOptions, results: list[dict[str, Any]], started: float) -> dict[str, Any]:
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "options": asdict(chaos),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_after": list(os.getloadavg()),
            "platform": platform.platform(),
        },
        "wall_seconds": round(time.time() - started, 1),
        "ok": all(r["ok"] for r in results),
        "faults": results,
    }


def write(data: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-chaos.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path
