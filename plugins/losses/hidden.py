"""``hidden_mse`` and ``hidden_cosine``: align student hidden layers with teacher hidden layers
(FitNets-style), one or many pairs.

**Layer map.** Indices are into the hidden states as transformers returns them
(``output_hidden_states=True``): 0 = embeddings output, i = output of block i, -1 = last.

- ``layer_map = "uniform"`` (the default): every student block i (1..L_s) -> teacher block
  round(i * L_t / L_s), so the last maps to the last (the usual choice for a student built from
  teacher layers);
- ``layer_map = { 2 = 4, 4 = 8 }``: explicit student -> teacher pairs;
- ``student_layer`` / ``teacher_layer`` set without a ``layer_map`` (or ``layer_map`` unset in
  Python with ``None``): the single pair ``student_layer -> teacher_layer`` (default last -> last),
  which was the default before the uniform map.

The per-pair terms are averaged. An index outside either model is refused before training with
exit 2 naming the layers (:meth:`prepare_models`, called by the trainer once both models are loaded).

When the widths differ, a learned linear projection per pair maps the student's hidden size onto the
teacher's; the trainer asks :meth:`trainable_module` for them and trains them with the student (they
are dropped on export). The ``hf`` trainer computes the mapped teacher hidden states once, at the
target positions, and stores them as float16 (``plugins/students/activation_store.py``); with
``student.teacher_activations = "live"`` the teacher runs on every batch instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

from pydantic import Field, model_validator

from stillhouse.kernel.errors import ConfigError, Location
from stillhouse.kernel.interfaces import LossInputs, TeacherSignal
from stillhouse.plugins.losses.base import MixConfig, MixedLoss, SelectedBatch

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch


class HiddenMseConfig(MixConfig):
    """No temperature: there is no softmax in this term. ``alpha`` weighs it against cross-entropy."""

    alpha: float = Field(
        0.5, ge=0, le=1, description="Weight of the hidden-state term; 1 - alpha weighs cross-entropy."
    )
    student_layer: int = Field(-1, description="Index into the student's hidden states (0 = embeddings, -1 = last).")
    teacher_layer: int = Field(-1, description="Index into the teacher's hidden states (0 = embeddings, -1 = last).")
    layer_map: dict[int, int] | Literal["uniform"] | None = Field(
        "uniform",
        description='Student -> teacher hidden-state index pairs, or "uniform" (the default: every student block '
        "to the proportional teacher block); None, or student_layer/teacher_layer set without a map: the "
        "single pair student_layer -> teacher_layer.",
    )

    @model_validator(mode="before")
    @classmethod
    def single_pair_when_layers_are_named(cls, data: Any) -> Any:
        """``student_layer``/``teacher_layer`` without a ``layer_map`` mean that one pair, not the uniform map."""
        if isinstance(data, dict) and "layer_map" not in data and ({"student_layer", "teacher_layer"} & data.keys()):
            return {**data, "layer_map": None}
        return data


def uniform_map(student_blocks: int, teacher_blocks: int) -> dict[int, int]:
    """Student block i (1..L_s) -> teacher block round(i * L_t / L_s); the last maps to the last.
    Models without blocks (hidden states = embeddings only) map embeddings to embeddings."""
    if student_blocks < 1 or teacher_blocks < 1:
        return {0: 0}
    return {i: max(1, round(i * teacher_blocks / student_blocks)) for i in range(1, student_blocks + 1)}


def check_index(index: int, blocks: int, who: str, field: str) -> None:
    """A hidden-state index must exist: -(L+1) <= i <= L for L blocks (L + 1 hidden states)."""
    if not -(blocks + 1) <= index <= blocks:
        raise ConfigError(
            f"{who} layer {index} does not exist: the {who} has {blocks} layers "
            f"(hidden-state indices 0..{blocks}, or -1..-{blocks + 1} from the end)",
            where=Location(field=field),
            hint="pick layers inside both models, or use layer_map = \"uniform\"",
        )


def model_blocks(model: Any) -> int:
    """Number of transformer blocks of a (possibly PEFT-wrapped) causal LM."""
    config = model.config
    return int(getattr(config, "num_hidden_layers", 0) or getattr(config, "n_layer", 0))


class HiddenMSE(MixedLoss[HiddenMseConfig]):
    name = "hidden_mse"
    description = (
        "Mean squared error between student and teacher hidden states (learned projection, optional "
        "layer map), plus cross-entropy."
    )
    Config = HiddenMseConfig
    requires: ClassVar[frozenset[TeacherSignal]] = frozenset({"teacher_hidden"})

    def __init__(self, config: HiddenMseConfig | None = None) -> None:
        super().__init__(config)
        self.projections: torch.nn.ModuleList | None = None
        self.pairs: list[tuple[int, int]] | None = self._static_pairs()

    def _static_pairs(self) -> list[tuple[int, int]] | None:
        layer_map = self.config.layer_map
        if layer_map is None:
            return [(self.config.student_layer, self.config.teacher_layer)]
        if isinstance(layer_map, dict):
            return sorted(layer_map.items())
        return None  # "uniform": needs the layer counts

    @property
    def projection(self) -> torch.nn.Linear | None:
        """The first pair's projection (the only one with the default single pair)."""
        return cast("torch.nn.Linear", self.projections[0]) if self.projections is not None else None

    def resolve(self, student_blocks: int, teacher_blocks: int) -> list[tuple[int, int]]:
        """The layer pairs for models with these block counts; ConfigError naming a layer that is out of range."""
        pairs = self._static_pairs() or sorted(uniform_map(student_blocks, teacher_blocks).items())
        field = f"train.loss_options.{'layer_map' if self.config.layer_map is not None else 'student_layer'}"
        for s, t in pairs:
            check_index(s, student_blocks, "student", field)
            check_index(t, teacher_blocks, "teacher", field)
        self.pairs = pairs
        return pairs

    def prepare_models(self, student: Any, teacher: Any) -> None:
        """Called by the trainer once both models are loaded, before :meth:`trainable_module`."""
        self.resolve(model_blocks(student), model_blocks(teacher))

    def trainable_module(self, student_width: int, teacher_width: int) -> torch.nn.Module | None:
        """Projections student -> teacher width (one ``nn.Linear`` per pair), or None when widths match."""
        if student_width == teacher_width:
            self.projections = None
            return None
        from torch import nn

        if self.pairs is None:
            raise ValueError('layer_map = "uniform" needs prepare_models(student, teacher) before trainable_module')
        self.projections = nn.ModuleList(nn.Linear(student_width, teacher_width, bias=False) for _ in self.pairs)
        return self.projections[0] if len(self.projections) == 1 else self.projections

    def per_token(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """[N] distance between [N, D] student (projected) and teacher states."""
        return (student - teacher).pow(2).mean(-1)

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        batch = SelectedBatch(inputs)
        term = None
        if self.config.alpha > 0:
            if not inputs.student_hidden or not inputs.teacher_hidden:
                raise ValueError(f"loss '{self.name}' needs student_hidden and teacher_hidden in LossInputs")
            pairs = self.pairs or self.resolve(len(inputs.student_hidden) - 1, len(inputs.teacher_hidden) - 1)
            total = None
            for n, (s, t) in enumerate(pairs):
                student = inputs.student_hidden[s][batch.mask]
                teacher = inputs.teacher_hidden[t][batch.mask].float().detach()
                if self.projections is not None:
                    proj = cast("torch.nn.Linear", self.projections[n])
                    student = proj(student.to(proj.weight.dtype))
                if student.shape[-1] != teacher.shape[-1]:
                    raise ValueError(
                        f"hidden widths differ (student {student.shape[-1]}, teacher {teacher.shape[-1]}) "
                        "and no projection was built: call trainable_module(student_width, teacher_width) first"
                    )
                value = batch.reduce(self.per_token(student.float(), teacher))
                total = value if total is None else total + value
            assert total is not None
            term = total / len(pairs)
        return self.mix(batch, term)


class HiddenCosine(HiddenMSE):
    name = "hidden_cosine"
    description = (
        "1 - cosine similarity between student and teacher hidden states (learned projection, optional "
        "layer map), plus cross-entropy: insensitive to the scale of the states."
    )

    def per_token(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        return 1 - F.cosine_similarity(student, teacher, dim=-1, eps=1e-8)
