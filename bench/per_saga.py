"""What one finished saga costs the stack: CPU by process, database transactions by
database, Kafka messages by topic and gRPC calls by method, each the load window's
count divided by the sagas it finished (COMPLETED or FAILED)."""

from __future__ import annotations

from typing import Any

from bench import counters, procstat
from bench.window import Measured

BREAKDOWN = {  # source -> (the JSON key of its parts, its name in the table)
    "db_transactions": ("by_database", "DB transactions"),
    "kafka_messages": ("by_topic", "Kafka messages"),
    "grpc_calls": ("by_method", "gRPC calls"),
}
NOTE = (
    "The window runs from after setup to one second after the last final state, idle"
    " background included. PostgreSQL publishes a connection's transaction counts when it"
    " goes idle, at most once a second, so each connection's last second of transactions"
    " before it stays idle is missing: db_transactions are a little short."
)


def figures(measured: Measured, sagas: int, foreign_purchases: int = 0) -> dict[str, Any]:
    """The figures per saga as plain data (a part of the JSON file). The counts are the
    whole stack's: `foreign_purchases` (other clients' purchases in the window) says
    how much of them is not the bench's."""
    stack = {s.label: s.cpu_seconds for s in measured.cpu if procstat.in_stack(s.label)}
    others = {s.label: s.cpu_seconds for s in measured.cpu if not procstat.in_stack(s.label)}
    found: dict[str, Any] = {
        "sagas": sagas,
        "window_seconds": round(measured.seconds, 2),
        "foreign_purchases": foreign_purchases,
        "cpu_ms": {
            "stack": _ms(sum(stack.values()), sagas),
            "by_process": {label: _ms(seconds, sagas) for label, seconds in stack.items()},
            "not_counted": {label: _ms(seconds, sagas) for label, seconds in others.items()},
        },
        # The same CPU in seconds over the window: what a run that finishes no saga
        # (say, the front door alone, with the relay stopped) still measured.
        "cpu_seconds": {
            "stack": round(sum(stack.values()), 3),
            "by_process": {label: round(seconds, 3) for label, seconds in stack.items()},
        },
        "note": NOTE,
    }
    for source, (parts, _) in BREAKDOWN.items():
        grown = measured.counts.get(source, "not read")
        if isinstance(grown, str):
            found[source] = {"error": grown}
            continue
        ordered = dict(sorted(grown.items(), key=lambda kv: (-kv[1], kv[0])))
        found[source] = {
            "total": round(sum(grown.values()) / sagas, 3) if sagas else None,
            parts: counters.per_saga(ordered, sagas),
            "counted": ordered,
        }
    return found


def _ms(seconds: float, sagas: int) -> float | None:
    return round(1000 * seconds / sagas, 2) if sagas else None


def rows(data: dict[str, Any], percent_of_core: dict[str, float]) -> list[tuple[str, str]]:
    """Lines of the summary table: totals first, then the parts (zeros left out)."""
    sagas = data["sagas"]
    if not sagas:
        return [("per finished saga", "no saga finished in the window")]
    cpu = data["cpu_ms"]
    totals = [f"CPU {cpu['stack']:.1f} ms"]
    for source, (_, name) in BREAKDOWN.items():
        total = data[source].get("total")
        totals.append(f"{name} {'-' if total is None else f'{total:.2f}'}")
    lines = [(f"per finished saga (n={sagas})", ", ".join(totals))]
    if data["foreign_purchases"]:
        lines.append(
            (
                "  NOT the bench's alone",
                f"{data['foreign_purchases']} purchases by other clients during the window:"
                " their work is in these counts",
            )
        )
    processes = [
        f"{label} {ms:.1f} ({percent_of_core.get(label, 0.0):.0f}%)"
        for label, ms in cpu["by_process"].items()
        if ms >= 0.05
    ]
    lines += _wrapped("  CPU ms by process (% of a core)", processes[:8], 4)
    for source, (parts, name) in BREAKDOWN.items():
        found = data[source]
        label = f"  {name} by {parts.removeprefix('by_')}"
        if "error" in found:
            lines.append((label, f"not measured: {found['error']}"))
            continue
        items = [f"{_short(key)} {n:.2f}" for key, n in found[parts].items() if n >= 0.005]
        lines += _wrapped(label, items or ["none"], 3)
    return lines


def _short(key: str) -> str:
    """`/product.ProductService/ReserveInventory` -> `ProductService/ReserveInventory`."""
    return key.lstrip("/").split(".", 1)[-1] if key.startswith("/") else key


def _wrapped(label: str, items: list[str], per_line: int) -> list[tuple[str, str]]:
    chunks = [items[i : i + per_line] for i in range(0, len(items), per_line)] or [[]]
    return [(label if i == 0 else "", ", ".join(chunk)) for i, chunk in enumerate(chunks)]
