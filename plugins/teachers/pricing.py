"""litellm's part of pricing: its bundled price map and tokenizers.

Prices come, in order, from the config's ``price`` table, litellm's bundled price map (read
offline: ``LITELLM_LOCAL_MODEL_COST_MAP=True``), or are zero for models that run locally (``hf/``,
Ollama, or any endpoint on this machine). Otherwise the price is unknown and costs are None —
never a made-up 0.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from urllib.parse import urlparse

from stillhouse.kernel.interfaces import Message
from stillhouse.kernel.teaching import PriceConfig
from stillhouse.kernel.teaching.pricing import Price, estimate_prompt_tokens

LOCAL_PROVIDERS = ("hf/", "ollama/", "ollama_chat/", "lm_studio/", "llamafile/")
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def import_litellm() -> object:
    """Import litellm quietly and offline (its price map from the package, not the network)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def is_local(model: str, api_base: str | None) -> bool:
    if model.startswith(LOCAL_PROVIDERS):
        return True
    return bool(api_base) and (urlparse(api_base).hostname or "") in LOCAL_HOSTS


def find_price(model: str, api_base: str | None, configured: PriceConfig | None) -> Price | None:
    """The per-token price of ``model``, or None when nobody knows it."""
    if configured is not None:
        return Price.configured(configured)
    if model.startswith("hf/"):
        return Price(0.0, 0.0, "local")
    litellm = import_litellm()
    try:
        info = litellm.get_model_info(model)  # type: ignore[attr-defined]
    except Exception:  # litellm raises a bare Exception subclass for unmapped models
        info = None
    if info and info.get("input_cost_per_token") is not None:
        return Price(float(info["input_cost_per_token"]), float(info.get("output_cost_per_token") or 0.0), "litellm")
    if is_local(model, api_base):
        return Price(0.0, 0.0, "local")
    return None


def count_prompt_tokens(model: str, messages: Sequence[Message]) -> int:
    """Prompt tokens as the provider will count them: litellm's tokenizer for the model where it
    has one (tiktoken, bundled), else about four characters a token."""
    if not model.startswith("hf/"):
        litellm = import_litellm()
        try:
            return int(litellm.token_counter(model=model, messages=list(messages)))  # type: ignore[attr-defined]
        except Exception:  # unknown tokenizer: fall through to the heuristic
            pass
    return estimate_prompt_tokens(messages)
