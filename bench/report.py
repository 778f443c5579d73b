"""Figures of a run: the summary table, the JSON file and the PNG chart (bench.chart)."""

from __future__ import annotations

import json
import math
import os
import platform
import re
import time
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import per_saga, procstat, serial, stages, steady
from bench.chart import draw as draw_chart
from bench.runner import Outcome, describe_load, epoch
from bench.stats import distribution, percentile
from bench.workload import ENDED
from deploy.local.programs import replicas


def failure_kind(detail: dict[str, Any]) -> str:
    """`STEP: reason` of the step that failed, numbers masked so that kinds group."""
    for step in detail.get("steps", []):
        if step["status"] in ("FAILED", "ROLLBACK_FAILED"):
            reason = re.sub(r"\d+", "N", step["error"] or "no reason given")[:90]
            return f"{step['step']} {step['status']}: {reason}"
    return f"{detail.get('status')} without a failed step"


def finished_rows(
    records: dict[str, dict[str, Any]], server: dict[str, dict[str, Any]], t0: float
) -> list[dict[str, Any]]:
    """Times of each purchase of `records` that finished (COMPLETED, FAILED or CANCELLED), in
    seconds since `t0` or between two of its moments."""
    rows = []
    for pid, record in records.items():
        purchase = server.get(pid)
        if purchase is None or purchase["status"] not in ENDED:
            continue
        final_at = epoch(purchase["updated_at"])
        rows.append(
            {
                "status": purchase["status"],
                "sent": record["sent_at"] - t0,
                "accepted": record["accepted_at"] - t0,
                "final": final_at - t0,
                "e2e": final_at - record["sent_at"],
                "saga": final_at - epoch(purchase["created_at"]),
                "accept": record["accepted_at"] - record["sent_at"],
            }
        )
    return rows


def one_at_a_time(outcome: Outcome) -> dict[str, Any]:
    """The latency run's figures (`ran` false when it was skipped)."""
    records = {k: r for k, r in outcome.records.items() if r["phase"] == serial.PHASE}
    rows = finished_rows(records, outcome.server, outcome.started)
    planned = outcome.workload.options.one_at_a_time
    return {
        "purchases": planned,
        "ran": bool(planned) and outcome.drained,  # not after a load that did not drain
        "accepted": len(records),
        "by_status": dict(
            Counter(outcome.server[k]["status"] for k in records if k in outcome.server)
        ),
        "post_to_final": distribution([r["e2e"] for r in rows]),
        "post_to_202": distribution([r["accept"] for r in rows]),
        "stages_seconds": stage_figures(
            {k: outcome.server[k] for k in records if k in outcome.server}
        ),
    }


