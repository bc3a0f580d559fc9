"""On-policy distillation (GKD, Agarwal et al. 2024) inside the ``hf`` trainer.

For a ``fraction`` of training micro-batches (drawn from the seed and the step, so a resumed run and
every process draw the same), the batch's prompts are completed by the *student* (``seq_kd``: by
the teacher) in one batched ``generate`` call: prompts left-padded, KV cache on, sampling at
``temperature`` from the full distribution (``top_k = 0``). The local teacher then scores the
sampled tokens in one forward on the same padded layout, and the loss's divergence is taken on
those positions exactly as on stored top-k (``LossInputs.teacher_ids`` / ``teacher_logprobs``,
``train.top_k`` slots per position).

On a student-sampled batch the loss is the divergence alone (``alpha = 1``): cross-entropy on the
student's own samples would teach it to imitate itself. Teacher-sampled (``seq_kd``) batches keep
the configured mix, since their text is the teacher's.

The trainer measures the time spent generating against the whole training step time and reports
the share (``train/generation_share`` metric, and ``on_policy`` in the training summary).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from stillhouse.kernel.interfaces import IGNORE_INDEX, EmitFn, Loss, LossInputs
from stillhouse.plugins.students.batching import Collator
from stillhouse.plugins.students.hf_trainer import DistillTrainer, check_finite_loss
from stillhouse.plugins.students.on_policy_config import OnPolicyConfig
from stillhouse.plugins.students.teacher import LiveTeacher

PROMPT_KEYS = ("prompts", "prompt_weights")


@dataclass
class PromptCollator:
    """The ordinary batch plus each sample's prompt ids (what on-policy batches complete)."""

    base: Collator

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.base(features)
        batch["prompts"] = [list(f["input_ids"][: f["prompt_length"]]) for f in features]
        batch["prompt_weights"] = torch.tensor([float(f.get("weight", 1.0)) for f in features])
        return batch


