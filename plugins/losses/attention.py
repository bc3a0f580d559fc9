"""``attention_relation``: MiniLMv2-style self-attention relation transfer (Wang et al., 2021).

For a chosen student block and teacher block, take the attention inputs Q, K and V (the outputs of
``q_proj``, ``k_proj``, ``v_proj``), split each into R *relation heads* of width d/R (R is the same for
both models, so the models' own head counts and widths may differ), and form the scaled dot-product
relation of every position with every earlier one:

    R_X[h, i, :] = softmax_j( X_h[i] . X_h[j] / sqrt(d_h) ),   j <= i, same packed sample, X in {Q, K, V}

The term is the KL divergence from teacher to student relation rows, ``KL(R^T_X[h, i] || R^S_X[h, i])``,
averaged over relation heads, over Q-Q, K-K, V-V, and over the layer pairs, summed over the query
positions that carry loss (``labels != -100``: prompt and padding rows are left out as queries; they
still serve as keys) and divided by the same normaliser as every loss. The teacher side is detached:
gradients reach only the student.

Layers are *block* indices (0 = first block, -1 = last), ``layer_map = { -1 = -1 }`` by default
(last to last, as in MiniLMv2 for the largest teacher gap). ``relation_heads`` defaults to the
largest count up to the student's attention heads that divides the Q, K and V widths of both models
at every mapped block (grouped-query attention makes K/V narrower than Q); a value you set must divide
them; a map naming a block that does not exist or widths that cannot be split is refused before
training (exit 2, naming the layers).

The relations come from forward hooks on the mapped blocks' projections, installed by
:meth:`AttentionRelation.prepare_models` (the trainer calls it once both models are loaded). The
``hf`` trainer runs the teacher once over the data and stores the mapped blocks' Q/K/V as float16
(``plugins/students/activation_store.py``), then sets the teacher capture's values from the store on
each batch; ``student.teacher_activations = "live"`` runs the teacher per batch instead.

**Gradient checkpointing** works as transformers enables it (non-reentrant ``torch.utils.checkpoint``):
the student hooks keep the Q/K/V of the first forward, which carry their autograd history; the
backward pass recomputes the block's saved activations and the relation gradient flows through them
(the hooks fire again during the recomputation; what they keep then is the same values and unused).
Reentrant checkpointing runs the first forward without autograd, so the relation term would lose its
gradient: the loss refuses it (ValueError) instead of training on cross-entropy alone.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from stillhouse.kernel.errors import ConfigError, Location
from stillhouse.kernel.interfaces import LossInputs, TeacherSignal
from stillhouse.plugins.losses.base import MixConfig, MixedLoss, SelectedBatch

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

PROJECTIONS = ("q_proj", "k_proj", "v_proj")
FIELD = "train.loss_options.layer_map"


class AttentionRelationConfig(MixConfig):
    alpha: float = Field(0.5, ge=0, le=1, description="Weight of the relation term; 1 - alpha weighs cross-entropy.")
    layer_map: dict[int, int] = Field(
        default_factory=lambda: {-1: -1},
        description="Student block -> teacher block (0 = first, -1 = last) whose Q/K/V relations are matched.",
    )
    relation_heads: int | None = Field(
        None, ge=1, description="Relation heads R (default: the student's attention head count)."
    )


def causal_segments(position_ids: torch.Tensor) -> torch.Tensor:
    """[B, L, L] bool: key j is visible from query i (j <= i, same packed sample by position ids)."""
    import torch

    segment = torch.cumsum((position_ids == 0).long(), dim=-1)
    length = position_ids.shape[-1]
    causal = torch.ones(length, length, dtype=torch.bool, device=position_ids.device).tril()
    return causal.unsqueeze(0) & (segment.unsqueeze(-1) == segment.unsqueeze(-2))


def relation_log_probs(x: torch.Tensor, heads: int, visible: torch.Tensor) -> torch.Tensor:
    """[B, R, L, L] log relation rows of [B, L, D] states split into R heads (module doc); 0 where hidden."""
    import torch

    batch, length, width = x.shape
    d = width // heads
    xh = x.float().reshape(batch, length, heads, d).transpose(1, 2)  # [B, R, L, d]
    scores = xh @ xh.transpose(-1, -2) / math.sqrt(d)
    mask = visible.unsqueeze(1)
    scores = scores.masked_fill(~mask, torch.finfo(torch.float32).min)
    return torch.log_softmax(scores, dim=-1).masked_fill(~mask, 0.0)


def relation_kl(student: torch.Tensor, teacher: torch.Tensor, heads: int, visible: torch.Tensor) -> torch.Tensor:
    """[B, L] KL(teacher relation || student relation) per query position, averaged over relation heads."""
    log_s = relation_log_probs(student, heads, visible)
    log_t = relation_log_probs(teacher.detach(), heads, visible)
    kl = (log_t.exp() * (log_t - log_s) * visible.unsqueeze(1)).sum(-1)  # [B, R, L]
    return kl.mean(1)


def attention_blocks(model: Any) -> list[Any]:
    """The transformer blocks of a causal LM whose attention has q_proj/k_proj/v_proj."""
    from torch import nn

    blocks = int(getattr(model.config, "num_hidden_layers", 0))
    for _, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == blocks and blocks:
            attn = getattr(module[0], "self_attn", None)
            if attn is not None and all(hasattr(attn, p) for p in PROJECTIONS):
                return list(module)
    raise ConfigError(
        f"loss 'attention_relation' needs self-attention with {', '.join(PROJECTIONS)} "
        f"(Llama, Qwen, Mistral, SmolLM2 style); {type(model).__name__} has none",
        where=Location(field="train.loss"),
        hint="use hidden_mse / hidden_cosine for this architecture",
    )


def projection_width(module: Any) -> int:
    base = getattr(module, "base_layer", module)  # a LoRA-wrapped Linear
    return int(base.out_features)


def widths_at(
    s: int, t: int, student_widths: list[tuple[int, int, int]], teacher_widths: list[tuple[int, int, int]]
) -> tuple[int, ...]:
    """The q/k/v widths at a mapped pair (none when an index is out of range: resolve reports it)."""
    if not (-len(student_widths) <= s < len(student_widths) and -len(teacher_widths) <= t < len(teacher_widths)):
        return ()
    return (*student_widths[s], *teacher_widths[t])


def default_heads(student_heads: int, widths: list[int]) -> int:
    """The most relation heads, up to the student's attention head count, that divide every width
    (grouped-query attention makes K/V narrower than Q: SmolLM2-135M has 576 / 192 / 192 -> 8)."""
    return next(r for r in range(max(student_heads, 1), 0, -1) if all(w % r == 0 for w in widths))


class Capture:
    """Forward hooks that keep the Q/K/V outputs of some blocks, and the position ids of the last call."""

    def __init__(self, model: Any, blocks: list[int]) -> None:
        self.values: dict[tuple[int, str], torch.Tensor] = {}
        self.position_ids: torch.Tensor | None = None
        self.handles: list[Any] = []
        layers = attention_blocks(model)
        for index in blocks:
            attn = layers[index].self_attn
            for name in PROJECTIONS:
                self.handles.append(getattr(attn, name).register_forward_hook(self._keep(index, name)))
        self.handles.append(model.register_forward_pre_hook(self._keep_positions, with_kwargs=True))

    def _keep(self, index: int, name: str) -> Any:
        def hook(_module: Any, _args: Any, output: torch.Tensor) -> None:
            self.values[(index, name)] = output

        return hook

    def _keep_positions(self, _module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        self.position_ids = kwargs.get("position_ids")

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


class AttentionRelation(MixedLoss[AttentionRelationConfig]):
    name = "attention_relation"
    description = (
        "MiniLMv2 self-attention relation transfer (Q-Q, K-K, V-V, relation heads) from a local teacher, "
        "plus cross-entropy."
    )
    Config = AttentionRelationConfig
    requires: ClassVar[frozenset[TeacherSignal]] = frozenset({"teacher_hidden"})

    def __init__(self, config: AttentionRelationConfig | None = None) -> None:
        super().__init__(config)
        self.pairs: list[tuple[int, int]] = []
        self.heads = 0
        self.student_capture: Capture | None = None
        self.teacher_capture: Capture | None = None

    def resolve(self, student_widths: list[tuple[int, int, int]], teacher_widths: list[tuple[int, int, int]],
                student_heads: int) -> list[tuple[int, int]]:
        """Check the map against per-block (q, k, v) widths; ConfigError naming the layers that do not fit."""
        heads = self.config.relation_heads or default_heads(
            student_heads, [w for s, t in self.config.layer_map.items() for w in widths_at(s, t, student_widths, teacher_widths)]
        )
        pairs = []
        for s, t in sorted(self.config.layer_map.items()):
            for index, widths, who in ((s, student_widths, "student"), (t, teacher_widths, "teacher")):
                if not -len(widths) <= index < len(widths):
                    raise ConfigError(
                        f"attention_relation: {who} layer {index} (map {s} -> {t}) does not exist: the {who} has "
                        f"{len(widths)} layers (0..{len(widths) - 1}, or -1..-{len(widths)})",
                        where=Location(field=FIELD),
                        hint="map existing blocks, e.g. layer_map = { -1 = -1 }",
                    )
            s_idx, t_idx = s % len(student_widths), t % len(teacher_widths)
            bad = [w for w in (*student_widths[s_idx], *teacher_widths[t_idx]) if w % heads]
            if bad:
                raise ConfigError(
                    f"attention_relation: student layer {s_idx} (q/k/v widths {student_widths[s_idx]}) and teacher "
                    f"layer {t_idx} (q/k/v widths {teacher_widths[t_idx]}) cannot be split into {heads} relation heads",
                    where=Location(field="train.loss_options.relation_heads"),
                    hint="set relation_heads to a common divisor of those widths",
                )
            pairs.append((s_idx, t_idx))
        self.pairs, self.heads = sorted(pairs), heads
        return pairs

    def prepare_models(self, student: Any, teacher: Any) -> None:
        """Check the layer map against both models and install the Q/K/V hooks (before training)."""

        def widths(model: Any) -> list[tuple[int, int, int]]:
            return [
                (projection_width(b.self_attn.q_proj), projection_width(b.self_attn.k_proj),
                 projection_width(b.self_attn.v_proj))
                for b in attention_blocks(model)
            ]

        self.resolve(widths(student), widths(teacher), int(student.config.num_attention_heads))
        for capture in (self.student_capture, self.teacher_capture):
            if capture is not None:
                capture.remove()
        self.student_capture = Capture(student, [s for s, _ in self.pairs])
        self.teacher_capture = Capture(teacher, [t for _, t in self.pairs])

    def term(self, student: dict[tuple[int, str], torch.Tensor], teacher: dict[tuple[int, str], torch.Tensor],
             visible: torch.Tensor) -> torch.Tensor:
        """[B, L] relation KL per query position, averaged over Q/K/V and the layer pairs."""
        total = None
        for s, t in self.pairs:
            for name in PROJECTIONS:
                value = relation_kl(student[(s, name)], teacher[(t, name)], self.heads, visible)
                total = value if total is None else total + value
        assert total is not None
        return total / (len(self.pairs) * len(PROJECTIONS))

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        import torch

        batch = SelectedBatch(inputs)
        term = None
        if self.config.alpha > 0:
            if self.student_capture is None or self.teacher_capture is None:
                raise ValueError("loss 'attention_relation' needs prepare_models(student, teacher) before training")
            labels = inputs.labels
            positions = self.student_capture.position_ids
            if positions is None:
                positions = torch.arange(labels.shape[-1], device=labels.device).expand_as(labels)
            visible = causal_segments(positions.to(labels.device))
            student_values = self.student_capture.values
            if inputs.logits.requires_grad and not any(v.requires_grad for v in student_values.values()):
                raise ValueError(
                    "attention_relation: the student's Q/K/V were computed without autograd (reentrant gradient "
                    "checkpointing?), so the relation term would have no gradient; enable checkpointing with "
                    'gradient_checkpointing_kwargs={"use_reentrant": False} (the trainer\'s default)'
                )
            per_position = self.term(student_values, self.teacher_capture.values, visible)
            term = batch.reduce(per_position[batch.mask])
        return self.mix(batch, term)
