"""The plugin interfaces: what a task type, teacher, student trainer, loss, evaluator and reporter is.

Plugins subclass one of these ABCs, set ``name`` (unique per kind) and, where they take options, a
pydantic ``Config`` model, and hand the class to the kernel through a ``register_*`` hook. The kernel
instantiates a plugin with its validated config: ``Plugin(config)``. The ABCs are generic in their
config type, so ``class MyLoss(Loss[MyConfig])`` types ``self.config`` as ``MyConfig``.

The data that flows between stages is plain dataclasses defined here, so plugins of different
authors agree on them. This module imports neither torch nor transformers: heavy imports belong in
the plugins' methods.
"""

from __future__ import annotations

import math
import statistics
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    ClassVar,
    Generic,
    Literal,
    Protocol,
    TypeAlias,
    cast,
    get_args,
    get_origin,
)

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator
from typing_extensions import TypeVar

if TYPE_CHECKING:  # pragma: no cover - typing only: the kernel never imports torch at run time
    import torch

Message = dict[str, str]
"""A chat message: ``{"role": "system" | "user" | "assistant", "content": "..."}``."""

Event = dict[str, Any]
"""One line of a run's ``events.jsonl`` (see ``kernel.runs``)."""

EmitFn = Callable[[Event], None]

Role = Literal["teacher", "baseline", "student"]
"""A model evaluated side by side: the teacher, the untouched student, the distilled student."""

ROLES: tuple[Role, ...] = ("teacher", "baseline", "student")

EvalRole: TypeAlias = Role | Literal["model"]
"""The role of a model under evaluation: a :data:`Role` of a pipeline run, or ``"model"`` for a
model evaluated alone by ``still eval``. (``evaluate.roles`` accepts only the three Roles, so there
are no third-party roles.)"""

Dtype = Literal["auto", "float32", "bfloat16", "float16"]
"""Torch dtype of a local model's weights; auto: bfloat16 on a GPU that supports it, else float32."""

Device = Literal["auto", "cpu", "cuda", "mps"] | Annotated[str, StringConstraints(pattern=r"^cuda:\d+$")]
"""Where a local model runs; auto: cuda when available, else cpu. ``cuda:N`` picks one GPU."""


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, never silently ignored; numbers are
    finite (``inf`` epochs or a ``nan`` learning rate would only fail later, or train NaN weights);
    a yes/no option takes ``true`` or ``false`` only (the string "false" is not false)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_booleans(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or info.field_name is None:
            return value
        field = cls.model_fields.get(info.field_name)
        if field is None:
            return value
        options = get_args(field.annotation) or (field.annotation,)
        if bool not in options:
            return value
        literals = {a for o in options if get_origin(o) is Literal for a in get_args(o)}
        if value in literals or any(o in (str, int, float) for o in options):
            return value
        allowed = ", ".join(["true", "false", *(f'"{x}"' for x in sorted(map(str, literals)))])
        raise ValueError(f"expected {allowed}; got {value!r} (write true or false without quotes)")


class EmptyConfig(StrictModel):
    """Config of a plugin that takes no options."""


# --------------------------------------------------------------------------------------------
# Data records that flow between stages
# --------------------------------------------------------------------------------------------


@dataclass
class Example:
    """One row of a task dataset after field mapping.

    ``inputs`` holds the task's input fields (e.g. premise, hypothesis); ``reference`` the gold
    answer when the data has one (a label, a list of answer spans, a number, a summary, a reply).
    ``source`` is ``"file:line"`` so any later problem can point back at the row.
    """

    id: str
    split: str
    inputs: dict[str, Any]
    reference: Any = None
    source: str = ""


@dataclass
class Parsed:
    """A model's answer as the task type understood it.

    ``answer`` is the normalised answer (label, number, span, text) or None when parsing failed, in
    which case ``error`` says why. ``rationale`` is the reasoning the model gave, if any.
    """

    answer: Any = None
    rationale: str | None = None
    error: str | None = None
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None and self.answer is not None


@dataclass
class Verdict:
    """The filter's decision on one teacher answer: accepted, and why (a short reason code)."""

    accepted: bool
    reason: str = "ok"
    confidence: float | None = None
    detail: str | None = None  # what was measured against what limit, e.g. "132 words > max_words 120"


@dataclass
class TrainPair:
    """One supervised target for the student: the prompt messages and the text to learn."""

    sample_id: str
    messages: list[Message]
    target: str
    weight: float = 1.0


@dataclass
class TeacherRequest:
    """A prompt for the teacher. Sampling parameters come from the teacher's config."""

    sample_id: str
    messages: list[Message]


@dataclass
class TokenLogprob:
    """One generated token with its log-probability and the top alternatives, if exposed."""

    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Completion:
    text: str
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] | None = None


