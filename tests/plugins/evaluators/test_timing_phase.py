"""The evaluate stage's timing phase (kernel.evaluation.time_roles): metrics with intervals per
role, progress events per role, and a ChatModel without time_request reported as not measured."""

from __future__ import annotations

from pathlib import Path

from stillhouse.kernel.evaluation import time_roles
from stillhouse.kernel.interfaces import TimingConfig
from tests.plugins.evaluators.helpers import TinyChatModel


def test_time_roles_measures_what_it_can_and_says_why_not_for_the_rest(tiny_model_dir: Path) -> None:
    from stillhouse.plugins.hf_models import load_causal_lm
    from stillhouse.plugins.students.chat_model import HfChatModel

    model, tokenizer = load_causal_lm(str(tiny_model_dir), dtype="float32", device="cpu")
    models = {"student": HfChatModel(model, tokenizer, name="tiny", disk_path=None), "other": TinyChatModel(tiny_model_dir)}
    events: list[tuple[str, dict]] = []
    config = TimingConfig(new_tokens=3, prompts=2, warmup=1, min_rounds=2, max_rounds=2)
    prompts = [[{"role": "user", "content": "Hello there"}], [{"role": "user", "content": "Two dogs run."}]]
    metrics = time_roles(models, prompts, config, emit=lambda kind, **e: events.append((kind, e)))
    student = {m.name: m for m in metrics["student"]}
    decode = student["decode_ms_per_token"]
    assert decode.n == 4 and decode.low <= decode.value <= decode.high  # 2 prompts x 2 timed rounds
    assert student["ttft_ms"].value < student["request_latency_ms"].value
    params = sum(p.numel() for p in model.parameters())
    assert 4 * params <= student["weights_bytes"].value <= 4 * params * 1.01  # fp32 weights + small buffers
    other = {m.name: m for m in metrics["other"]}
    assert other["decode_ms_per_token"].value is None and "cannot time" in other["decode_ms_per_token"].reason
    progress = [e for kind, e in events if kind == "progress"]
    assert all(e["stage"] == "evaluate" and e["phase"] == "timing" for e in progress)
    assert {e["role"] for e in progress} >= {"student", "other"}
    assert [e["done"] for e in progress] == sorted(e["done"] for e in progress) and progress[-1]["done"] == progress[-1]["total"]
    evals = {(e["role"], e["metric"]): e for kind, e in events if kind == "eval"}
    assert evals[("student", "decode_ms_per_token")]["low"] == decode.low
