"""The built-in evaluators on a real tiny model's generations, and on recorded API answers."""

from __future__ import annotations

import pytest

from stillhouse.kernel.errors import ConfigError
from stillhouse.kernel.interfaces import Answer, EvalSubject, Parsed, percentile
from stillhouse.plugins.evaluators.cost import CostEvaluator
from stillhouse.plugins.evaluators.footprint import FootprintEvaluator
from stillhouse.plugins.evaluators.latency import LatencyConfig, LatencyEvaluator
from stillhouse.plugins.evaluators.passes import batched_pass
from stillhouse.plugins.evaluators.task_metrics import TaskMetricsEvaluator
from stillhouse.plugins.evaluators.throughput import ThroughputConfig, ThroughputEvaluator
from tests.plugins.evaluators.helpers import LabelTask, answer_subject, examples


def by_name(metrics):
    return {m.name: m for m in metrics}


def api_subject(latencies, costs, *, info=None, errors=()):
    """Answers as an API teacher returned them: timed and priced per call."""
    rows = examples(len(latencies))
    answers = [
        Answer("entailment", ms, 20, 5, cost, error="timeout" if i in errors else None)
        for i, (ms, cost) in enumerate(zip(latencies, costs, strict=True))
    ]
    parsed = [LabelTask().parse(a.text) for a in answers]
    return EvalSubject(
        "teacher", "openai/gpt-4o", None, LabelTask(), rows, answers, parsed, {"remote": True, **(info or {})}
    )


def test_registered_through_the_entry_point(make_host):
    host = make_host()
    assert {"task_metrics", "latency", "throughput", "footprint", "cost"} <= set(host.names("evaluator"))


# -- task metrics -------------------------------------------------------------------------------


def test_task_metrics_scores_with_the_task_and_states_n(tiny_chat):
    task = LabelTask()
    rows = examples(6)
    subject = answer_subject(tiny_chat, task, rows)
    assert by_name(TaskMetricsEvaluator().evaluate(subject))["accuracy"].n == 6
    # Gold answers for half of the rows: the task's own score decides, the evaluator passes it on.
    subject.parsed = [Parsed(answer=e.reference) if i % 2 else Parsed(error="no label") for i, e in enumerate(rows)]
    accuracy = by_name(TaskMetricsEvaluator().evaluate(subject))["accuracy"]
    assert accuracy.value == pytest.approx(0.5) and accuracy.n == 6


def test_task_metrics_without_examples_is_missing():
    subject = EvalSubject("student", "m", None, LabelTask(), [], [], [])
    (metric,) = TaskMetricsEvaluator().evaluate(subject)
    assert metric.value is None and metric.reason == "no evaluation examples"


# -- latency ------------------------------------------------------------------------------------


def test_latency_times_single_requests_on_a_local_model(tiny_chat):
    subject = answer_subject(tiny_chat, LabelTask(), examples(6), batch_size=3)
    tiny_chat.calls.clear()
    metrics = by_name(LatencyEvaluator(LatencyConfig(single_requests=3)).evaluate(subject))
    # Three prompts one at a time, untimed then timed; then one repeated batched pass of all six.
    assert tiny_chat.calls == [(1, 1)] * 6 + [(6, 3)]
    single = metrics["latency_p50_ms"]
    assert single.n == 3 and single.value > 0 and single.unit == "ms (batch size 1)"
    assert metrics["latency_p95_ms"].value >= single.value
    # Batched latency: what a caller of a batch waited, on the warm pass.
    batched = [a.latency_ms for a in batched_pass(subject).answers]
    assert metrics["batch_latency_p50_ms"].value == percentile(batched, 50)
    assert metrics["batch_latency_p95_ms"].value == percentile(batched, 95)
    assert metrics["batch_latency_p50_ms"].n == 6
    assert metrics["batch_latency_p50_ms"].unit == "ms (warm batched at batch size 3)"
    assert all(m.higher_is_better is False for m in metrics.values())


def test_latency_of_an_api_model_uses_its_timed_calls():
    subject = api_subject([400.0, 100.0, 300.0, 200.0, 900.0], [0.001] * 5, errors={4})
    metrics = by_name(LatencyEvaluator().evaluate(subject))
    # The failed call (900 ms) is not timed as an answer; nearest-rank p50 of 100..400 is 200.
    assert metrics["latency_p50_ms"].value == 200.0 and metrics["latency_p50_ms"].n == 4
    assert metrics["latency_p95_ms"].value == 400.0
    assert metrics["latency_p50_ms"].unit == "ms (per API call)"