def left_pad(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """([B, P] ids, [B, P] attention mask) with the prompts right-aligned, as batched generation needs."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        if prompt:
            ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[row, width - len(prompt) :] = 1
    return ids, mask


def completion_layout(
    sequences: torch.Tensor, prompt_mask: torch.Tensor, eos_id: int | None
) -> dict[str, torch.Tensor]:
    """Model inputs and next-token targets for generated ``sequences`` ([B, P + N], prompts left-padded).

    A completion's tokens run up to and including its first end-of-sequence; what ``generate`` pads
    after it is masked out. Targets sit on prediction positions (``target_ids[t]`` is the token at
    ``t + 1``), so the last prompt position predicts the first sampled token, as in training data.
    """
    prompt_width = prompt_mask.shape[1]
    generated = sequences[:, prompt_width:]
    if eos_id is None:
        real = torch.ones_like(generated, dtype=torch.bool)
    else:
        is_eos = (generated == eos_id).long()
        real = (is_eos.cumsum(dim=1) - is_eos) == 0  # nothing before it was an eos
    attention_mask = torch.cat([prompt_mask.to(sequences.device), real.long()], dim=1)
    # Positions as generate() computes them for left padding (padding gets 1, never attended).
    position_ids = (attention_mask.cumsum(dim=1) - 1).masked_fill(attention_mask == 0, 1)
    targets = torch.full_like(sequences, IGNORE_INDEX)
    targets[:, prompt_width - 1 : -1] = torch.where(real, generated, torch.full_like(generated, IGNORE_INDEX))
    return {
        "input_ids": sequences,
        "attention_mask": attention_mask,
        "position_ids": position_ids,
        "target_ids": targets,
    }


@dataclass
class OnPolicyStats:
    """What on-policy training cost: batches, generated tokens, generation vs. step seconds."""

    batches: int = 0
    on_policy_batches: int = 0
    generate_calls: int = 0
    generated_tokens: int = 0
    generation_s: float = 0.0
    step_s: float = 0.0
    logged: dict[str, float] = field(default_factory=dict)

    @property
    def generation_share(self) -> float:
        return self.generation_s / self.step_s if self.step_s > 0 else 0.0

    def describe(self) -> str:
        return (
            f"on-policy: {self.on_policy_batches} of {self.batches} training batches sampled "
            f"({self.generate_calls} generate calls, {self.generated_tokens} tokens); generation took "
            f"{self.generation_share:.0%} of the step time ({self.generation_s:.1f} s of {self.step_s:.1f} s)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "on_policy_batches": self.on_policy_batches,
            "generate_calls": self.generate_calls,
            "generated_tokens": self.generated_tokens,
            "generation_s": round(self.generation_s, 3),
            "step_s": round(self.step_s, 3),
            "generation_share": round(self.generation_share, 4),
        }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class OnPolicyBatcher:
    """Builds on-policy batches: one batched generation, one teacher forward over the result."""

    def __init__(
        self,
        config: OnPolicyConfig,
        teacher_model: Any | None,
        *,
        pad_id: int,
        eos_id: int | None,
        k: int,
        vocab_size: int,
        stats: OnPolicyStats | None = None,
        scorer: Any | None = None,
    ) -> None:
        """``teacher_model``: a local teacher (scores and, for seq_kd, samples); or ``scorer``: any
        callable with ``LiveTeacher``'s contract, e.g. a served teacher (``on_policy_served``)."""
        self.config = config
        self.teacher_model = teacher_model
        self.teacher = scorer or LiveTeacher(teacher_model, k=k, vocab_size=vocab_size, topk=True, hidden=False)
        self.pad_id = pad_id
        self.eos_id = eos_id
        self.stats = stats or OnPolicyStats()

    def sample(self, model: Any, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """One ``generate`` call for every prompt of the batch: (sequences [B, P + N], prompt mask [B, P])."""
        device = next(model.parameters()).device
        ids, mask = left_pad(prompts, self.pad_id)
        was_training = model.training
        model.eval()  # no dropout while sampling; gradient checkpointing off so the cache is used
        _sync(device)
        start = time.perf_counter()
        try:
            with torch.no_grad():
                sequences = model.generate(
                    input_ids=ids.to(device),
                    attention_mask=mask.to(device),
                    do_sample=True,
                    temperature=self.config.temperature,
                    top_k=0,
                    top_p=1.0,
                    max_new_tokens=self.config.max_new_tokens,
                    use_cache=True,
                    pad_token_id=self.pad_id,
                    eos_token_id=self.eos_id,
                )
        finally:
            if was_training:
                model.train()
        _sync(device)
        self.stats.generation_s += time.perf_counter() - start
        self.stats.generate_calls += 1
        return sequences, mask

    def batch(self, student: Any, prompts: list[list[int]], weights: torch.Tensor) -> dict[str, Any]:
        """The on-policy batch on the student's device: layout, targets, teacher top-k at the targets."""
        generator = self.teacher_model if self.config.seq_kd else student
        sequences, prompt_mask = self.sample(generator, prompts)
        device = next(student.parameters()).device
        layout = completion_layout(sequences.to(device), prompt_mask.to(device), self.eos_id)
        n_targets = int((layout["target_ids"] != IGNORE_INDEX).sum())
        self.stats.generated_tokens += n_targets
        teacher_ids, teacher_lps, _ = self.teacher(layout, device)
        weight_rows = weights.to(device=device, dtype=torch.float32).unsqueeze(1).expand_as(layout["target_ids"])
        return {
            **layout,
            "teacher_ids": teacher_ids,
            "teacher_logprobs": teacher_lps,
            "weights": weight_rows.contiguous(),
            "n_targets": n_targets,
        }


def sampled_inputs(logits: torch.Tensor, batch: dict[str, Any], num_items: float | None = None) -> LossInputs:
    """The loss inputs of an on-policy batch (:meth:`OnPolicyBatcher.batch`) for the student's logits on it."""
    return LossInputs(
        logits=logits,
        labels=batch["target_ids"],
        teacher_ids=batch["teacher_ids"],
        teacher_logprobs=batch["teacher_logprobs"],
        weights=batch["weights"],
        num_items=num_items,
    )


def divergence_only(loss: Loss[Any]) -> Loss[Any]:
    """The loss with its distillation weight at 1 (no cross-entropy on the student's own samples)."""
    if getattr(loss.config, "alpha", None) in (None, 1.0):
        return loss
    return type(loss)(loss.config.model_copy(update={"alpha": 1.0}))


class OnPolicyTrainer(DistillTrainer):
    """DistillTrainer that replaces a ``fraction`` of training micro-batches by on-policy ones."""

    def __init__(self, *args: Any, on_policy: OnPolicyBatcher, emit: EmitFn, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_policy = on_policy
        self.emit_event = emit
        self.on_policy_loss = divergence_only(self.distill_loss) if not on_policy.config.seq_kd else self.distill_loss
        self._step_key = (-1, 0)  # (global step, micro-batch index within it)

    @property
    def stats(self) -> OnPolicyStats:
        return self.on_policy.stats

    def draw(self) -> bool:
        """Whether this training micro-batch is on-policy: a pure function of (seed, step, micro-batch)."""
        step, micro = self._step_key
        step_now = self.state.global_step
        self._step_key = (step_now, micro + 1 if step == step_now else 0)
        fraction = self.on_policy.config.fraction
        if fraction <= 0:
            return False
        draw = random.Random(self.args.seed * 1_000_003 + step_now * 1_009 + self._step_key[1]).random()
        return draw < fraction

    def training_step(self, model: torch.nn.Module, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> torch.Tensor:
        start = time.perf_counter()
        out = super().training_step(model, inputs, *args, **kwargs)
        _sync(out.device)
        self.stats.step_s += time.perf_counter() - start
        self.stats.batches += 1
        return out

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        prompts, weights = (inputs.pop(key, None) for key in PROMPT_KEYS)
        if not model.training or prompts is None or not self.draw():
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        self.stats.on_policy_batches += 1
        student = self.accelerator.unwrap_model(model)
        batch = self.on_policy.batch(student, prompts, weights)
        outputs = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            position_ids=batch["position_ids"],
            use_cache=False,
        )
        # Every micro-batch of the step divides by its own target count; accumulation sums them.
        normaliser = max(batch["n_targets"], 1) * self.args.gradient_accumulation_steps
        loss = self.on_policy_loss(sampled_inputs(outputs.logits, batch, float(normaliser)))
        check_finite_loss(loss, self.state.global_step + 1, self.args.learning_rate)
        self.tokens_seen += int(batch["attention_mask"].sum())
        self.positions_seen += int(batch["attention_mask"].numel())
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        super().log(logs, *args, **kwargs)
        if "loss" in logs and self.is_world_process_zero() and self.stats.step_s > 0:
            step = self.state.global_step
            for key, value in (
                ("train/generation_share", self.stats.generation_share),
                ("train/on_policy_batches", float(self.stats.on_policy_batches)),
            ):
                self.emit_event({"type": "metric", "key": key, "value": value, "step": step, "context": "train"})