@dataclass
class TeacherResult:
    """The outcome of one request: ``samples`` completions, or an error that says why not."""

    sample_id: str
    model: str
    completions: list[Completion] = field(default_factory=list)
    cache_key: str = ""
    cache_hit: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    latency_ms: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.completions)


@dataclass
class Estimate:
    """What a generation would cost, computed without calling anything (``--dry-run``)."""

    calls: int
    cached: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    note: str = ""


@dataclass
class Answer:
    """A model's reply during evaluation, with what it cost to get."""

    text: str
    latency_ms: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    error: str | None = None


@dataclass
class Metric:
    """One measured number. ``value`` None means it could not be measured: ``reason`` says why.

    Never report a metric you did not measure as 0.
    """

    name: str
    value: float | None
    n: int = 0
    reason: str | None = None
    higher_is_better: bool | None = True
    unit: str = ""
    low: float | None = None
    """Lower end of ``value``'s interval (for a timed median: its 95% distribution-free CI)."""
    high: float | None = None
    """Upper end of that interval; None when the metric has no interval."""


# --------------------------------------------------------------------------------------------
# Plugin base
# --------------------------------------------------------------------------------------------


ConfigT = TypeVar("ConfigT", bound=BaseModel, default=EmptyConfig)
"""A plugin's own Config type: ``self.config`` of a ``Plugin[ConfigT]``."""


class Plugin(ABC, Generic[ConfigT]):  # noqa: B024 - the common base of the plugin ABCs; nothing abstract of its own
    """Common base: a name unique within its kind, a description, and a Config model.

    The type parameter is the plugin's Config: ``class Sft(Loss[SftConfig])`` types ``self.config``
    as ``SftConfig`` and sets ``Config = SftConfig`` (the model the kernel validates the options
    with) unless the class sets ``Config`` itself, which must then be a subclass of the parameter.
    """

    kind: ClassVar[str] = "plugin"
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel]] = EmptyConfig
    config: ConfigT

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = _declared_config(cls)
        if declared is None:
            return
        if "Config" not in cls.__dict__ and declared in _own_parameters(cls):
            cls.Config = declared
        if not issubclass(cls.Config, declared):
            raise TypeError(
                f"{cls.__qualname__}.Config is {cls.Config.__qualname__}, not a subclass of its type parameter "
                f"{declared.__qualname__}: self.config would not have the declared type"
            )

    def __init__(self, config: ConfigT | None = None) -> None:
        self.config = config if config is not None else cast(ConfigT, self.Config())


def _own_parameters(cls: type) -> list[Any]:
    """The concrete type arguments ``cls`` gives its generic plugin bases, e.g. [SftConfig]."""
    return [arg for base in cls.__dict__.get("__orig_bases__", ()) for arg in get_args(base) if isinstance(arg, type)]


def _declared_config(cls: type) -> type[BaseModel] | None:
    """The nearest Config type parameter in ``cls``'s ancestry (None while it is still a TypeVar)."""
    for klass in cls.__mro__:
        for arg in _own_parameters(klass):
            if issubclass(arg, BaseModel):
                return arg
    return None