def test_latency_when_every_call_failed_is_missing():
    subject = api_subject([10.0, 20.0], [None, None], errors={0, 1})
    metric = by_name(LatencyEvaluator().evaluate(subject))["latency_p50_ms"]
    assert metric.value is None and "timeout" in metric.reason


def test_latency_without_a_model_is_not_measured():
    subject = EvalSubject("baseline", "m", None, LabelTask(), examples(2), [Answer("x", 5.0)] * 2, [Parsed()] * 2)
    metrics = by_name(LatencyEvaluator().evaluate(subject))
    assert metrics["latency_p50_ms"].value is None and "no local model" in metrics["latency_p50_ms"].reason
    assert metrics["batch_latency_p50_ms"].value == 5.0


# -- throughput ---------------------------------------------------------------------------------


def test_throughput_from_a_repeated_batched_pass(tiny_chat):
    subject = answer_subject(tiny_chat, LabelTask(), examples(6), batch_size=3)
    tiny_chat.calls.clear()
    metrics = by_name(ThroughputEvaluator().evaluate(subject))
    measured = batched_pass(subject)
    assert measured.warm and tiny_chat.calls == [(6, 3)]
    tokens = sum(a.completion_tokens for a in measured.answers)
    assert tokens > 0
    assert metrics["throughput_tokens_per_s"].value == pytest.approx(tokens / measured.wall_s)
    assert metrics["requests_per_s"].value == pytest.approx(6 / measured.wall_s)
    assert metrics["requests_per_s"].n == 6 and metrics["requests_per_s"].unit == "req/s (warm pass) at batch size 3"
    # The latency evaluator measures on the same pass: the model is not asked a third time.
    LatencyEvaluator(LatencyConfig(single_requests=0)).evaluate(subject)
    assert tiny_chat.calls == [(6, 3)]


def test_throughput_of_the_stage_pass_when_not_repeating(tiny_chat):
    subject = answer_subject(tiny_chat, LabelTask(), examples(4), batch_size=2)
    subject.info["answer_wall_s"] = 2.0  # pin the arithmetic on the stage's own pass
    metrics = by_name(ThroughputEvaluator(ThroughputConfig(repeat=False)).evaluate(subject))
    tokens = sum(a.completion_tokens for a in subject.answers)
    assert metrics["throughput_tokens_per_s"].value == pytest.approx(tokens / 2.0)
    assert metrics["requests_per_s"].value == pytest.approx(2.0)
    del subject.info["answer_wall_s"]
    for metric in ThroughputEvaluator(ThroughputConfig(repeat=False)).evaluate(subject):
        assert metric.value is None and "wall time" in metric.reason


def test_throughput_when_tokens_were_not_counted():
    subject = api_subject([100.0, 100.0], [0.0, 0.0], info={"answer_wall_s": 2.0})
    for answer in subject.answers:
        answer.completion_tokens = 0
    metrics = by_name(ThroughputEvaluator().evaluate(subject))
    assert metrics["throughput_tokens_per_s"].value is None
    assert "no completion token counts" in metrics["throughput_tokens_per_s"].reason
    assert metrics["requests_per_s"].value == pytest.approx(1.0)


# -- footprint ----------------------------------------------------------------------------------


def test_footprint_of_a_local_model(tiny_chat, tiny_model_dir):
    from stillhouse.plugins.hf_models import count_parameters, folder_bytes

    subject = answer_subject(tiny_chat, LabelTask(), examples(3))
    tiny_chat.calls.clear()
    metrics = by_name(FootprintEvaluator().evaluate(subject))
    assert metrics["parameters"].value == count_parameters(tiny_chat.model) > 10_000
    assert metrics["bytes_on_disk"].value == folder_bytes(str(tiny_model_dir))
    # Memory is watched over one batched answer of the prompts (three here, in one batch).
    assert tiny_chat.calls == [(3, 3)]
    rss = metrics["peak_memory_bytes"]
    assert rss.value > 10 * 2**20 and rss.n == 3 and rss.unit == "bytes (process RSS while answering 3 prompts at once)"
    gpu = metrics["gpu_peak_memory_bytes"]
    assert gpu.value is None and gpu.reason == "not measured: the model did not run on a GPU"


def test_footprint_without_watching_takes_the_models_numbers(tiny_chat):
    from stillhouse.plugins.evaluators.footprint import FootprintConfig

    subject = answer_subject(tiny_chat, LabelTask(), examples(2))
    metrics = by_name(FootprintEvaluator(FootprintConfig(watch_prompts=0)).evaluate(subject))
    # The test model reports no memory of its own: missing with the reason, never 0.
    assert metrics["peak_memory_bytes"].value is None
    assert metrics["peak_memory_bytes"].reason == "not measured by this model"


