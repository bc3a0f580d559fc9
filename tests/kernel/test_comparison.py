"""The comparison table's arithmetic, pinned on hand-computed numbers."""

from __future__ import annotations

import json

import pytest

from stillhouse.kernel.comparison import (
    build_comparison,
    format_metric,
    parse_count,
    results_from_json,
)
from stillhouse.kernel.interfaces import Metric

LOCAL = "local model: compute not priced"


def _role(params, memory, p50, tps, acc, cost, *, cost_reason=None, n=100):
    return [
        Metric("parameters", params, n=1),
        Metric("peak_memory_bytes", memory, n=n),
        Metric("latency_p50_ms", p50, n=8),
        Metric("latency_p95_ms", p50 * 1.5, n=8),
        Metric("throughput_tokens_per_s", tps, n=n),
        Metric("accuracy", acc, n=n),
        Metric("macro_f1", acc / 2, n=n),
        Metric("cost_per_1k_requests_usd", cost, n=n, reason=cost_reason),
    ]


@pytest.fixture
def results():
    return {
        "teacher": _role(1e9, 4e9, 200.0, 50.0, 0.80, 2.0),
        "baseline": _role(1e8, 5e8, 50.0, 200.0, 0.40, None, cost_reason=LOCAL),
        "student": _role(1e8, 4e8, 40.0, 250.0, 0.72, 0.5),
    }


def test_rows_hold_the_measured_values(results):
    table = build_comparison(results, "accuracy")
    assert [r.key for r in table.rows] == ["teacher", "baseline", "student"]
    teacher = table.row("teacher").cells
    assert teacher["parameters"].value == 1e9 and teacher["parameters"].text == "1.00B"
    assert teacher["memory"].value == 4e9 and teacher["memory"].metric == "peak_memory_bytes"
    assert teacher["latency"].text == "200 ms (p95 300 ms) (n=8)"
    assert teacher["task"].value == 0.80 and teacher["task"].text == "0.800 (n=100)"
    assert [c.title for c in table.columns][4] == "accuracy"


def test_distilled_vs_teacher_ratios(results):
    row = build_comparison(results, "accuracy").row("student_vs_teacher").cells
    assert row["parameters"].value == pytest.approx(10.0)  # 1e9 / 1e8
    assert row["parameters"].text == "10.0× smaller"
    assert row["memory"].value == pytest.approx(90.0)  # (1 - 0.4e9 / 4e9) * 100
    assert row["latency"].value == pytest.approx(80.0)  # (1 - 40 / 200) * 100
    assert row["throughput"].value == pytest.approx(5.0)  # 250 / 50
    assert row["throughput"].text == "5.00×"
    assert row["task"].value == pytest.approx(90.0)  # 0.72 / 0.80 * 100
    assert row["task"].text == "90.0% retained"
    assert [row[k].text for k in ("memory", "latency", "cost")] == ["90.0% less", "80.0% lower", "75.0% cheaper"]
    assert row["cost"].value == pytest.approx(75.0)  # (1 - 0.5 / 2.0) * 100


def test_distilled_vs_baseline_improvement_and_missing_cost(results):
    row = build_comparison(results, "accuracy").row("student_vs_baseline").cells
    assert row["parameters"].value == pytest.approx(1.0) and row["parameters"].text == "same size"
    assert row["memory"].value == pytest.approx(20.0)  # (1 - 4e8 / 5e8) * 100
    assert row["latency"].value == pytest.approx(20.0)  # (1 - 40 / 50) * 100
    assert row["throughput"].value == pytest.approx(1.25)
    assert row["task"].value == pytest.approx(0.32)  # 0.72 - 0.40
    assert row["task"].text == "+32.0 pts"
    # The baseline's cost was not measured: the ratio is missing, with the reason carried along.
    assert row["cost"].value is None
    assert LOCAL in row["cost"].reason and "baseline" in row["cost"].reason


def test_primary_metric_chooses_the_task_column(results):
    row = build_comparison(results, "macro_f1").row("student_vs_teacher").cells
    assert row["task"].value == pytest.approx(90.0)  # 0.36 / 0.40 * 100
    assert build_comparison(results, "macro_f1").row("teacher").cells["task"].value == pytest.approx(0.40)


