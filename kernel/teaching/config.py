"""The options of the teacher engine: what every call-based teacher understands beyond the kernel's
``[teacher]`` section (how calls are made, never what is answered), and the endpoint options of a
teacher behind an HTTP API."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from stillhouse.kernel.interfaces import StrictModel, TeacherConfig


class PriceConfig(StrictModel):
    input_per_mtok: float = Field(0.0, ge=0, description="USD per million prompt tokens.")
    output_per_mtok: float = Field(0.0, ge=0, description="USD per million completion tokens.")


class CallTeacherConfig(TeacherConfig):
    """``[teacher]`` for a :class:`~stillhouse.kernel.teaching.CallTeacher`: the engine's settings
    (concurrency, retries with backoff, timeouts, rpm/tpm limits, the budget and prices, the circuit
    breaker). Subclass it for a teacher's own options."""

    concurrency: int = Field(16, ge=1, le=1024)
    max_retries: int = Field(5, ge=0)
    timeout: float = Field(120.0, gt=0, description="Seconds per request.")
    rpm: int | None = Field(None, gt=0, description="Requests per minute limit.")
    tpm: int | None = Field(None, gt=0, description="Tokens per minute limit.")
    budget_usd: float | None = Field(None, ge=0, description="Stop before spending more than this.")
    price: PriceConfig | None = Field(None, description="Prices for models the teacher does not know.")
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


class HttpTeacherConfig(CallTeacherConfig):
    """``[teacher]`` for a call-based teacher behind an HTTP endpoint: where it is and which
    environment variable holds its key. The endpoint is part of the response cache key."""

    api_base: str | None = Field(None, description="Base URL of the endpoint, e.g. http://127.0.0.1:8000/v1.")
    api_key_env: str | None = Field(None, description="NAME of the environment variable holding the API key.")
