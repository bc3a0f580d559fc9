"""Memory measured for the model, not the runtime: the weights as loaded (parameters × dtype size)
and the working memory that answering needs on top (the C heap's rise, not process RSS)."""

from __future__ import annotations

from pathlib import Path

from stillhouse.kernel.interfaces import EvalSubject, Example
from stillhouse.plugins.evaluators.footprint import FootprintEvaluator
from stillhouse.plugins.evaluators.memory import heap_in_use_bytes, watch_memory
from tests.plugins.evaluators.helpers import LabelTask


def test_the_heap_watch_sees_an_allocation_the_size_it_is() -> None:
    import torch

    if heap_in_use_bytes() is None:  # not glibc >= 2.33
        return
    _, watched = watch_memory(lambda: torch.ones(25_000_000).sum())  # 100 MB of float32
    assert watched.working_bytes is not None and 95e6 <= watched.working_bytes <= 130e6


def test_weights_and_working_memory_of_a_local_model(tiny_model_dir: Path) -> None:
    from stillhouse.plugins.hf_models import load_causal_lm
    from stillhouse.plugins.students.chat_model import HfChatModel

    model, tokenizer = load_causal_lm(str(tiny_model_dir), dtype="float32", device="cpu")
    chat = HfChatModel(model, tokenizer, name="tiny", disk_path=str(tiny_model_dir))
    examples = [Example(f"e{i}", "test", {"text": "A man plays a guitar on stage."}, "entailment") for i in range(4)]
    subject = EvalSubject("student", "tiny", chat, LabelTask(), examples, [], [], {"max_new_tokens": 8})
    metrics = {m.name: m for m in FootprintEvaluator().evaluate(subject)}
    params = sum(p.numel() for p in model.parameters())
    weights = metrics["weights_bytes"].value
    assert weights is not None and 4 * params <= weights <= 4 * params * 1.05  # fp32, plus small buffers
    working = metrics["peak_working_memory_bytes"]
    if heap_in_use_bytes() is not None:
        # Activations of a d=64 model over 4 short prompts: far below the process RSS (the runtime).
        assert working.value is not None and 0 < working.value < metrics["peak_memory_bytes"].value / 4
        assert "not the weights" in working.unit
