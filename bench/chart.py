"""The PNG of a run, readable at a glance: a one-line summary under the title, what
went through per second, and latency in seconds with p50, p95 and p99 told apart.

`python -m bench.chart RESULT.json [OUT.png]` draws it again from a run's JSON file
(next to it, same name, by default), without running anything.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

# One colour, marker and line style per percentile, the same in every panel, so that
# they stay apart even when their values nearly agree.
PERCENTILES = (
    ("p50", "tab:blue", "o", "-"),
    ("p95", "tab:orange", "s", "--"),
    ("p99", "tab:red", "^", ":"),
)


def seconds(value: float | None) -> str:
    """A latency as people read it: `4.81 s`, `0.052 s`; `-` when there is none."""
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.3f} s" if value < 1 else f"{value:.2f} s"


def _rate(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.0f}"


def headline(data: dict[str, Any]) -> str:
    """One line: what finished, throughput, POST->final latency, CPU per saga and the
    invariants (the failed ones by name)."""
    statuses = data["outcomes"]["by_status"]
    ended = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items())) or "none"
    t = data["throughput"]
    latency = data["latency_seconds"]["post_to_final"]
    parts = [
        f"{sum(statuses.values())} purchases: {ended}",
        f"{_rate(t['finished_per_second'])} sagas/s finished",
        "POST->final " + " ".join(f"{name} {seconds(latency[name])}" for name, *_ in PERCENTILES),
    ]
    cpu = data.get("per_finished_saga", {}).get("cpu_ms", {}).get("stack")
    if cpu is not None:
        parts.append(f"CPU {cpu:.1f} ms/saga")
    checks = data["invariants"]
    failed = [c["name"] for c in checks if not c["ok"]]
    verdict = f"invariants {len(checks) - len(failed)}/{len(checks)} ok"
    if failed:
        verdict += " - FAILED: " + "; ".join(failed)
    if not data["outcomes"]["drained"]:
        verdict += " (drain timeout!)"
    parts.append(verdict)
    return " | ".join(parts)


def all_good(data: dict[str, Any]) -> bool:
    return bool(data["outcomes"]["drained"]) and all(c["ok"] for c in data["invariants"])


def draw(data: dict[str, Any], path: Path) -> Path:
    """Draw the run's chart into the PNG file `path`."""
    import matplotlib.pyplot as plt

    fig = figure(data)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def figure(data: dict[str, Any]) -> Any:
    """Throughput (per second) over time above; below, each purchase's POST->final
    latency by the second it ended, with that second's percentiles, and beside it the
    run's percentiles as labelled bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(13, 8.5))
    grid = fig.add_gridspec(2, 2, width_ratios=(4, 1), height_ratios=(1, 1.15))
    top = fig.add_subplot(grid[0, :])
    over_time = fig.add_subplot(grid[1, 0])
    overall = fig.add_subplot(grid[1, 1])

    _throughput(top, data)
    _latency_over_time(over_time, data)
    _latency_overall(overall, data)
    over_time.set_xlim(top.get_xlim())

    o = data["options"]
    fig.suptitle(
        f"make bench: {o['scenario']}, {o['purchases']} purchases, concurrency"
        f" {o['concurrency']} ({data['machine']['cpus']} CPUs, {data['when']})",
        fontsize=13,
        y=0.985,
    )
    fig.text(
        0.5,
        0.94,
        headline(data),
        ha="center",
        fontsize=10,
        bbox={
            "boxstyle": "round,pad=0.4",
            "facecolor": "#e8f5e9" if all_good(data) else "#ffebee",
            "edgecolor": "tab:green" if all_good(data) else "tab:red",
        },
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def _throughput(ax: Any, data: dict[str, Any]) -> None:
    series = data["series_per_second"]
    ticks = list(range(len(series["accepted"])))
    ax.plot(ticks, series["accepted"], label="accepted (202)/s", color="tab:blue")
    ax.plot(ticks, series["completed"], label="completed/s", color="tab:green")
    ax.plot(ticks, series["failed"], label="failed/s", color="tab:red")
    samples = data["progress_samples"]
    in_flight = ax.twinx()
    in_flight.plot(
        [s["t"] for s in samples],
        [max(s["accepted"] - s["finished"], 0) for s in samples],
        label="in flight",
        color="tab:gray",
        linestyle="--",
    )
    in_flight.set_ylabel("sagas in flight")
    ax.set_ylabel("purchases per second")
    ax.set_title("throughput", fontsize=10, loc="left")
    mine, theirs = ax.get_legend_handles_labels(), in_flight.get_legend_handles_labels()
    ax.legend(mine[0] + theirs[0], mine[1] + theirs[1], loc="upper right", fontsize=9)


def _latency_over_time(ax: Any, data: dict[str, Any]) -> None:
    purchases = data["purchases"]  # [sent, accepted, final, status]
    for status, colour, marker in (
        ("COMPLETED", "0.65", "."),
        ("FAILED", "tab:pink", "x"),
        ("CANCELLED", "tab:olive", "+"),
    ):
        ended = [p for p in purchases if p[3] == status]
        if ended:
            ax.scatter(
                [p[2] for p in ended],
                [p[2] - p[0] for p in ended],
                s=6,
                c=colour,
                marker=marker,
                alpha=0.5,
                label=f"one {status} purchase",
                zorder=1,
            )
    series = data["series_per_second"]
    for name, colour, marker, style in PERCENTILES:
        values = series[f"latency_{name}"]
        # At the middle of the second it stands for, where its purchases' dots are.
        ax.plot(
            [s + 0.5 for s in range(len(values))],
            values,
            label=f"{name} of the second",
            color=colour,
            marker=marker,
            markersize=5,
            linestyle=style,
            linewidth=1.8,
            zorder=3,
        )
    ax.set_ylim(bottom=0)
    ax.set_ylabel("POST -> final state (seconds)")
    ax.set_xlabel("seconds since the first POST (when the purchase ended)")
    ax.set_title("latency of each purchase, by when it ended", fontsize=10, loc="left")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, markerscale=1.5)


def _latency_overall(ax: Any, data: dict[str, Any]) -> None:
    latency = data["latency_seconds"]["post_to_final"]
    rows = [*PERCENTILES, ("max", "0.35", "", "-")]
    names = [name for name, *_ in rows]
    values = [latency[name] for name in names]
    shown = [0.0 if math.isnan(v) else v for v in values]
    bars = ax.barh(names, shown, color=[colour for _, colour, *_ in rows])
    ax.bar_label(bars, labels=[seconds(v) for v in values], padding=3, fontsize=9)
    ax.invert_yaxis()  # p50 on top, as read
    ax.set_xlim(0, max(shown + [0.001]) * 1.45)  # room for the labels
    ax.set_xlabel("seconds")
    ax.set_title(f"whole run (n={latency['count']})", fontsize=10, loc="left")


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print("usage: python -m bench.chart RESULT.json [OUT.png]", file=sys.stderr)
        return 2
    source = Path(argv[0])
    data = json.loads(source.read_text())
    if "series_per_second" not in data:
        print(f"{source}: not a load run's result (a chaos run has no chart)", file=sys.stderr)
        return 1
    out = Path(argv[1]) if len(argv) == 2 else source.with_suffix(".png")
    print(draw(data, out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
