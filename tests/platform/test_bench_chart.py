"""The bench's chart: a one-line summary, latency in seconds, p50/p95/p99 told apart.
Drawn from a run's figures as the JSON file holds them; no platform needed."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench import chart


def run_figures(*, invariants_ok: bool = True) -> dict[str, Any]:
    """The parts of a run's JSON the chart reads: 4 purchases over 3 seconds."""
    return {
        "when": "2026-12-07T09:16:58+0000",
        "options": {"scenario": "seed", "purchases": 4, "concurrency": 4},
        "machine": {"cpus": 2},
        "requests": {"accepted": 4},
        "outcomes": {"by_status": {"COMPLETED": 3, "FAILED": 1}, "drained": True},
        "throughput": {"finished_per_second": 1.6},
        "latency_seconds": {
            "post_to_final": {
                "count": 4,
                "p50": 0.84,
                "p95": 1.9,
                "p99": 2.25,
                "max": 2.25,
                "mean": 1.2,
            }
        },
        "per_finished_saga": {"cpu_ms": {"stack": 9.24}},
        "invariants": [
            {"name": "one purchase per request", "ok": True, "detail": ""},
            {"name": "stock never negative", "ok": invariants_ok, "detail": ""},
        ],
        "series_per_second": {
            "accepted": [4.0, 0.0, 0.0],
            "completed": [0.0, 2.0, 1.0],
            "failed": [0.0, 1.0, 0.0],
            "latency_p50": [math.nan, 0.84, 2.25],
            "latency_p95": [math.nan, 1.2, 2.25],
            "latency_p99": [math.nan, 1.2, 2.25],
        },
        "progress_samples": [
            {"t": 0.0, "accepted": 0, "finished": 0},
            {"t": 1.0, "accepted": 4, "finished": 0},
            {"t": 3.0, "accepted": 4, "finished": 4},
        ],
        "purchases": [
            [0.1, 0.2, 1.0, "COMPLETED"],
            [0.1, 0.2, 1.1, "FAILED"],
            [0.2, 0.3, 1.5, "COMPLETED"],
            [0.2, 0.3, 2.45, "COMPLETED"],
        ],
    }


def test_the_headline_says_outcomes_throughput_latency_in_seconds_cpu_and_invariants() -> None:
    line = chart.headline(run_figures())

    assert "\n" not in line
    assert "4 purchases: 3 COMPLETED, 1 FAILED" in line
    assert "2 sagas/s finished" in line
    assert "p50 0.840 s p95 1.90 s p99 2.25 s" in line
    assert "CPU 9.2 ms/saga" in line
    assert line.endswith("invariants 2/2 ok")


def test_a_failed_invariant_is_named_in_the_headline() -> None:
    line = chart.headline(run_figures(invariants_ok=False))

    assert "invariants 1/2 ok - FAILED: stock never negative" in line
    assert not chart.all_good(run_figures(invariants_ok=False))


def test_a_latency_with_no_value_reads_as_a_dash() -> None:
    assert chart.seconds(math.nan) == "-"
    assert chart.seconds(0.0523) == "0.052 s"
    assert chart.seconds(12.345) == "12.35 s"


def test_latency_is_plotted_in_seconds_with_each_percentile_in_its_own_colour_and_marker() -> None:
    import matplotlib.pyplot as plt

    fig = chart.figure(run_figures())
    try:
        over_time = next(ax for ax in fig.axes if "latency of each" in ax.get_title(loc="left"))
        lines = {line.get_label(): line for line in over_time.get_lines()}
        percentiles = [lines[f"{name} of the second"] for name in ("p50", "p95", "p99")]

        assert "seconds" in over_time.get_ylabel()
        assert list(percentiles[0].get_ydata())[1:] == [0.84, 2.25]  # seconds, not ms
        assert len({line.get_color() for line in percentiles}) == 3
        assert len({line.get_marker() for line in percentiles}) == 3
        assert len({line.get_linestyle() for line in percentiles}) == 3
        texts = [t.get_text() for t in fig.texts]
        assert chart.headline(run_figures()) in texts
    finally:
        plt.close(fig)


def test_a_chart_is_drawn_again_from_a_runs_json_file(tmp_path: Path) -> None:
    source = tmp_path / "run.json"
    source.write_text(json.dumps(run_figures()))

    assert chart.main([str(source)]) == 0

    png = source.with_suffix(".png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_a_chaos_result_is_refused_with_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "chaos.json"
    source.write_text(json.dumps({"faults": []}))

    assert chart.main([str(source)]) == 1
    assert "chaos" in capsys.readouterr().err
