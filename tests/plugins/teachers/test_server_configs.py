"""The teacher configs of examples/teachers/ (vLLM, Ollama, llama.cpp's server) are valid pipelines,
and each one's [teacher] table, pointed at `still serve` (the same OpenAI protocol), answers over
real HTTP through the litellm teacher.

Not covered here: a real vLLM, Ollama or llama-server process (none installs on this machine), and
litellm's native ``ollama/`` / ``ollama_chat/`` providers, which call Ollama's own /api/generate and
/api/chat: `still serve` speaks only the OpenAI protocol, so the Ollama example uses Ollama's /v1.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from stillhouse.kernel.config import load_config
from stillhouse.kernel.plugins import get_host

from .helpers import by_id, collect, prompts

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "teachers"
CONFIGS = sorted(EXAMPLES.glob("*.toml"))
PROVIDERS = {"vllm": "hosted_vllm/", "ollama": "openai/", "llamacpp": "openai/"}


def test_every_server_example_is_a_valid_pipeline_with_its_server_endpoint():
    assert {p.stem for p in CONFIGS} == set(PROVIDERS)
    for path in CONFIGS:
        loaded = load_config(path, get_host())
        teacher = loaded.pipeline.teacher
        assert teacher.model.startswith(PROVIDERS[path.stem]), path.name
        assert teacher.api_base is not None and teacher.api_base.startswith("http://127.0.0.1:")  # type: ignore[attr-defined]
        assert teacher.api_base.endswith("/v1"), "the OpenAI protocol's base: litellm appends /chat/completions"  # type: ignore[attr-defined]


@pytest.mark.slow  # one `still serve` process for the session (torch and the tiny teacher load in it)
def test_each_server_config_answers_over_http_from_still_serve(openai_server, make_teacher):
    for path in CONFIGS:
        options = tomllib.loads(path.read_text())["teacher"]
        # the config's shape on this server; sampled, as test_serve does: a random tiny model's greedy
        # answer can be special tokens alone, which the teacher rightly counts as no answer
        options |= {"api_base": openai_server, "max_tokens": 8, "concurrency": 2, "temperature": 1.0, "seed": 3}
        teacher = make_teacher(**options)
        results = by_id(collect(teacher, prompts(3, prefix=path.stem)))
        assert len(results) == 3, path.name
        for result in results.values():
            assert result.ok, f"{path.name}: {result.error}"
            assert result.completions[0].text and result.prompt_tokens > 0, path.name
        if options.get("logprobs"):  # the vLLM example keeps the top log-probs for logit distillation
            tokens = results["s0"].completions[0].logprobs
            assert tokens, f"{path.name}: no token log-probabilities came back"
            assert all(len(t.top) == options["top_logprobs"] for t in tokens)
            assert all(t.logprob <= 0 for t in tokens)
