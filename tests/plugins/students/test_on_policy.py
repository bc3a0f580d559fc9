"""On-policy distillation (``train.on_policy``) on tiny real models: the teacher's distributions
over sampled tokens, batched generation, the fraction = 0 identity, learning, and refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from stillhouse.kernel.errors import ConfigError
from stillhouse.kernel.interfaces import IGNORE_INDEX, LossInputs, TrainJob
from stillhouse.plugins.hf_models import load_tokenizer
from stillhouse.plugins.losses.divergences import GeneralizedJSD
from stillhouse.plugins.losses.sft import SftLoss
from stillhouse.plugins.students.config import HfTrainConfig
from stillhouse.plugins.students.data import encode_pairs
from stillhouse.plugins.students.hf import HfStudentTrainer
from stillhouse.plugins.students.on_policy import OnPolicyBatcher, divergence_only
from stillhouse.plugins.students.on_policy_config import OnPolicyConfig

from .conftest import JobFactory
from .helpers import nli_pairs


def with_on_policy(job: TrainJob, **options: Any) -> TrainJob:
    job.train_config = HfTrainConfig(**{**job.train_config.model_dump(), "on_policy": OnPolicyConfig(**options)})
    return job


class CountingGenerate:
    """Counts calls of the real model's own ``generate`` (the model itself is untouched)."""

    def __init__(self, model: Any) -> None:
        self.calls: list[int] = []
        self.inner = model.generate
        model.generate = self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(int(kwargs["input_ids"].shape[0]))
        return self.inner(*args, **kwargs)


def prompts_of(tokenizer: Any, n: int) -> list[list[int]]:
    samples, _ = encode_pairs(tokenizer, nli_pairs(n), 256)
    return [s.input_ids[: s.prompt_length] for s in samples]


@pytest.fixture
def models(tiny_model_dir: Path, tiny_teacher_dir: Path) -> tuple[Any, Any, Any]:
    student = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    teacher = AutoModelForCausalLM.from_pretrained(tiny_teacher_dir).requires_grad_(False)
    return student, teacher, load_tokenizer(str(tiny_model_dir))


def batcher_for(teacher: Any, tokenizer: Any, *, k: int = 32, **options: Any) -> OnPolicyBatcher:
    return OnPolicyBatcher(
        OnPolicyConfig(**{"max_new_tokens": 10, **options}),
        teacher,
        pad_id=tokenizer.pad_token_id,
        eos_id=tokenizer.eos_token_id,
        k=k,
        vocab_size=len(tokenizer),
    )


