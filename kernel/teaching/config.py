"""The options every call-based teacher understands, beyond the kernel's ``[teacher]`` section."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from stillhouse.kernel.interfaces import TeacherConfig


class CallTeacherConfig(TeacherConfig):
    """``[teacher]`` for a :class:`~stillhouse.kernel.teaching.CallTeacher`: the engine's retry and
    circuit-breaker settings (concurrency, max_retries, timeout, rpm, tpm, budget_usd and price
    are in every teacher's section already). Subclass it for a teacher's own options."""

    retry_base_delay: float = Field(
        1.0, ge=0, description="Seconds before the first retry; doubles each retry (with jitter)."
    )
    retry_max_delay: float = Field(60.0, ge=0, description="Longest wait between two retries.")
    unreachable_after: int = Field(
        5,
        ge=0,
        description="Stop the stage after this many connection failures in a row (the teacher is down): "
        "answers so far are kept and `still run --resume` continues. 0: never stop for this.",
    )

    def sampling_params(self) -> dict[str, Any]:
        """The OpenAI-style arguments that decide the answer, and so belong in the cache key."""
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
        return params
