"""Options of the litellm teacher beyond the kernel's ``[teacher]`` section."""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from stillhouse.kernel.interfaces import Device, Dtype, StrictModel
from stillhouse.kernel.teaching import HttpTeacherConfig

LOCAL_PREFIX = "hf/"
# Below this many calls, starting worker processes (~3 s each) costs more than it saves.
AUTO_WORKERS_MIN_CALLS = 1000


class DeploymentConfig(StrictModel):
    """One deployment of the teacher (for load balancing and fallbacks)."""

    model: str
    api_base: str | None = None
    api_key_env: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    weight: int = 1


class LocalModelConfig(StrictModel):
    """Options of a local ``hf/`` model answered in this process (transformers)."""

    dtype: Dtype = Field("auto", description="Local hf/ teachers: torch dtype (auto, float32, bfloat16, float16).")
    device: Device = Field("auto", description="Local hf/ teachers: cpu, cuda, auto.")
    batch_size: int = Field(8, ge=1, description="Local hf/ teachers: prompts per forward batch.")


class LiteLLMTeacherConfig(HttpTeacherConfig, LocalModelConfig):
    """``[teacher]`` for ``backend = "litellm"`` (the default): the engine's options and an API
    endpoint (:class:`HttpTeacherConfig`), litellm's router over ``deployments``, and the options of
    a local ``hf/`` model (:class:`LocalModelConfig`)."""

    deployments: list[DeploymentConfig] = Field(default_factory=list)

    workers: Annotated[int, Field(ge=1, le=32)] | Literal["auto"] = Field(
        "auto",
        description="Processes that make the calls. litellm spends 3-10 ms of CPU per call, which caps one "
        "process near 100-300 calls/s; N > 1 spreads calls over N processes (each starts in ~3 s). "
        '"auto": one process for local models, small jobs (< 1000 calls) or concurrency < 16, else up '
        "to 4, leaving a core free.",
    )
    extra_params: dict[str, Any] = Field(
        default_factory=dict,
        description="More litellm.completion arguments (e.g. reasoning_effort); part of the cache key.",
    )

    @model_validator(mode="after")
    def _local_runs_in_process(self) -> LiteLLMTeacherConfig:
        if self.is_local and isinstance(self.workers, int) and self.workers > 1:
            raise ValueError(
                "a local hf/ teacher runs in this process: set workers = 1 (use batch_size for throughput)"
            )
        return self

    def worker_count(self, calls: int) -> int:
        """The processes to use for ``calls`` uncached calls (resolves "auto")."""
        if isinstance(self.workers, int):
            return self.workers
        if self.is_local or calls < AUTO_WORKERS_MIN_CALLS or self.concurrency < 16:
            return 1
        return max(1, min(4, (os.cpu_count() or 1) - 1))

    @property
    def is_local(self) -> bool:
        return self.model.startswith(LOCAL_PREFIX)

    def sampling_params(self) -> dict[str, Any]:
        """The litellm arguments that decide the answer (and so belong in the cache key)."""
        return {**super().sampling_params(), **self.extra_params}
