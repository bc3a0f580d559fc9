"""Costs per call and the budget cap."""

from __future__ import annotations

import pytest

from stillhouse.kernel.errors import BudgetExceededError, ConfigError
from stillhouse.plugins.teachers.pricing import import_litellm

from .helpers import by_id, collect, prompts

# $1000 per million tokens = $0.001 a token: a fake-server call costs ~$0.008 (5 prompt + 3 completion tokens).
EXPENSIVE = {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}


def test_budget_stops_before_it_is_exceeded_and_resume_finishes(fake_server, make_teacher, tmp_path):
    server = fake_server()
    requests = prompts(30)
    delivered = []
    teacher = make_teacher(api_base=server.url, price=EXPENSIVE, max_tokens=10, budget_usd=0.05, concurrency=4)

    with pytest.raises(BudgetExceededError) as raised:
        teacher.generate(requests, delivered.append, cache_dir=tmp_path)

    spent = sum(r.cost_usd for r in delivered)
    assert 0 < spent <= 0.05
    assert 0 < len(delivered) < len(requests)
    assert all(r.ok for r in delivered)
    assert server.stats.answered_total == len(delivered)  # nothing called beyond what was delivered
    assert raised.value.where.field == "teacher.budget_usd"

    # Resume with a larger budget: the answered ones come from the cache, the rest are called once.
    rest = by_id(
        collect(make_teacher(api_base=server.url, price=EXPENSIVE, max_tokens=10, budget_usd=5.0), requests, tmp_path)
    )
    assert len(rest) == len(requests) and all(r.ok for r in rest.values())
    assert sum(r.cache_hit for r in rest.values()) == len(delivered)
    assert set(server.stats.answered.values()) == {1}


def test_budget_with_unknown_price_is_a_config_error(make_teacher):
    teacher = make_teacher(api_base="https://teacher.example.com/v1", budget_usd=1.0)
    with pytest.raises(ConfigError) as raised:
        teacher.check()
    assert raised.value.where.field == "teacher.price"


def test_known_model_is_priced_from_litellms_map(fake_server, make_teacher):
    server = fake_server()
    [result] = collect(make_teacher(model="openai/gpt-4o-mini", api_base=server.url), prompts(1))

    litellm = import_litellm()
    prompt_cost, completion_cost = litellm.cost_per_token(
        model="gpt-4o-mini", prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens
    )
    assert result.cost_usd == pytest.approx(prompt_cost + completion_cost)
    assert result.cost_usd > 0


def test_local_endpoint_of_an_unknown_model_costs_nothing(fake_server, make_teacher):
    server = fake_server()
    [result] = collect(make_teacher(model="hosted_vllm/my-model", api_base=server.url), prompts(1))
    assert result.ok and result.cost_usd == 0.0


def test_configured_price_is_used(fake_server, make_teacher):
    server = fake_server()
    [result] = collect(
        make_teacher(api_base=server.url, price={"input_per_mtok": 3.0, "output_per_mtok": 15.0}), prompts(1)
    )
    assert result.cost_usd == pytest.approx(result.prompt_tokens * 3e-6 + result.completion_tokens * 15e-6)