# --------------------------------------------------------------------------------------------
# Task types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """A task input field: its canonical name, names it goes by in public datasets, and whether a
    row must have it. ``kind`` is one of str, list, any and is checked when rows are read."""

    name: str
    aliases: tuple[str, ...] = ()
    required: bool = True
    kind: str = "str"
    reference: bool = False
    """True for the gold-answer field (label, answers, summary ...), stored in Example.reference."""


class TaskConfig(StrictModel):
    """Options every task type understands (``[task_options]`` in a pipeline config)."""

    system_prompt: str | None = Field(None, description="Replaces the task's default system prompt.")
    few_shot: int = Field(0, ge=0, le=16, description="Worked examples from the train split in the teacher prompt.")
    rationale: str = Field(
        "keep",
        pattern="^(keep|drop|multitask)$",
        description="Student target: keep the teacher's rationale, drop it, or train rationale and answer "
        "as two tasks (distilling step-by-step).",
    )
    rationale_weight: float = Field(1.0, ge=0, description="Loss weight of the rationale target in multitask mode.")
    ask_rationale: bool = Field(True, description="Ask the teacher to reason before answering.")
    min_agreement: float = Field(0.0, ge=0, le=1, description="With samples > 1: least share of votes for the majority answer.")


TaskConfigT = TypeVar("TaskConfigT", bound=TaskConfig, default=TaskConfig)


class TaskType(Plugin[TaskConfigT]):
    """A kind of task: how to read its data, ask the teacher, check and score answers.

    Subclasses declare ``fields`` and implement the abstract methods. The base class maps rows to
    :class:`Example` (honouring aliases and the config's ``fields`` mapping) and implements
    majority voting for self-consistency.
    """

    kind = "task"
    Config = TaskConfig
    fields: ClassVar[tuple[FieldSpec, ...]] = ()
    primary_metric: ClassVar[str] = "accuracy"

    @abstractmethod
    def teacher_messages(self, example: Example, few_shot: Sequence[Example] = ()) -> list[Message]:
        """Chat messages that ask the teacher for this example's answer."""

    @abstractmethod
    def student_messages(self, example: Example) -> list[Message]:
        """The prompt the student is trained on and evaluated with."""

    @abstractmethod
    def parse(self, text: str) -> Parsed:
        """Extract the answer (and rationale) from raw model output."""

    @abstractmethod
    def verify(self, example: Example, parsed: Parsed) -> Verdict:
        """Accept or reject a parsed teacher answer, with a reason."""

    @abstractmethod
    def student_targets(self, example: Example, parsed: Parsed) -> list[TrainPair]:
        """What the student learns from an accepted answer (one or more targets)."""

    @abstractmethod
    def score(self, examples: Sequence[Example], predictions: Sequence[Parsed]) -> list[Metric]:
        """Task metrics of predictions against the examples' references."""

    # -- provided ---------------------------------------------------------------------------

    def label_choices(self) -> list[str] | None:
        """A closed-label task's labels, as the student answers them. When a task returns them,
        evaluation also ranks them by the model's log-likelihood (``accuracy_ranked``) on models
        that can score choices; None (the default) for open-ended answers."""
        return None

    def answer_key(self, answer: Any) -> Any:
        """How two answers are compared when voting; override to normalise (e.g. case)."""
        return answer

    def aggregate(self, parsed: Sequence[Parsed]) -> tuple[Parsed, float]:
        """Self-consistency: the majority answer among parsed completions and its vote share."""
        usable = [p for p in parsed if p.ok]
        if not usable:
            return (parsed[0] if parsed else Parsed(error="no completion")), 0.0
        votes = Counter(self.answer_key(p.answer) for p in usable)
        key, count = votes.most_common(1)[0]
        winner = next(p for p in usable if self.answer_key(p.answer) == key)
        return winner, count / len(parsed)

    def example_from_row(
        self, row: dict[str, Any], *, split: str, index: int, source: str, mapping: dict[str, str] | None = None
    ) -> Example:
        """Map a raw data row to an :class:`Example`; raise DataError naming the field if it can't."""
        from stillhouse.kernel.data import map_row  # local: keeps this module free of I/O helpers

        return map_row(self, row, split=split, index=index, source=source, mapping=mapping or {})


# --------------------------------------------------------------------------------------------
# Teachers
# --------------------------------------------------------------------------------------------


class TeacherConfig(StrictModel):
    """The ``[teacher]`` section: what every teacher means the same way (which model, and how its
    answers are sampled). A teacher plugin's ``Config`` subclasses it for its own options; the config
    is validated against the chosen backend's ``Config`` (:func:`stillhouse.kernel.config.teacher_config_model`),
    so an option of another backend is an error. Call-based teachers share the engine's options
    (concurrency, retries, limits, budget: :class:`stillhouse.kernel.teaching.CallTeacherConfig`)."""

    backend: str = Field("litellm", description="Teacher plugin that serves this model.")
    model: str = Field(..., description='The model the backend serves, e.g. a litellm model string or "hf/<hub id | folder | file.gguf>".')
    temperature: float = Field(0.7, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int = Field(256, gt=0)
    stop: list[str] | None = None
    seed: int | None = None
    samples: int = Field(1, ge=1, le=64, description="Completions per prompt (self-consistency).")
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    parameters: str | None = Field(None, description='Parameter count when known, e.g. "671B" (for the report).')


TeacherConfigT = TypeVar("TeacherConfigT", bound=TeacherConfig, default=TeacherConfig)


class Teacher(Plugin[TeacherConfigT]):
    """A backend that answers prompts. Runs its own event loop; results stream to ``on_result``."""

    kind = "teacher"
    Config = TeacherConfig

    def check(self) -> None:  # noqa: B027 - optional hook
        """Fail fast (ConfigError) on problems visible before any call, e.g. a missing key env var."""

    @abstractmethod
    def estimate(self, requests: Sequence[TeacherRequest], cache_dir: Path | None) -> Estimate:
        """Calls, tokens and cost a generation would need, without calling anything."""

    @abstractmethod
    def generate(
        self,
        requests: Sequence[TeacherRequest],
        on_result: Callable[[TeacherResult], None],
        *,
        cache_dir: Path | None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Answer every request; call ``on_result`` once per request as results arrive (from the
        calling thread). Failed requests are reported as results with ``error`` set, not raised.
        Raise BudgetExceededError once the budget would be exceeded (results so far delivered)."""

    def describe(self) -> dict[str, Any]:
        """Facts about the model for the report: at least ``model``; ``parameters`` when known."""
        return {"model": self.config.model, "parameters": self.config.parameters}

    def close(self) -> None:  # noqa: B027
        """Release connections or models."""


# --------------------------------------------------------------------------------------------
# Students and losses
# --------------------------------------------------------------------------------------------


class StudentConfig(StrictModel):
    """The ``[student]`` section: what every student trainer understands. A trainer subclasses it
    for its own options (the ``hf`` trainer adds LoRA and building the student from teacher layers)."""

    trainer: str = Field("hf", description="Student trainer plugin.")
    model: str = Field(..., description="Hub id, local folder, or folder/file.gguf.")
    dtype: Dtype = "auto"
    device: Device = "auto"
    max_length: int = Field(512, gt=8, description="Tokens per training sequence (prompt + target).")
    chat_template: str | None = Field(None, description="Jinja chat template when the model has none.")


class TrainConfig(StrictModel):
    """The ``[train]`` section: what every student trainer means the same way (the distillation loss,
    the optimiser's step size and schedule length, batches, checkpoints and validation). A trainer
    with options of its own (the ``hf`` trainer: packing, mixed precision, its scheduler ...) supplies
    a subclass as its ``Train`` model, and ``[train]`` is validated against that."""

    loss: str = Field("sft", description="Loss plugin name.")
    loss_options: dict[str, Any] = Field(default_factory=dict, description="Validated by the loss plugin's Config.")
    learning_rate: float = Field(2e-5, gt=0)
    batch_size: int = Field(2, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    num_epochs: float = Field(3, gt=0)
    max_steps: int | None = Field(None, gt=0)
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    seed: int = 42
    eval_steps: int | None = Field(None, gt=0, description="Validation every N steps (default: every epoch).")
    save_steps: int | None = Field(None, gt=0, description="Checkpoint every N steps (default: every epoch).")
    logging_steps: int = Field(5, gt=0)
    early_stopping_patience: int | None = Field(None, ge=1)


IGNORE_INDEX = -100
"""Label value of positions without loss (the transformers convention)."""


@dataclass
class LossInputs:
    """One batch as a loss sees it (shapes: B rows, L positions, V vocabulary, k teacher slots).

    Every tensor is aligned to *prediction positions*: ``logits[b, t]`` is the student's prediction
    for the token ``labels[b, t]`` (the trainer has already shifted inputs by one, per sample, so a
    packed row never predicts the first token of the next sample). ``labels == -100`` marks
    positions that carry no loss: prompt tokens, padding, the last token of each sample. Teacher
    signals, when present, sit on the same positions; a position whose teacher slots are all ``-1``
    has no teacher signal, only cross-entropy applies there.
    """

    logits: torch.Tensor
    """[B, L, V] student logits; ``logits[b, t]`` predicts ``labels[b, t]``."""
    labels: torch.Tensor
    """[B, L] target token ids, ``-100`` where there is no loss."""
    teacher_ids: torch.Tensor | None = None
    """[B, L, k] int: teacher top-k token ids, ``-1`` for an empty slot (the teacher returned fewer
    than k, or a token not in the student's vocabulary)."""
    teacher_logprobs: torch.Tensor | None = None
    """[B, L, k] float: log-probs of ``teacher_ids``, log-softmax at temperature 1 over the teacher's
    *full* vocabulary (so they sum to at most 1 in probability space), ``-inf`` where the id is -1."""
    student_hidden: Sequence[torch.Tensor] | None = None
    """Student hidden states as transformers returns them with ``output_hidden_states=True``:
    embeddings output, then each layer, [B, L, D_s] each."""
    teacher_hidden: Sequence[torch.Tensor] | None = None
    """Teacher hidden states on the same token sequence, [B, L, D_t] each."""
    weights: torch.Tensor | None = None
    """[B, L] per-position weight (the TrainPair weight of the sample the position belongs to)."""
    num_items: float | torch.Tensor | None = None
    """Divide the weighted token sum by this instead of this batch's target count: the trainer passes
    the number of target tokens in the whole accumulated (and, across processes, gathered) batch, so
    every token counts the same whatever the packing or the gradient accumulation."""

    @property
    def mask(self) -> torch.Tensor:
        """[B, L] bool: positions that carry loss."""
        return self.labels != IGNORE_INDEX


TeacherSignal = Literal["teacher_logprobs", "teacher_hidden"]
"""What a loss can need from the teacher: top-k token log-probs, or hidden states."""


class Loss(Plugin[ConfigT]):
    """A distillation loss. ``requires`` names the teacher signals it needs:
    ``"teacher_logprobs"`` (top-k token log-probs) and/or ``"teacher_hidden"``."""

    kind = "loss"
    requires: ClassVar[frozenset[TeacherSignal]] = frozenset()
    target_logits_only: ClassVar[bool] = False
    """True when the loss reads logits (and the position-aligned inputs) only where ``labels`` is not
    ``-100``: a trainer may then run the LM head at those positions alone and hand the loss a batch
    of just those columns. Prompts are most of a sequence and the head over a 49k vocabulary is about
    half of a small model's compute, so this trains several times fewer logits."""

    @abstractmethod
    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        """Return a scalar loss tensor for the batch."""

    def signals_needed(self) -> frozenset[TeacherSignal]:
        """The teacher signals this configured loss uses: ``requires``, or fewer when its options
        switch a term off (a distillation weight of 0 needs no teacher at all)."""
        return self.requires

    def trainable_module(self, student_width: int, teacher_width: int) -> torch.nn.Module | None:
        """Parameters the loss itself learns (e.g. a projection between hidden widths), or None.

        The trainer calls it once before training with the models' hidden sizes and trains the
        module with the student (optimiser, mixed precision, DDP and checkpoints cover it); it is
        dropped on export. The loss keeps a reference and applies it in ``__call__``.
        """
        return None


@dataclass
class NamedTeacher:
    """One entry of ``[[teachers]]``: a name, a weight and its backend's validated teacher config."""

    name: str
    weight: float
    config: TeacherConfig

    def dump(self) -> dict[str, Any]:
        return {"name": self.name, "weight": self.weight, **self.config.model_dump(mode="json")}


@dataclass
class TrainJob:
    """Everything a student trainer needs for one training run."""

    run_dir: Path
    output_dir: Path
    checkpoint_dir: Path
    train: list[TrainPair]
    validation: list[TrainPair]
    student: StudentConfig
    train_config: TrainConfig
    loss: Loss[Any]
    teacher: TeacherConfig | None
    emit: EmitFn
    resume: bool = False
    should_stop: Callable[[], bool] = lambda: False
    teachers: list[NamedTeacher] = field(default_factory=list)
    """Every ``[[teachers]]`` entry (empty with one ``[teacher]``); ``teacher`` is the primary one. A
    logit loss combines the top-k of those that are local ``hf/`` models sharing the student's tokenizer."""


@dataclass
class TrainOutcome:
    model_dir: Path
    steps: int
    summary: dict[str, Any] = field(default_factory=dict)


class ChatModel(ABC):
    """A model that answers chat prompts during evaluation (local or remote)."""

    role: str = ""

    @abstractmethod
    def answer(self, prompts: Sequence[list[Message]], *, max_new_tokens: int, batch_size: int) -> list[Answer]:
        """Answer each prompt greedily; latency_ms is per request as a user would see it."""

    def footprint(self) -> dict[str, Any]:
        """parameters, bytes_on_disk, peak_memory_bytes ... where measurable."""
        return {}

    def time_request(self, prompt: list[Message], *, new_tokens: int) -> Timing:
        """Answer one prompt alone, generating exactly ``new_tokens`` tokens where the model can be
        forced to (EOS ignored), and say how long it took. Optional: the default raises
        NotImplementedError and the evaluate stage then reports the model's timing as not measured."""
        raise NotImplementedError(f"{type(self).__name__} cannot time a forced-length request")

    def score_choices(self, prompts: Sequence[list[Message]], choices: Sequence[str], *, batch_size: int) -> list[list[float]]:
        """For each prompt, the log-likelihood of each choice as the assistant's reply (rank
        classification): one list of ``len(choices)`` floats per prompt, higher = preferred.
        Optional: the default raises NotImplementedError (API models keep free generation)."""
        raise NotImplementedError(f"{type(self).__name__} cannot score choices")

    def close(self) -> None:  # noqa: B027
        """Free memory."""


@dataclass
class Timing:
    """One timed request: time to first token, total time and the tokens generated."""

    total_ms: float
    new_tokens: int
    ttft_ms: float | None = None
    forced: bool = True
    """True when the output length was forced (EOS ignored); False when the model stopped itself."""
    peak_bytes: int | None = None
    """Working memory the request needed beyond the weights, where the model can measure it."""

    @property
    def per_token_ms(self) -> float | None:
        """Decode time per generated token after the first (all tokens when TTFT is unknown)."""
        if self.ttft_ms is not None and self.new_tokens > 1:
            return (self.total_ms - self.ttft_ms) / (self.new_tokens - 1)
        return self.total_ms / self.new_tokens if self.new_tokens else None


StudentConfigT = TypeVar("StudentConfigT", bound=StudentConfig, default=StudentConfig)


class StudentTrainer(Plugin[StudentConfigT]):
    """Trains the student. ``Config`` is the ``[student]`` section's model, ``Train`` the ``[train]``
    section's: a trainer with training options of its own subclasses :class:`TrainConfig` (as TRL's
    ``GKDConfig`` extends ``SFTConfig``), and the config check validates ``[train]`` against it."""

    kind = "student"
    Config = StudentConfig
    Train: ClassVar[type[TrainConfig]] = TrainConfig

    @classmethod
    def check_config(  # noqa: B027 - optional hook
        cls, student: StudentConfig, train: TrainConfig, teacher: TeacherConfig | None, loss: Loss[Any]
    ) -> None:
        """Fail fast (ConfigError, ``where.field`` a dotted config key) on option combinations this
        trainer refuses, from the config alone: no model loads, no network. ``still config check``
        and every run call it after the sections validate; file and line are filled in from the field."""

    @abstractmethod
    def train(self, job: TrainJob) -> TrainOutcome:
        """Fine-tune the student; resumable from ``job.checkpoint_dir`` when ``job.resume``."""

    @abstractmethod
    def load(self, model_dir: Path | None) -> ChatModel:
        """The student as a ChatModel: None = the untouched base model, else a trained folder."""


# --------------------------------------------------------------------------------------------
# Evaluation and reporting
# --------------------------------------------------------------------------------------------


@dataclass
class EvalSubject:
    """One model under evaluation with its answers on the evaluation split."""

    role: EvalRole
    model_name: str
    model: ChatModel | None
    task: TaskType
    examples: list[Example]
    answers: list[Answer]
    parsed: list[Parsed]
    info: dict[str, Any] = field(default_factory=dict)


class TimingConfig(StrictModel):
    """``[evaluate.timing]``: how the roles are timed against each other.

    Roles are timed interleaved (A B C, A B C ... on each prompt in turn, the role order rotated
    every round) after a warm-up, each request generating exactly ``new_tokens`` tokens, until every
    role's median per-token time is known to ``rel_ci`` or ``budget_s`` is spent."""

    enabled: bool = Field(True, description="Run the timing phase (false: no latency figures).")
    new_tokens: int = Field(16, ge=2, description="Tokens each timed request generates (forced: EOS ignored).")
    prompts: int = Field(4, ge=1, description="Evaluation prompts the timing cycles through.")
    warmup: int = Field(1, ge=0, description="Untimed rounds first (every role answers every timing prompt).")
    min_rounds: int = Field(2, ge=1, description="Timed rounds at least.")
    max_rounds: int = Field(20, ge=1, description="Timed rounds at most.")
    budget_s: float = Field(30.0, gt=0, description="Stop after the round that passes this many seconds of timing.")
    rel_ci: float = Field(
        0.05, gt=0, description="Stop once every role's 95% CI of the median per-token time is within ±this fraction."
    )
    api: bool = Field(
        False, description="Also time a teacher behind an API (each timed request is a paid call; length not forced)."
    )


class EvaluateConfig(StrictModel):
    """The ``[evaluate]`` section."""

    split: str = Field("test", description="Evaluation split: test, else validation if test is missing.")
    limit: int | None = Field(None, gt=0)
    roles: list[Role] = Field(default_factory=lambda: list(ROLES))
    evaluators: list[str] = Field(default_factory=lambda: ["task_metrics", "latency", "throughput", "footprint", "cost"])
    batch_size: int = Field(8, ge=1)
    max_new_tokens: int = Field(128, gt=0)
    usd_per_hour: float | None = Field(
        None, ge=0, description="Price of local compute, to cost local models; unset: their cost is reported as not priced."
    )
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Options per evaluator, validated by its Config, e.g. [evaluate.options.latency] single_requests = 4.",
    )
    timing: TimingConfig = Field(
        default_factory=TimingConfig,
        description="The interleaved timing phase: all roles timed in turn on the same prompts, forced output length.",
    )
    rank_choices: bool = Field(
        True,
        description="Closed-label tasks: also score each label's log-likelihood on local models (accuracy_ranked).",
    )
    export: list[str] = Field(
        default_factory=list,
        description='Export the distilled student after evaluation and record each size on disk as a student '
        'metric, e.g. ["gguf:q8_0"] (FORMAT[:QUANTIZE], any `still export` format; written to <run>/exports/).',
    )



class Evaluator(Plugin[ConfigT]):
    kind = "evaluator"

    @abstractmethod
    def evaluate(self, subject: EvalSubject) -> list[Metric]:
        """Measurements of one subject. Unmeasurable values are Metrics with value None + reason."""


@dataclass
class ReportInput:
    run_id: str
    run_dir: Path
    config: dict[str, Any]
    results: dict[str, list[Metric]]  # role -> metrics
    primary_metric: str
    training_curve: list[tuple[int, float]] = field(default_factory=list)
    filter_summary: dict[str, Any] = field(default_factory=dict)
    teacher_summary: dict[str, Any] = field(default_factory=dict)


class Reporter(Plugin[ConfigT]):
    kind = "reporter"

    @abstractmethod
    def write(self, report: ReportInput) -> list[Path]:
        """Write report files into the run folder; return their paths."""


class Exporter(Plugin[ConfigT]):
    """Writes a trained model in a deployment format (``still export --format <name>``).

    ``quantizations`` lists the ``--quantize`` values the format knows (empty: the option is
    refused); the exporter's ``Config`` receives ``quantize`` and ``dtype`` when they are given,
    so an option a format lacks fails validation with a clear message.
    """

    kind = "exporter"
    quantizations: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def export(self, source: Path, dest: Path) -> list[Path]:
        """Write the Hugging Face model folder ``source`` (weights, config, tokenizer) into the
        empty folder ``dest``; return the files written. Raise a ``UserError`` for a model the
        format cannot hold (say which architectures it supports)."""


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of values; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


PluginT = TypeVar("PluginT", bound=Plugin[Any], contravariant=True)


class Register(Protocol[PluginT]):
    """The ``register`` callback a registration hook receives: ``register(MyTask)`` hands the kernel
    one plugin class. ``registered`` is what this call of the hook has collected so far, from every
    plugin, so a hook wrapper (``@hookimpl(wrapper=True)``) sees it after its ``yield``."""

    def __call__(self, cls: type[PluginT], /) -> None: ...

    @property
    def registered(self) -> tuple[type[Plugin[Any]], ...]: ...


PLUGIN_KINDS: dict[str, type[Plugin[Any]]] = {
    "task": TaskType,
    "teacher": Teacher,
    "student": StudentTrainer,
    "loss": Loss,
    "evaluator": Evaluator,
    "reporter": Reporter,
    "exporter": Exporter,
}