def stage_figures(purchases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Where these purchases' time went (stages.STAGES), or {"error": why not}."""
    found = stages.breakdown(purchases)
    if isinstance(found, str):
        return {"error": found}
    return {name: {"what": what, **distribution(found[name])} for name, what in stages.STAGES}


def steady_figures(outcome: Outcome, post_to_final: dict[str, float]) -> dict[str, Any] | None:
    """The steady scenario's verdict: at a fixed rate, whether the load's POST->final p99
    stayed under the target; searching, the steps and the highest rate sustained."""
    options = outcome.workload.options
    if options.scenario != "steady":
        return None
    if options.searching:
        return {
            "p99_target_seconds": options.p99_target,
            "highest_rate_sustained": steady.highest_sustained(outcome.steps),
            "steps": [s.as_dict() for s in outcome.steps],
        }
    finished = post_to_final["count"]
    return {
        "p99_target_seconds": options.p99_target,
        "rate": options.rate,
        "sustained": outcome.drained
        and finished == options.load_purchases
        and post_to_final["p99"] < options.p99_target,
    }


def figures(outcome: Outcome) -> dict[str, Any]:
    """Everything measured, as plain data (the JSON file). The load's figures leave the
    latency run out: it has its own (`one_at_a_time`)."""
    t0 = outcome.started
    records = {k: r for k, r in outcome.records.items() if r["phase"] != serial.PHASE}
    finished = finished_rows(records, outcome.server, t0)
    accepted = len(records)
    later = set(outcome.records) - set(records)
    statuses = Counter(p["status"] for k, p in outcome.server.items() if k not in later)
    last_accept = max((r["accepted_at"] for r in records.values()), default=t0) - t0
    last_final = max((r["final"] for r in finished), default=0.0)
    finals = sorted(r["final"] for r in finished)
    if len(finals) >= 10:
        t10, t90 = percentile(finals, 10), percentile(finals, 90)
        sustained = 0.8 * len(finals) / (t90 - t10) if t90 > t10 else math.nan
    else:
        sustained = math.nan

    seconds = int(max(last_final, last_accept, 0)) + 1
    series: dict[str, list[float]] = {
        "accepted": [0.0] * seconds,
        "completed": [0.0] * seconds,
        "failed": [0.0] * seconds,
    }
    for record in records.values():
        series["accepted"][min(int(record["accepted_at"] - t0), seconds - 1)] += 1
    latencies: dict[int, list[float]] = defaultdict(list)
    for r in finished:
        second = min(int(r["final"]), seconds - 1)
        series["completed" if r["status"] == "COMPLETED" else "failed"][second] += 1
        latencies[second].append(r["e2e"])
    for q in (50, 95, 99):
        series[f"latency_p{q}"] = [percentile(latencies.get(s, []), q) for s in range(seconds)]

    wall = outcome.ended - t0
    measured = outcome.measured
    post_to_final = distribution([r["e2e"] for r in finished])
    where = stage_figures({k: p for k, p in outcome.server.items() if k not in later})
    kinds = Counter(failure_kind(d) for d in outcome.failures.values())
    not_accepted = Counter(
        str(n.get("status", n.get("error", "?")))[:80] for n in outcome.not_accepted
    )
    options = outcome.workload.options
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t0)),
        # The platform's copies of each process (make up REPLICAS=): part of the setup.
        "options": {**asdict(options), "replicas": replicas()},
        "load": describe_load(options),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": outcome.load_before,
            "load_average_after": list(os.getloadavg()),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "setup": {
            "customers": len(outcome.setup.customers),
            "product_ids": outcome.setup.product_ids,
            "stock_before": outcome.setup.stock_before,
        },
        "requests": {  # every phase's
            "planned": len(outcome.workload.plans),
            "sent": outcome.progress.sent,
            "accepted": len(outcome.records),
            "accepted_by_phase": dict(Counter(r["phase"] for r in outcome.records.values())),
            "not_accepted": dict(not_accepted),
            "retries_and_errors_by_kind": outcome.edge_errors,
        },
        "outcomes": {
            "by_status": dict(statuses),
            "failures_by_kind": dict(kinds),
            "rejected_on_purpose": sum(1 for r in records.values() if r["rejected_on_purpose"]),
            "drained": outcome.drained,
        },
        "throughput": {
            "accepted_per_second": accepted / last_accept if last_accept > 0 else math.nan,
            "finished_per_second": len(finished) / last_final if last_final > 0 else math.nan,
            "completed_per_second": statuses.get("COMPLETED", 0) / last_final
            if last_final > 0
            else math.nan,
            "finished_per_second_sustained_p10_p90": sustained,
            "sending_seconds": outcome.sending_ended - t0,
            "last_final_after_seconds": last_final,
            "wall_seconds": wall,
        },
        "latency_seconds": {
            "post_to_final": post_to_final,
            "post_to_final_completed": distribution(
                [r["e2e"] for r in finished if r["status"] == "COMPLETED"]
            ),
            "post_to_final_failed": distribution(
                [r["e2e"] for r in finished if r["status"] == "FAILED"]
            ),
            "post_to_final_cancelled": distribution(
                [r["e2e"] for r in finished if r["status"] == "CANCELLED"]
            ),
            "post_to_202": distribution([r["accept"] for r in finished]),
            "created_to_final": distribution([r["saga"] for r in finished]),
        },
        "saga_stages_seconds": where,
        "one_at_a_time": one_at_a_time(outcome),
        "steady": steady_figures(outcome, post_to_final),
        "per_finished_saga": per_saga.figures(measured, len(finished), outcome.foreign_purchases),
        "load_generator": {
            "cpu_seconds": measured.bench_cpu_seconds,
            "cpu_percent_of_one_core": 100 * measured.bench_cpu_seconds / measured.seconds,
        },
        "cpu_by_process": [  # over the load's window (`per_finished_saga.window_seconds`)
            {
                "process": s.label,
                "cpu_seconds": round(s.cpu_seconds, 2),
                "percent_of_one_core": round(100 * s.cpu_seconds / measured.seconds, 1),
                "ms_per_finished_saga": round(1000 * s.cpu_seconds / len(finished), 2)
                if finished
                else None,
                "in_stack": procstat.in_stack(s.label),
            }
            for s in measured.cpu
        ],
        "invariants": [asdict(c) for c in outcome.checks],
        "profile": outcome.profile,
        "series_per_second": series,
        "purchases": [
            [round(r["sent"], 3), round(r["accepted"], 3), round(r["final"], 3), r["status"]]
            for r in sorted(finished, key=lambda r: r["sent"])
        ],
        "purchases_columns": ["sent", "accepted (202)", "final", "status"],
        "progress_samples": outcome.progress.samples,
    }


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value * 1000:,.0f} ms"


