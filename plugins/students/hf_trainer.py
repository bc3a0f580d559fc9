"""The transformers ``Trainer`` subclass that calls a Loss plugin, and the callbacks that turn its
logs into run events and honour a stop request.

Imported only when training starts (it imports torch and transformers at module level).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from stillhouse.kernel.errors import Location, StageError
from stillhouse.kernel.interfaces import IGNORE_INDEX, EmitFn, Loss, LossInputs
from stillhouse.plugins.students.teacher import LiveTeacher

BATCH_ONLY_KEYS = (
    "target_ids",
    "weights",
    "teacher_ids",
    "teacher_logprobs",
    "teacher_activations",
    "n_real",
    "n_positions",
)


class DistillTrainer(Trainer):
    """Trainer whose loss is a Stillhouse Loss plugin on position-aligned LossInputs.

    The loss is a token sum divided by the number of target tokens in the whole optimiser step
    (all gradient-accumulation micro-batches, all processes), so packing and accumulation weigh
    every token equally; hence ``loss_is_scaled_for_ga``.
    """

    loss_is_scaled_for_ga = True

    def __init__(
        self,
        *args: Any,
        distill_loss: Loss,
        live_teacher: LiveTeacher | None = None,
        teacher_blocks: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.distill_loss = distill_loss
        self.live_teacher = live_teacher
        self.needs_hidden = "teacher_hidden" in distill_loss.requires
        # the LM head at the target positions only, where the loss reads nothing else and the model
        # takes ``logits_to_keep`` (transformers' causal LMs; a PEFT or DDP wrapper passes it on)
        self.keep_targets_only = bool(getattr(distill_loss, "target_logits_only", False)) and not self.needs_hidden
        self.teacher_blocks = teacher_blocks
        self.tokens_seen = 0  # non-padding input tokens trained on (this process)
        self.positions_seen = 0  # input positions including padding (this process)

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device) -> torch.Tensor | None:
        if not batch_samples or "target_ids" not in batch_samples[0]:
            return None
        count = sum((b["target_ids"] != IGNORE_INDEX).sum() for b in batch_samples).to(device)
        if self.args.world_size > 1:
            count = self.accelerator.gather(count.reshape(1)).sum()
        # DDP averages gradients over processes, so each process divides by the global count / world.
        return count.float() / max(self.args.world_size, 1)

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        extra = {key: inputs.pop(key) for key in BATCH_ONLY_KEYS if key in inputs}
        teacher_ids, teacher_lps, teacher_hidden = extra.get("teacher_ids"), extra.get("teacher_logprobs"), None
        stored = extra.get("teacher_activations")
        if stored is not None:  # hidden/attention signals from the activation store: no teacher forward
            from stillhouse.plugins.students.activation_store import apply_stored

            teacher_hidden = apply_stored(self.distill_loss, stored, self.teacher_blocks)
        elif self.live_teacher is not None:
            teacher_ids, teacher_lps, teacher_hidden = self.live_teacher(
                {**inputs, "target_ids": extra["target_ids"]}, extra["target_ids"].device
            )
        labels, weights = extra["target_ids"], extra.get("weights")
        head = output_head(model) if self.keep_targets_only else None
        targets = labels != IGNORE_INDEX
        if head is not None and bool(targets.any()):
            # the LM head runs on the target positions only, as one row: [1, N, V] logits; the loss
            # sees those N positions with their labels, weights and teacher slots
            labels, weights, teacher_ids, teacher_lps = (
                None if t is None else t[targets].unsqueeze(0) for t in (labels, weights, teacher_ids, teacher_lps)
            )
            with head_at(head, targets):
                outputs = model(**inputs, use_cache=False, output_hidden_states=self.needs_hidden)
        else:
            outputs = model(**inputs, use_cache=False, output_hidden_states=self.needs_hidden)
        loss = self.distill_loss(
            LossInputs(
                logits=outputs.logits,
                labels=labels,
                teacher_ids=teacher_ids,
                teacher_logprobs=teacher_lps,
                student_hidden=outputs.hidden_states if self.needs_hidden else None,
                teacher_hidden=teacher_hidden,
                weights=weights,
                num_items=num_items_in_batch if model.training else None,
            )
        )
        if model.training:
            check_finite_loss(loss, self.state.global_step + 1, self.args.learning_rate)
            self.tokens_seen += int(extra["n_real"])
            self.positions_seen += int(extra["n_positions"])
        return (loss, outputs) if return_outputs else loss


def output_head(model: torch.nn.Module) -> torch.nn.Module | None:
    """The LM head (``get_output_embeddings()``) of the transformers model inside DDP/PEFT wrappers,
    or None when there is none to hook."""
    inner: Any = model
    for _ in range(4):  # DDP, then PEFT, around the transformers model
        unwrap = getattr(inner, "get_base_model", None)
        wrapped = getattr(inner, "module", None) or (unwrap() if callable(unwrap) else None)
        if wrapped is None or wrapped is inner:
            break
        inner = wrapped
    getter = getattr(inner, "get_output_embeddings", None)
    head = getter() if getter is not None else None
    return head if isinstance(head, torch.nn.Module) else None


@contextmanager
def head_at(head: torch.nn.Module, positions: torch.Tensor) -> Iterator[None]:
    """While the model runs, feed its LM head the hidden states at ``positions`` ([B, L] bool) only,
    gathered into one row. The model's own forward still calls the head (through DDP and PEFT, with
    whatever it applies after the head, e.g. logit soft-capping), on N rows instead of B x L; a head
    input of another shape (a generation step) is left alone."""

    def gather(_module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        hidden = args[0]
        if hidden.dim() != 3 or tuple(hidden.shape[:2]) != tuple(positions.shape):
            return None
        return (hidden[positions.to(hidden.device)].unsqueeze(0), *args[1:])

    handle = head.register_forward_pre_hook(gather)
    try:
        yield
    finally:
        handle.remove()


def check_finite_loss(loss: torch.Tensor, step: int, learning_rate: float) -> None:
    """Stop training at the first NaN/inf loss, before the optimiser writes it into the weights
    (and before a checkpoint or the exported student could hold NaN weights)."""
    if not bool(torch.isfinite(loss.detach()).all()):
        raise StageError(
            f"the training loss became {float(loss.detach().float().reshape(-1)[0])} at step {step}: training diverged",
            where=Location(field="train.learning_rate"),
            hint=f"lower train.learning_rate (now {learning_rate:g}) and train again: a new run with "
            "--set train.learning_rate=..., or --resume RUN_ID --stage train after deleting its checkpoints/",
        )


def check_finite_weights(model: torch.nn.Module) -> None:
    """A last step can turn finite weights into NaN without a later loss to show it."""
    for name, param in model.named_parameters():
        if not bool(torch.isfinite(param.detach()).all()):
            raise StageError(
                f"the trained student has NaN/inf weights ({name}): training diverged",
                where=Location(field="train.learning_rate"),
                hint="lower train.learning_rate and train again; no student was saved",
            )


class EventsCallback(TrainerCallback):
    """Trainer logs -> ``metric`` events; steps -> ``progress`` events (main process only)."""

    def __init__(self, emit: EmitFn, trainer_ref: list[DistillTrainer], *, progress_every_s: float = 1.0) -> None:
        self.emit = emit
        self.trainer_ref = trainer_ref
        self.progress_every_s = progress_every_s
        self._last_progress = 0.0
        self._last_log_time = time.perf_counter()
        self._last_log_tokens = 0

    def _metric(self, key: str, value: float, step: int, context: str) -> None:
        self.emit({"type": "metric", "key": key, "value": float(value), "step": step, "context": context})

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        self._last_log_time = time.perf_counter()
        self._last_log_tokens = self.trainer_ref[0].tokens_seen

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        now = time.monotonic()
        last = state.global_step >= state.max_steps
        if last or state.global_step == 1:
            control.should_log = True  # a loss curve has its first and last point, however short the run
        if state.is_world_process_zero and (last or now - self._last_progress >= self.progress_every_s):
            self._last_progress = now
            self.emit({"type": "progress", "stage": "train", "done": state.global_step, "total": state.max_steps})

    def on_log(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs: dict | None = None, **kw: Any
    ) -> None:
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        step = state.global_step
        self._metric("train/loss", logs["loss"], step, "train")
        if "learning_rate" in logs:
            self._metric("train/lr", logs["learning_rate"], step, "train")
        if logs.get("grad_norm") is not None:
            self._metric("train/grad_norm", logs["grad_norm"], step, "train")
        now = time.perf_counter()
        tokens = self.trainer_ref[0].tokens_seen
        if now > self._last_log_time:
            # Local count x processes: every process trains on batches of the same size class.
            rate = (tokens - self._last_log_tokens) * max(args.world_size, 1) / (now - self._last_log_time)
            self._metric("train/tokens_per_s", rate, step, "train")
        self._last_log_time, self._last_log_tokens = now, tokens

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict | None = None,
        **kw: Any,
    ) -> None:
        if state.is_world_process_zero and metrics and "eval_loss" in metrics:
            self._metric("eval/loss", metrics["eval_loss"], state.global_step, "validation")


class StopCallback(TrainerCallback):
    """A stop request (Ctrl-C in the CLI, the TUI's stop) saves a checkpoint and ends training cleanly."""

    def __init__(self, should_stop: Any) -> None:
        self.should_stop = should_stop
        self.stopped = False

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        if self.should_stop():
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True
