"""The capacity evaluator: requests/s at each batch size with n and spread, and the best one
within a latency target, on a real tiny model."""

from __future__ import annotations

from stillhouse.plugins.evaluators.capacity import CapacityConfig, CapacityEvaluator
from tests.plugins.evaluators.helpers import LabelTask, answer_subject, examples


def by_name(metrics):
    return {m.name: m for m in metrics}


def test_capacity_reports_each_batch_size_with_n_and_spread(tiny_chat):
    subject = answer_subject(tiny_chat, LabelTask(), examples(3), max_new_tokens=4)
    tiny_chat.calls.clear()
    config = CapacityConfig(batch_sizes=[2, 1], repeats=2, latency_target_ms=1e9)
    metrics = by_name(CapacityEvaluator(config).evaluate(subject))

    assert tiny_chat.calls == [(1, 1), (1, 1), (2, 2), (2, 2)]  # each batch answered at once, smallest first
    for size in (1, 2):
        rate = metrics[f"capacity_requests_per_s_batch_{size}"]
        latency = metrics[f"capacity_latency_p95_ms_batch_{size}"]
        assert rate.n == latency.n == 2
        assert rate.low <= rate.value <= rate.high and latency.low <= latency.value <= latency.high
        assert latency.value == latency.high  # nearest-rank p95 of two repeats is the slower one
    capacity = metrics["capacity_requests_per_s"]
    best = max((1, 2), key=lambda s: metrics[f"capacity_requests_per_s_batch_{s}"].value)
    assert capacity.value == metrics[f"capacity_requests_per_s_batch_{best}"].value
    assert metrics["capacity_concurrent_requests"].value == best


def test_a_target_no_batch_meets_is_a_missing_value_with_the_reason(tiny_chat):
    subject = answer_subject(tiny_chat, LabelTask(), examples(2), max_new_tokens=2)
    config = CapacityConfig(batch_sizes=[1], repeats=1, latency_target_ms=1e-6)
    metrics = by_name(CapacityEvaluator(config).evaluate(subject))
    assert metrics["capacity_requests_per_s"].value is None
    assert "no batch size in [1] met p95 latency" in metrics["capacity_requests_per_s"].reason
    assert metrics["capacity_requests_per_s_batch_1"].value > 0  # what was measured is still reported


def test_an_api_model_is_not_measured(tiny_chat):
    subject = answer_subject(tiny_chat, LabelTask(), examples(2), max_new_tokens=2, remote=True)
    tiny_chat.calls.clear()
    metrics = by_name(CapacityEvaluator(CapacityConfig()).evaluate(subject))
    assert metrics["capacity_requests_per_s"].value is None and "local models" in metrics["capacity_requests_per_s"].reason
    assert tiny_chat.calls == []