def _loads(averages: list[float]) -> str:
    return " ".join(f"{x:.2f}" for x in averages)


def _spread(d: dict[str, float]) -> str:
    return (
        f"p50 {_ms(d['p50'])}  p95 {_ms(d['p95'])}  p99 {_ms(d['p99'])}"
        f"  max {_ms(d['max'])}  (n={d['count']})"
    )


def _stage_rows(where: dict[str, Any]) -> list[tuple[str, str]]:
    """The stages of a saga's time (stages.STAGES), one indented row each."""
    if "error" in where:
        return [("  saga stages", where["error"])]
    return [
        (
            f"  {name}",
            f"p50 {_ms(d['p50'])}  p95 {_ms(d['p95'])}  max {_ms(d['max'])}  ({d['what']})",
        )
        for name, d in where.items()
    ]


def steady_rows(found: dict[str, Any] | None) -> list[tuple[str, str]]:
    if found is None:
        return []
    target = f"POST->final p99 < {_ms(found['p99_target_seconds'])}"
    if "steps" not in found:
        verdict = "sustained" if found["sustained"] else "NOT sustained"
        return [("steady", f"{found['rate']:g}/s open loop: {verdict} ({target}, all final)")]
    best = found["highest_rate_sustained"]
    rows = [
        (
            "steady search",
            f"highest rate with {target}: {'none' if best is None else f'{best:g}/s'}",
        )
    ]
    for n, step in enumerate(found["steps"], 1):
        rows.append((f"  step {n}", steady.describe(steady.Step(**step))))
    return rows


