"""Sampling parameters reach the server; n completions and log-probs come back and are stored."""

from __future__ import annotations

from stillhouse.kernel.interfaces import TokenLogprob
from stillhouse.testing.fake_openai import fake_answer

from .helpers import collect, prompts


def test_sampling_parameters_reach_the_server(fake_server, make_teacher):
    server = fake_server()
    teacher = make_teacher(
        api_base=server.url, temperature=0.3, top_p=0.9, max_tokens=17, stop=["END"], seed=7, samples=3
    )

    [result] = collect(teacher, prompts(1))

    sent = server.stats.last_params
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"], sent["stop"], sent["seed"], sent["n"]) == (
        0.3,
        0.9,
        17,
        ["END"],
        7,
        3,
    )
    assert [c.text for c in result.completions] == [fake_answer("question 0", i) for i in range(3)]
    assert result.completion_tokens == sum(len(c.text.split()) for c in result.completions)


def test_logprobs_are_stored_and_survive_the_cache(fake_server, make_teacher, tmp_path):
    server = fake_server()
    [fresh] = collect(make_teacher(api_base=server.url, logprobs=True, top_logprobs=2), prompts(1), tmp_path)
    [cached] = collect(make_teacher(api_base=server.url, logprobs=True, top_logprobs=2), prompts(1), tmp_path)

    assert server.stats.last_params["logprobs"] is True and server.stats.last_params["top_logprobs"] == 2
    logprobs = fresh.completions[0].logprobs
    assert logprobs is not None and len(logprobs) == len(fresh.completions[0].text.split())
    assert logprobs[0] == TokenLogprob("Answer:", -0.1, [("Answer:", -0.1), ("alt0", -1.0)])
    assert cached.cache_hit and cached.completions[0].logprobs == logprobs


def test_without_logprobs_none_are_requested(fake_server, make_teacher):
    server = fake_server()
    [result] = collect(make_teacher(api_base=server.url), prompts(1))
    assert server.stats.last_params["logprobs"] is False
    assert result.completions[0].logprobs is None
