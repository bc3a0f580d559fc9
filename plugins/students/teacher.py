"""The teacher's side of logit distillation: which teacher, whether its vocabulary is the student's,
and its top-k log-probs (or hidden states) on a batch of student token sequences.

The teacher reads the *student's* token ids (the same chat-templated sequence), which is what makes
per-position distributions comparable; that requires the two tokenizers to be the same vocabulary,
checked before anything trains.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stillhouse.kernel.errors import Location, ModelError
from stillhouse.kernel.interfaces import IGNORE_INDEX, TeacherConfig
from stillhouse.plugins.teachers.config import LocalModelConfig

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

SIGNALS = frozenset({"teacher_logprobs", "teacher_hidden"})


def local_teacher_spec(teacher: TeacherConfig | None) -> str | None:
    """``hf/<spec>`` -> ``<spec>`` (a hub id, folder or .gguf); None for API teachers."""
    if teacher is not None and teacher.model.startswith("hf/"):
        return teacher.model[3:]
    return None


def vocab_mismatch(student_tokenizer: Any, teacher_tokenizer: Any) -> str | None:
    """Why two tokenizers do not share a vocabulary, or None when every token maps to the same id."""
    student_vocab = student_tokenizer.get_vocab()
    teacher_vocab = teacher_tokenizer.get_vocab()
    if student_vocab == teacher_vocab:
        return None
    differing = sum(1 for tok, idx in student_vocab.items() if teacher_vocab.get(tok) != idx)
    return (
        f"student vocabulary has {len(student_vocab)} tokens, teacher {len(teacher_vocab)}; "
        f"{differing} student tokens are missing from the teacher or have another id"
    )


def require_shared_vocab(
    student_tokenizer: Any, teacher_tokenizer: Any, *, loss: str, teacher: str, student: str
) -> None:
    problem = vocab_mismatch(student_tokenizer, teacher_tokenizer)
    if problem is None:
        return
    raise ModelError(
        f"loss '{loss}' compares teacher and student token by token, but teacher '{teacher}' and student "
        f"'{student}' do not share a tokenizer: {problem}",
        where=Location(field="train.loss"),
        hint='use train.loss = "uld" (Universal Logit Distillation: the teacher\'s top-k over its own tokens, '
        'aligned by characters), train.loss = "sft" (the teacher\'s text only), or a student from the teacher\'s '
        "model family (same tokenizer)",
        title="Teacher and student vocabularies differ",
    )


def load_teacher(teacher: TeacherConfig) -> tuple[Any, Any]:
    """(model, tokenizer) of a local ``hf/`` teacher, in eval mode, gradients off; its dtype and
    device from the teacher's local-model options when its backend has them."""
    from stillhouse.plugins.hf_models import load_causal_lm

    spec = local_teacher_spec(teacher)
    assert spec is not None
    local = teacher if isinstance(teacher, LocalModelConfig) else LocalModelConfig()
    model, tokenizer = load_causal_lm(spec, dtype=local.dtype, device=local.device)
    model.requires_grad_(False)
    return model, tokenizer


def forward(model: Any, batch: dict[str, Any], *, hidden: bool = False) -> Any:
    """Run a causal LM on a batch built by ``batching.Collator`` (packed or padded)."""
    import torch

    device = next(model.parameters()).device
    kwargs: dict[str, Any] = {
        "input_ids": batch["input_ids"].to(device),
        "position_ids": batch["position_ids"].to(device),
        "use_cache": False,  # a cache would disable the packed-sequence mask
    }
    if "attention_mask" in batch:
        kwargs["attention_mask"] = batch["attention_mask"].to(device)
    with torch.no_grad():
        return model(**kwargs, output_hidden_states=hidden)


def topk_at_targets(
    logits: torch.Tensor, target_ids: torch.Tensor, k: int, vocab_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k ids and full-vocabulary log-probs at the target positions, row-major: ([N, k], [N, k]).

    Logits beyond the tokenizer's vocabulary (embedding rows padded for speed) are not tokens.
    """
    import torch

    mask = (target_ids != IGNORE_INDEX).to(logits.device)
    selected = logits[mask][:, :vocab_size].float()
    logprobs = torch.log_softmax(selected, dim=-1)
    values, ids = torch.topk(logprobs, min(k, vocab_size), dim=-1)
    return ids, values


class LiveTeacher:
    """Teacher signals computed on each batch: top-k at the targets and/or hidden states.

    Used for ``hidden_mse`` (hidden states are too large to store) and when the student config asks
    for ``teacher_signals = "live"`` (the baseline the top-k store is measured against).
    """

    def __init__(self, model: Any, *, k: int, vocab_size: int, topk: bool, hidden: bool) -> None:
        self.model = model
        self.k = k
        self.vocab_size = vocab_size
        self.topk = topk
        self.hidden = hidden

    def __call__(self, batch: dict[str, Any], device: Any) -> tuple[Any, Any, Any]:
        """(teacher_ids [R, W, k] | None, teacher_logprobs [R, W, k] | None, hidden_states | None)."""
        import torch

        out = forward(self.model, batch, hidden=self.hidden)
        ids = lps = None
        if self.topk:
            target_ids = batch["target_ids"]
            top_ids, top_lps = topk_at_targets(out.logits, target_ids, self.k, self.vocab_size)
            shape = (*target_ids.shape, top_ids.shape[-1])
            ids = torch.full(shape, -1, dtype=torch.int32, device=device)
            lps = torch.full(shape, float("-inf"), dtype=torch.float32, device=device)
            mask = (target_ids != IGNORE_INDEX).to(device)
            ids[mask] = top_ids.to(device=device, dtype=torch.int32)
            lps[mask] = top_lps.to(device)
        hidden = tuple(h.to(device) for h in out.hidden_states) if self.hidden else None
        return ids, lps, hidden