def test_missing_values_are_never_zero(results):
    results["teacher"] = [
        Metric("parameters", None, reason="API model: parameter count unknown"),
        Metric("accuracy", 0.8, n=100),
    ]
    table = build_comparison(results, "accuracy")
    teacher = table.row("teacher").cells
    assert teacher["parameters"].value is None and teacher["parameters"].text == "—"
    assert teacher["parameters"].reason == "API model: parameter count unknown"
    assert teacher["memory"].value is None and teacher["memory"].reason == "not measured"
    ratio = table.row("student_vs_teacher").cells
    assert ratio["parameters"].value is None and "parameter count unknown" in ratio["parameters"].reason
    assert ratio["task"].value == pytest.approx(90.0)
    notes = table.notes()
    assert ("teacher", "parameters", "API model: parameter count unknown") in notes


def test_zero_reference_gives_no_ratio(results):
    results["teacher"][-1] = Metric("cost_per_1k_requests_usd", 0.0, n=100)
    results["teacher"][5] = Metric("accuracy", 0.0, n=100)
    ratio = build_comparison(results, "accuracy").row("student_vs_teacher").cells
    assert ratio["cost"].value is None and "is 0" in ratio["cost"].reason
    assert ratio["task"].value is None and "teacher accuracy is 0" in ratio["task"].reason


def test_gpu_memory_is_not_compared_with_rss(results):
    results["teacher"].append(Metric("gpu_peak_memory_bytes", 3e9, n=100))
    table = build_comparison(results, "accuracy")
    assert table.row("teacher").cells["memory"].metric == "gpu_peak_memory_bytes"
    cell = table.row("student_vs_teacher").cells["memory"]
    assert cell.value is None and "not comparable" in cell.reason


def test_absent_role_is_not_evaluated(results):
    del results["teacher"]
    table = build_comparison(results, "accuracy")
    assert table.row("teacher").cells["task"].reason == "not evaluated"
    assert table.row("student_vs_teacher").cells["task"].value is None
    assert table.row("student_vs_baseline").cells["task"].value == pytest.approx(0.32)


def test_single_role_has_no_ratio_rows(results):
    table = build_comparison({"model": results["student"]}, "accuracy", roles=["model"])
    assert [r.key for r in table.rows] == ["model"] and table.ratios == []


def test_student_larger_than_reference():
    table = build_comparison(
        {"teacher": [Metric("parameters", 1e6)], "student": [Metric("parameters", 4e6)]}, "accuracy"
    )
    assert table.row("student_vs_teacher").cells["parameters"].text == "4.00× larger"


def test_a_negative_reduction_reads_as_an_increase():
    table = build_comparison(
        {"teacher": [Metric("latency_p50_ms", 40.0, n=8)], "student": [Metric("latency_p50_ms", 50.0, n=8)]}, "accuracy"
    )
    cell = table.row("student_vs_teacher").cells["latency"]
    assert cell.value == pytest.approx(-25.0) and cell.text == "25.0% higher"


@pytest.mark.parametrize(
    ("text", "value"),
    [("671B", 671e9), ("135M", 135e6), ("1.5T", 1.5e12), ("350k", 350e3), ("1,000", 1000.0), (7, 7.0), ("7b", 7e9)],
)
def test_parse_count(text, value):
    assert parse_count(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "lots", "7 billion", "B7", "-3M"])
def test_parse_count_refuses_non_counts(text):
    with pytest.raises(ValueError):
        parse_count(text)


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("parameters", 134_515_008, "135M"),
        ("parameters", 671e9, "671B"),
        ("peak_memory_bytes", 3 * 2**30, "3.0 GiB"),
        ("bytes_on_disk", 512, "512 B"),
        ("latency_p50_ms", 1234.4, "1,234 ms"),
        ("latency_p50_ms", 3.14159, "3.14 ms"),
        ("cost_per_1k_requests_usd", 0.0123456, "$0.0123"),
        ("cost_usd_total", 12.5, "$12.50"),
        ("throughput_tokens_per_s", 113.4, "113 tok/s"),
        ("rouge_l", 0.41234, "0.412"),
        ("accuracy", None, "—"),
    ],
)
def test_format_metric(name, value, text):
    assert format_metric(name, value) == text


