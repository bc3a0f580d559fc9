"""Options of the ``hf`` student trainer: the kernel's ``[student]`` and ``[train]`` sections plus its own."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stillhouse.kernel.interfaces import StrictModel, StudentConfig, TrainConfig
from stillhouse.plugins.students.on_policy_config import OnPolicyConfig


class LoraConfig(StrictModel):
    r: int = Field(16, gt=0)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | str = "all-linear"
    merge: bool = Field(True, description="Merge the adapter into the weights on export.")


class HfStudentConfig(StudentConfig):
    init: Literal["pretrained", "teacher-layers"] = Field(
        "pretrained", description="Start from student.model, or from kept layers of the (local) teacher."
    )
    layers: list[int] | None = Field(None, description='With init = "teacher-layers": teacher layers to keep.')
    lora: LoraConfig | None = Field(None, description="Train a LoRA adapter (peft) instead of every weight.")
    attn_implementation: str = Field(
        "sdpa", description="transformers attention kernel: sdpa, eager, flash_attention_2 (packing works with all)."
    )
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory on long sequences.")
    teacher_signals: Literal["store", "live"] = Field(
        "store",
        description="Logit losses: read the teacher's top-k from the run's store (computed once), or run the "
        "teacher on every batch (no store; costs a teacher forward per step).",
    )
    teacher_activations: Literal["store", "live"] = Field(
        "store",
        description="hidden_mse/hidden_cosine/attention_relation: read the teacher's mapped hidden states or Q/K/V "
        "from the run's activation store (one teacher pass, float16 on disk), or run the teacher on every batch.",
    )
    teacher_activations_max_gib: float = Field(
        8.0,
        gt=0,
        description="Largest activation store built (GiB on disk, estimated before the teacher pass); a larger "
        "one is not written and the teacher runs on every batch instead (said in the run's log).",
    )
    save_total_limit: int | None = Field(2, ge=1, description="Checkpoints kept (the best one is always kept).")
    teacher_batch_tokens: int = Field(
        4096, ge=64, description="Tokens per teacher forward when building the top-k store."
    )
    ddp_backend: str | None = Field(None, description="torch.distributed backend; default nccl on GPU, gloo on CPU.")
    save_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="dtype of the saved final student; auto: bfloat16 when training used bf16 mixed precision or "
        "the model was loaded in bfloat16, float16 when loaded in float16, else the loaded dtype.",
    )


def as_hf_config(config: StudentConfig) -> HfStudentConfig:
    """Accept the kernel's plain StudentConfig too (e.g. a model evaluated by path)."""
    if isinstance(config, HfStudentConfig):
        return config
    return HfStudentConfig.model_validate(config.model_dump())


class HfTrainConfig(TrainConfig):
    """``[train]`` for the ``hf`` trainer: the kernel's options plus transformers Trainer ones."""

    lr_scheduler: str = Field("linear", description="transformers scheduler type: linear, cosine, constant ...")
    packing: bool = Field(True, description="Pack samples into sequences without cross-sample attention.")
    group_by_length: bool = Field(True, description="Without packing: batch samples of similar length.")
    top_k: int = Field(32, ge=1, le=256, description="Teacher top-k log-probs stored for logit losses.")
    bf16: bool | Literal["auto"] = Field("auto", description="bfloat16 mixed precision; auto: where the GPU supports it.")
    on_policy: OnPolicyConfig | None = Field(
        None, description="On-policy distillation: the student samples a share of the batches (see docs/plugins.md)."
    )


def as_hf_train(config: TrainConfig) -> HfTrainConfig:
    """Accept the kernel's plain TrainConfig too (the hf options then take their defaults)."""
    if isinstance(config, HfTrainConfig):
        return config
    return HfTrainConfig.model_validate(config.model_dump())
