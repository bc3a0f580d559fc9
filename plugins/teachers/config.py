"""Options of the litellm teacher beyond the kernel's ``[teacher]`` section."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator
from stillhouse.kernel.interfaces import TeacherConfig

LOCAL_PREFIX = "hf/"


class LiteLLMTeacherConfig(TeacherConfig):
    """``[teacher]`` for ``backend = "litellm"`` (the default)."""

    workers: int = Field(
        1,
        ge=1,
        le=32,
        description="Processes that make the calls. litellm spends ~3 ms of CPU per call, which caps one "
        "process near 300 calls/s; more workers lift that ceiling on machines with spare cores.",
    )
    retry_base_delay: float = Field(
        1.0, ge=0, description="Seconds before the first retry; doubles each retry (with jitter)."
    )
    retry_max_delay: float = Field(60.0, ge=0, description="Longest wait between two retries.")
    extra_params: dict[str, Any] = Field(
        default_factory=dict,
        description="More litellm.completion arguments (e.g. reasoning_effort); part of the cache key.",
    )

    @model_validator(mode="after")
    def _local_runs_in_process(self) -> LiteLLMTeacherConfig:
        if self.is_local and self.workers > 1:
            raise ValueError(
                "a local hf/ teacher runs in this process: set workers = 1 (use batch_size for throughput)"
            )
        return self

    @property
    def is_local(self) -> bool:
        return self.model.startswith(LOCAL_PREFIX)

    def sampling_params(self) -> dict[str, Any]:
        """The litellm arguments that decide the answer (and so belong in the cache key)."""
        params: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "stop": self.stop,
            "seed": self.seed,
            "n": self.samples if self.samples > 1 else None,
        }
        if self.logprobs:
            params["logprobs"] = True
            params["top_logprobs"] = self.top_logprobs
        params.update(self.extra_params)
        return params