def test_teacher_distributions_over_sampled_tokens_match_a_direct_forward(models: tuple[Any, Any, Any]) -> None:
    student, teacher, tokenizer = models
    prompts = prompts_of(tokenizer, 4)
    assert len({len(p) for p in prompts}) > 1  # left padding is exercised
    batcher = batcher_for(teacher, tokenizer, k=len(tokenizer) // 4)
    counter = CountingGenerate(student)
    torch.manual_seed(0)

    batch = batcher.batch(student, prompts, torch.ones(4))

    assert counter.calls == [4]  # one batched call for the whole batch
    checked = 0
    for row in range(4):
        real = batch["attention_mask"][row].bool()
        tokens = batch["input_ids"][row][real]
        n_pad = int(real.long().argmax())  # left padding before the prompt
        assert tokens[: len(prompts[row])].tolist() == prompts[row]
        with torch.no_grad():
            direct = torch.log_softmax(teacher(input_ids=tokens[None]).logits[0].float(), dim=-1)
        targets = batch["target_ids"][row]
        positions = (targets != IGNORE_INDEX).nonzero().flatten()
        assert len(positions) >= 1
        assert int(positions[0]) - n_pad == len(prompts[row]) - 1  # last prompt position predicts token 1
        for t in positions.tolist():
            assert int(targets[t]) == int(batch["input_ids"][row, t + 1])  # targets are the sampled tokens
            ids, lps = batch["teacher_ids"][row, t].long(), batch["teacher_logprobs"][row, t]
            expected = direct[t - n_pad]
            assert torch.allclose(lps, expected[ids], atol=1e-4)
            assert torch.allclose(lps, expected.topk(len(ids)).values, atol=1e-4)
            checked += 1
    assert checked == batch["n_targets"] == batcher.stats.generated_tokens
    assert batcher.stats.generate_calls == 1 and batcher.stats.generation_s > 0


def test_seq_kd_samples_from_the_teacher(models: tuple[Any, Any, Any]) -> None:
    student, teacher, tokenizer = models
    batcher = batcher_for(teacher, tokenizer, seq_kd=True)
    from_student, from_teacher = CountingGenerate(student), CountingGenerate(teacher)

    batch = batcher.batch(student, prompts_of(tokenizer, 3), torch.ones(3))

    assert from_student.calls == [] and from_teacher.calls == [3]
    assert batch["n_targets"] > 0


def test_fraction_zero_trains_exactly_like_off_policy(make_job: JobFactory, tmp_path: Path) -> None:
    loss = GeneralizedJSD(GeneralizedJSD.Config(alpha=0.5))
    off, _ = make_job(loss, run_dir=tmp_path / "off", max_steps=3, validation=[])
    on, events = make_job(loss, run_dir=tmp_path / "on", max_steps=3, validation=[])
    with_on_policy(on, fraction=0.0)

    off_outcome = HfStudentTrainer(off.student).train(off)
    on_outcome = HfStudentTrainer(on.student).train(on)

    assert on_outcome.summary["train_loss"] == off_outcome.summary["train_loss"]
    assert on_outcome.summary["on_policy"]["on_policy_batches"] == 0
    a, b = (load_file(o.model_dir / "model.safetensors") for o in (off_outcome, on_outcome))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_on_policy_training_lowers_the_divergence_on_sampled_tokens(
    make_job: JobFactory, models: tuple[Any, Any, Any]
) -> None:
    student, teacher, tokenizer = models
    loss = GeneralizedJSD(GeneralizedJSD.Config(alpha=0.5, beta=0.5))
    job, events = make_job(loss, max_steps=6, learning_rate=1e-2, validation=[])
    with_on_policy(job, fraction=1.0, max_new_tokens=12)
    torch.manual_seed(1)
    fixed = batcher_for(teacher, tokenizer, max_new_tokens=12).batch(student, prompts_of(tokenizer, 8), torch.ones(8))

    def divergence(model: Any) -> float:
        with torch.no_grad():
            logits = model(
                input_ids=fixed["input_ids"], attention_mask=fixed["attention_mask"], position_ids=fixed["position_ids"]
            ).logits
        inputs = LossInputs(logits, fixed["target_ids"], fixed["teacher_ids"], fixed["teacher_logprobs"])
        return float(divergence_only(loss)(inputs))

    before = divergence(student)
    outcome = HfStudentTrainer(job.student).train(job)
    after = divergence(AutoModelForCausalLM.from_pretrained(outcome.model_dir))

    assert after < 0.9 * before
    stats = outcome.summary["on_policy"]
    assert stats["batches"] == stats["on_policy_batches"] == stats["generate_calls"] == 6
    assert stats["generated_tokens"] > 0 and 0 < stats["generation_share"] < 1
    shares = events.of("metric", "train/generation_share")
    assert shares and all(0 < e["value"] < 1 for e in shares)
    assert any("generation took" in e["message"] for e in events.of("log"))


def test_on_policy_with_an_api_teacher_is_refused_before_training(make_job: JobFactory) -> None:
    job, events = make_job(GeneralizedJSD(), teacher="openai/gpt-4o-mini")
    with_on_policy(job)

    with pytest.raises(ConfigError) as caught:
        HfStudentTrainer(job.student).train(job)

    error = caught.value
    assert error.exit_code == 2 and error.where is not None and error.where.field == "teacher.model"
    assert "openai/gpt-4o-mini" in error.what and 'teacher.model = "hf/' in (error.hint or "")
    assert not job.checkpoint_dir.exists() and not job.output_dir.exists() and not events.of("metric")


def test_on_policy_with_a_loss_without_teacher_distribution_is_refused(make_job: JobFactory) -> None:
    job, _ = make_job(SftLoss())
    with_on_policy(job)

    with pytest.raises(ConfigError, match="only teach the student to imitate itself") as caught:
        HfStudentTrainer(job.student).train(job)
    assert caught.value.exit_code == 2 and "jsd" in (caught.value.hint or "")


def test_the_hf_trainer_validates_on_policy_options() -> None:
    train = HfStudentTrainer.Train.model_validate({"on_policy": {"fraction": 0.25, "seq_kd": True}})
    assert isinstance(train, HfTrainConfig) and train.on_policy == OnPolicyConfig(fraction=0.25, seq_kd=True)
    assert HfStudentTrainer.Train.model_validate({}).on_policy is None
    with pytest.raises(ValueError, match="fraction"):
        HfStudentTrainer.Train.model_validate({"on_policy": {"fraction": 1.5}})


@pytest.fixture(scope="module")
def served_teacher(tiny_teacher_dir: Path) -> Any:
    """``still serve`` over the tiny teacher, as a real server process; yields its api_base."""
    from stillhouse.testing.serving import serve_model

    with serve_model(tiny_teacher_dir, "--name", "tiny-teacher") as api_base:
        yield api_base


@pytest.mark.slow  # a server process that imports torch and loads a model
def test_a_served_teacher_scores_on_policy_samples_over_http(
    served_teacher: str, models: tuple[Any, Any, Any], make_job: JobFactory
) -> None:
    from stillhouse.plugins.students.on_policy_checks import check_on_policy
    from stillhouse.plugins.students.on_policy_served import ServedTeacher
    from stillhouse.plugins.teachers.config import LiteLLMTeacherConfig

    student, teacher, tokenizer = models
    config = LiteLLMTeacherConfig(model="openai/tiny-teacher", api_base=served_teacher)
    local, served = batcher_for(teacher, tokenizer, k=16), ServedTeacher(config, k=16)
    torch.manual_seed(2)
    batch = local.batch(student, prompts_of(tokenizer, 3), torch.ones(3))

    ids, lps, _ = served(batch, torch.device("cpu"))

    assert served.requests == 1  # the whole batch in one request
    targets = batch["target_ids"] != IGNORE_INDEX
    assert torch.equal(ids[targets], batch["teacher_ids"][targets])
    assert torch.allclose(lps[targets], batch["teacher_logprobs"][targets], atol=1e-4)
    assert (ids[~targets] == -1).all()
    # A served teacher passes the check; seq_kd (the teacher would have to sample) does not.
    check_on_policy(OnPolicyConfig(), config, GeneralizedJSD(), {"teacher_logprobs"})
    with pytest.raises(ConfigError, match="seq_kd"):
        check_on_policy(OnPolicyConfig(seq_kd=True), config, GeneralizedJSD(), {"teacher_logprobs"})
    # A server that cannot score (nothing listens there) is refused, naming the teachers that can.
    gone = LiteLLMTeacherConfig(model="openai/tiny-teacher", api_base="http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="could not score tokens") as caught:
        check_on_policy(OnPolicyConfig(), gone, GeneralizedJSD(), {"teacher_logprobs"})
    assert "still serve" in (caught.value.hint or "")


@pytest.mark.slow
def test_still_serve_refuses_malformed_scoring_requests(served_teacher: str) -> None:
    import json
    import urllib.error
    import urllib.request

    def post(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            served_teacher + "/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, body = post({"prompt": [5, 6, 7], "prompt_logprobs": 2, "max_tokens": 1})
    assert status == 200 and len(body["choices"]) == 1
    entries = body["choices"][0]["prompt_logprobs"]
    assert entries[0] is None and len(entries) == 3 and "6" in entries[1] and len(entries[1]) <= 3
    assert body["usage"]["prompt_tokens"] == 3 and body["usage"]["completion_tokens"] == 0
    for bad, message in (
        ({"prompt": "text", "prompt_logprobs": 2}, "list of token ids"),
        ({"prompt": [5, 6], "prompt_logprobs": 999}, "prompt_logprobs"),
        ({"prompt": [5, 6], "prompt_logprobs": 2, "max_tokens": 16}, "does not generate"),
    ):
        status, body = post(bad)
        assert status == 400 and message in body["error"]["message"], body