def test_footprint_of_an_api_model_uses_the_declared_count():
    metrics = by_name(FootprintEvaluator().evaluate(api_subject([1.0], [0.0], info={"parameters": "671B"})))
    assert metrics["parameters"].value == 671e9 and "declared" in metrics["parameters"].unit
    assert (
        metrics["bytes_on_disk"].value is None and metrics["bytes_on_disk"].reason == "not measured: remote API model"
    )


def test_footprint_of_an_api_model_without_a_count():
    metric = by_name(FootprintEvaluator().evaluate(api_subject([1.0], [0.0])))["parameters"]
    assert metric.value is None and "teacher.parameters" in metric.reason


def test_footprint_refuses_a_garbled_count():
    with pytest.raises(ConfigError) as err:
        FootprintEvaluator().evaluate(api_subject([1.0], [0.0], info={"parameters": "huge"}))
    assert err.value.where.field == "teacher.parameters" and "671B" in err.value.hint


# -- cost ---------------------------------------------------------------------------------------


def test_cost_of_api_calls():
    metrics = by_name(CostEvaluator().evaluate(api_subject([1.0] * 4, [0.001, 0.002, 0.003, 0.0])))
    assert metrics["cost_usd_total"].value == pytest.approx(0.006)
    assert metrics["cost_per_1k_requests_usd"].value == pytest.approx(1.5)  # 0.006 / 4 * 1000
    assert metrics["cost_per_1k_requests_usd"].n == 4


def test_cost_with_an_unknown_price_is_missing():
    metrics = by_name(CostEvaluator().evaluate(api_subject([1.0] * 3, [0.001, None, 0.002])))
    assert metrics["cost_usd_total"].value is None
    assert metrics["cost_per_1k_requests_usd"].reason == "price unknown for 1 of 3 requests (set teacher.price)"


def test_cost_of_a_local_model_is_not_priced_by_default(tiny_chat):
    subject = answer_subject(tiny_chat, LabelTask(), examples(2))
    metrics = by_name(CostEvaluator().evaluate(subject))
    assert metrics["cost_usd_total"].value is None
    assert "compute not priced" in metrics["cost_per_1k_requests_usd"].reason


def test_cost_of_local_compute_at_an_hourly_rate(tiny_chat):
    subject = answer_subject(tiny_chat, LabelTask(), examples(4), usd_per_hour=3.6)
    subject.info["answer_wall_s"] = 10.0  # pin the arithmetic: 10 s at $3.60/h
    metrics = by_name(CostEvaluator().evaluate(subject))
    assert metrics["cost_usd_total"].value == pytest.approx(0.01)
    assert metrics["cost_per_1k_requests_usd"].value == pytest.approx(2.5)  # 0.01 / 4 * 1000
    assert metrics["cost_usd_total"].unit == "USD (compute at $3.6/h)"


def test_a_teacher_that_describes_itself_as_not_local_is_remote():
    subject = api_subject([300.0, 100.0], [0.001, 0.001])
    del subject.info["remote"]
    subject.info["local"] = False  # as the litellm teacher's describe() says
    assert by_name(LatencyEvaluator().evaluate(subject))["latency_p50_ms"].unit == "ms (per API call)"
    subject.info["local"] = True
    assert "no local model" in by_name(LatencyEvaluator().evaluate(subject))["latency_p50_ms"].reason


def test_footprint_of_a_local_model_that_reports_nothing_reads_its_weight_files(tiny_chat, tiny_model_dir):
    """A local teacher served through litellm has no footprint of its own: its files are counted."""
    from stillhouse.kernel.interfaces import ChatModel
    from stillhouse.plugins.hf_models import count_parameters, folder_bytes

    class Opaque(ChatModel):
        def answer(self, prompts, *, max_new_tokens, batch_size):
            return tiny_chat.answer(prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)

    subject = answer_subject(Opaque(), LabelTask(), examples(2), role="teacher", local=True)
    subject.info["model"] = f"hf/{tiny_model_dir}"  # as the teacher's describe() names it
    metrics = by_name(FootprintEvaluator().evaluate(subject))
    assert metrics["parameters"].value == count_parameters(tiny_chat.model)
    assert metrics["parameters"].unit == "params (counted in the weight files)"
    assert metrics["bytes_on_disk"].value == folder_bytes(str(tiny_model_dir))
    assert metrics["peak_memory_bytes"].value > 0  # watched while it answered, like any local model