def test_results_json_round_trip(results):
    payload = {
        role: {"model": f"m-{role}", "info": {}, "metrics": [m.__dict__ for m in metrics]}
        for role, metrics in results.items()
    }
    loaded, models = results_from_json(json.loads(json.dumps(payload)))
    assert models == {"teacher": "m-teacher", "baseline": "m-baseline", "student": "m-student"}
    assert loaded["student"][5] == Metric("accuracy", 0.72, n=100)
    table = build_comparison(loaded, "accuracy").to_dict()
    assert table["ratios"][0]["cells"]["task"]["value"] == pytest.approx(90.0)


# -- interleaved timing: intervals and significance ---------------------------------------------


def _timed(role_ms: float, low: float, high: float) -> list[Metric]:
    return [Metric("request_latency_ms", role_ms, n=24, higher_is_better=False, low=low, high=high)]


def test_a_speed_ratio_is_shown_with_its_range_when_the_intervals_separate() -> None:
    results = {"teacher": _timed(1000, 950, 1080), "student": _timed(450, 420, 500)}
    cell = build_comparison(results, "accuracy").row("student_vs_teacher").cells["latency"]
    assert cell.text == "2.2× faster (1.9–2.6×)"
    assert (cell.low, cell.high) == (950 / 500, 1080 / 420)
    value = build_comparison(results, "accuracy").row("student").cells["latency"]
    assert value.text == "450 ms [420–500] (n=24)"


def test_overlapping_intervals_are_not_significant_and_claim_no_direction() -> None:
    results = {"teacher": _timed(1000, 900, 1200), "student": _timed(950, 800, 1010)}
    cell = build_comparison(results, "accuracy").row("student_vs_teacher").cells["latency"]
    assert cell.text.startswith("not significant (")
    assert "faster" not in cell.text and "slower" not in cell.text


def test_a_slower_student_is_called_slower() -> None:
    results = {"teacher": _timed(400, 380, 420), "student": _timed(1200, 1100, 1300)}
    cell = build_comparison(results, "accuracy").row("student_vs_teacher").cells["latency"]
    assert cell.text.startswith("3.0× slower")


def test_without_intervals_the_old_reduction_text_stays() -> None:
    results = {"teacher": [Metric("latency_p50_ms", 200, n=8)], "student": [Metric("latency_p50_ms", 100, n=8)]}
    cell = build_comparison(results, "accuracy").row("student_vs_teacher").cells["latency"]
    assert cell.text == "50.0% lower"


def test_an_exported_student_is_its_own_row_compared_with_the_distilled_student(results):
    from stillhouse.kernel.comparison import exported_role, role_label

    role = exported_role("gguf:q8_0")
    assert role == "student-gguf-q8_0" and role_label(role) == "distilled, q8_0 GGUF"
    results["student"].append(Metric("bytes_on_disk", 400e6, n=1))
    results[role] = [Metric("parameters", 1e8, n=1), Metric("bytes_on_disk", 100e6, n=1), Metric("accuracy", 0.70, n=60)]
    table = build_comparison(results, "accuracy", roles=["teacher", "baseline", "student", role])
    assert [c.key for c in table.columns][:2] == ["parameters", "disk"]
    assert table.row(role).label == "distilled, q8_0 GGUF"
    ratio = table.row(f"{role}_vs_student")
    assert ratio.label == "q8_0 GGUF vs distilled"
    assert ratio.cells["disk"].text == "4.00× smaller"  # 400 MB / 100 MB
    task = ratio.cells["task"]
    assert task.value == pytest.approx(-0.02) and task.text == "-2.0 pts" and task.n == 60  # the smaller n
    assert ratio.cells["latency"].missing  # the export was not timed: said, not invented
    # without an export the table keeps its columns
    assert "disk" not in [c.key for c in build_comparison(results, "accuracy").columns]