def summary(data: dict[str, Any]) -> str:
    """The table printed at the end of a run."""
    o, t, lat = data["options"], data["throughput"], data["latency_seconds"]
    req, out, mach = data["requests"], data["outcomes"], data["machine"]
    rows: list[tuple[str, str]] = [
        ("scenario", f"{o['scenario']}  ({data['when']})"),
        (
            "workload",
            f"{data['load']}; {o['products']} products,"
            f" {min(o['lines'], o['products'])} line(s) x {o['quantity']} unit(s),"
            f" skew {o['skew']}, {o['customers']} customers",
        ),
        (
            "machine",
            f"{mach['cpus']} CPUs, load average {_loads(mach['load_average_before'])} before,"
            f" {_loads(mach['load_average_after'])} after",
        ),
        (
            "requests",
            f"sent {req['sent']}, accepted (202) {req['accepted']}, not accepted"
            f" {sum(req['not_accepted'].values())} {req['not_accepted'] or ''}",
        ),
        (
            "retried errors",
            ", ".join(f"{k} x{v}" for k, v in req["retries_and_errors_by_kind"].items()) or "none",
        ),
        ("accepted purchases/s", f"{t['accepted_per_second']:.1f}"),
        (
            "finished sagas/s",
            f"{t['finished_per_second']:.1f} over the run, "
            f"{t['finished_per_second_sustained_p10_p90']:.1f} sustained (p10-p90 of final times)",
        ),
        ("completed sagas/s", f"{t['completed_per_second']:.1f}"),
        (
            "outcomes",
            ", ".join(f"{k} {v}" for k, v in sorted(out["by_status"].items()))
            + ("" if out["drained"] else "  (drain timeout!)"),
        ),
    ]
    for kind, n in sorted(out["failures_by_kind"].items(), key=lambda kv: -kv[1]):
        rows.append(("  failed because", f"{n} x {kind}"))
    for label, key in (
        ("latency POST->final", "post_to_final"),
        ("  of COMPLETED", "post_to_final_completed"),
        ("  of FAILED", "post_to_final_failed"),
        ("  of CANCELLED", "post_to_final_cancelled"),
        ("latency POST->202", "post_to_202"),
        ("saga created->final", "created_to_final"),
    ):
        if key in lat:  # (a result written before cancellation existed has no CANCELLED)
            rows.append((label, _spread(lat[key])))
    rows += _stage_rows(data["saga_stages_seconds"])
    serial_run = data["one_at_a_time"]
    if serial_run["purchases"]:
        rows.append(
            (
                "one at a time POST->final",
                _spread(serial_run["post_to_final"])
                if serial_run["ran"]
                else "not run: the load did not drain",
            )
        )
        if serial_run["ran"]:
            rows += _stage_rows(serial_run["stages_seconds"])
    rows += steady_rows(data["steady"])
    rows.append(
        (
            "time",
            f"sending {t['sending_seconds']:.1f} s, last final state at"
            f" {t['last_final_after_seconds']:.1f} s, wall {t['wall_seconds']:.1f} s",
        )
    )
    lg = data["load_generator"]
    rows.append(
        (
            "load generator CPU",
            f"{lg['cpu_seconds']:.1f} s = {lg['cpu_percent_of_one_core']:.0f} % of one core",
        )
    )
    core = {p["process"]: p["percent_of_one_core"] for p in data["cpu_by_process"]}
    rows += per_saga.rows(data["per_finished_saga"], core)
    profile = data.get("profile")
    if profile and "error" in profile:
        rows.append(("profile", f"{profile['process']}: {profile['error']}"))
    elif profile:
        rows.append(
            (
                "profile",
                f"{profile['process']}: {profile['samples']} samples (py-spy --idle),"
                f" {profile['idle_percent']} % waiting for work; the busy rest"
                f" ({profile['file']}):",
            )
        )
        for frame, share in profile["self"][:8]:
            rows.append(("  self", f"{share:5.1f} %  {frame}"))
        for frame, share in profile["inclusive"][:10]:
            rows.append(("  inclusive", f"{share:5.1f} %  {frame}"))
    for check in data["invariants"]:
        rows.append((f"{'ok  ' if check['ok'] else 'FAIL'} {check['name']}", check["detail"]))
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 2 + max(len(v) for _, v in rows))
    return "\n".join([line, *(f"{k:<{width}}  {v}" for k, v in rows), line])


def write(data: dict[str, Any], out_dir: Path, *, chart: bool) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{data['options']['scenario']}"
    written = [out_dir / f"{stem}.json"]
    written[0].write_text(json.dumps(data, indent=2, default=str) + "\n")
    if chart:
        written.append(draw_chart(data, out_dir / f"{stem}.png"))
    return written
