"""The files ``still plugin new`` writes, as ``string.Template`` texts (``${name}`` placeholders).

One :class:`KindTemplate` per plugin kind: a working minimal plugin module, the kind-specific part
of its test, and the config lines that use it. The shared files (pyproject, package ``__init__``,
README, the test's common part) are at the bottom. ``tests/kernel/test_scaffold.py`` installs the
generated package and runs its tests, so every template here is executed code.

Placeholders: ``plugin`` (entry-point and registered name), ``dist`` (distribution name),
``package`` (import name), ``Class`` (class name prefix), ``kind``, ``hook``, ``module``
(the plugin module's name), ``cls`` (the plugin class), ``version`` (Stillhouse's).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KindTemplate:
    suffix: str
    """Class name suffix: ``Task``, ``Teacher`` ..."""
    module: str
    """Name of the plugin module inside the package."""
    hook: str
    summary: str
    code: str
    test_imports: str
    """Imports of the kind's tests (they go to the top of the test file)."""
    tests: str
    usage: str
    """Pipeline-config lines that use the plugin (README)."""


TASK = KindTemplate(
    suffix="Task",
    module="task",
    hook="register_tasks",
    summary="a text classification task type: the teacher picks one of a configured set of labels",
    code=r'''"""The ``${plugin}`` task type: classify a text into one of a configured set of labels.

The teacher is asked for "Answer: <label>"; its answer is accepted when it names exactly one label
and (where the data has one) agrees with the gold label. Scored by accuracy.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import Field, field_validator
from stillhouse.kernel.interfaces import (
    Example,
    FieldSpec,
    Message,
    Metric,
    Parsed,
    TaskConfig,
    TaskType,
    TrainPair,
    Verdict,
)


class ${Class}Config(TaskConfig):
    """``[task_options]`` of ``task = "${plugin}"``."""

    labels: list[str] = Field(default_factory=lambda: ["yes", "no"], min_length=2, description="The labels to choose from.")
    rationale: str = Field(
        "drop", pattern="^(keep|drop)$$", description="Student target: the teacher's reasoning and label (keep), or the label (drop)."
    )

    @field_validator("labels")
    @classmethod
    def _normalise(cls, labels: list[str]) -> list[str]:
        lowered = [label.strip().lower() for label in labels]
        if len(set(lowered)) != len(lowered) or not all(lowered):
            raise ValueError("labels must be distinct and non-empty")
        return lowered


class ${Class}Task(TaskType):
    name = "${plugin}"
    description = "Classify a text into one of the configured labels."
    Config = ${Class}Config
    primary_metric = "accuracy"
    fields = (
        FieldSpec("text", aliases=("sentence", "input")),
        FieldSpec("label", aliases=("answer", "gold"), required=False, reference=True),
    )

    config: ${Class}Config

    def _instructions(self) -> str:
        labels = ", ".join(self.config.labels)
        base = self.config.system_prompt or f"Classify the text. The label is one of: {labels}."
        if self.config.ask_rationale:
            return base + ' Explain briefly after "Reasoning:", then give the label on the last line after "Answer:".'
        return base + ' Reply with "Answer: <label>".'

    def teacher_messages(self, example: Example, few_shot: Sequence[Example] = ()) -> list[Message]:
        messages: list[Message] = [{"role": "system", "content": self._instructions()}]
        for shot in few_shot:
            messages.append({"role": "user", "content": shot.inputs["text"]})
            messages.append({"role": "assistant", "content": f"Answer: {shot.reference}"})
        messages.append({"role": "user", "content": example.inputs["text"]})
        return messages

    def student_messages(self, example: Example) -> list[Message]:
        return [{"role": "user", "content": example.inputs["text"]}]

    def parse(self, text: str) -> Parsed:
        reasoning, _, answer = text.rpartition("Answer:") if "Answer:" in text else ("", "", text)
        found = {label for label in self.config.labels if re.search(rf"\b{re.escape(label)}\b", answer, re.IGNORECASE)}
        if len(found) != 1:
            return Parsed(error="unparseable" if not found else "ambiguous", text=text)
        rationale = reasoning.replace("Reasoning:", "").strip() or None
        return Parsed(answer=found.pop(), rationale=rationale, text=text)

    def verify(self, example: Example, parsed: Parsed) -> Verdict:
        if example.reference is not None and parsed.answer != str(example.reference).strip().lower():
            return Verdict(False, "label_mismatch")
        return Verdict(True)

    def student_targets(self, example: Example, parsed: Parsed) -> list[TrainPair]:
        target = str(parsed.answer)
        if self.config.rationale == "keep" and parsed.rationale:
            target = f"Reasoning: {parsed.rationale}\nAnswer: {parsed.answer}"
        return [TrainPair(example.id, self.student_messages(example), target)]

    def score(self, examples: Sequence[Example], predictions: Sequence[Parsed]) -> list[Metric]:
        pairs = [(e, p) for e, p in zip(examples, predictions, strict=True) if e.reference is not None]
        if not pairs:
            return [Metric("accuracy", None, reason="no example has a gold label")]
        right = sum(1 for e, p in pairs if p.ok and p.answer == str(e.reference).strip().lower())
        return [Metric("accuracy", right / len(pairs), len(pairs))]
''',
    test_imports=r'''from stillhouse.kernel.interfaces import Example
''',
    tests=r'''def make_task(make_host, **options):
    host = make_host(${package}, entry_points=False)
    cls = host.get("${kind}", "${plugin}")
    return cls(cls.Config.model_validate(options))


def test_reads_rows_by_alias_and_parses_answers(make_host):
    task = make_task(make_host, labels=["spam", "ham"])
    example = task.example_from_row({"sentence": "WIN A PRIZE NOW", "label": "spam"}, split="train", index=0, source="d.jsonl:1")
    assert example.inputs == {"text": "WIN A PRIZE NOW"} and example.reference == "spam"
    parsed = task.parse("Reasoning: prize offers are typical spam.\nAnswer: Spam")
    assert parsed.answer == "spam" and parsed.rationale == "prize offers are typical spam."
    assert task.parse("spam or ham, hard to say").error == "ambiguous"
    assert not task.parse("no idea").ok


def test_verifies_against_gold_and_scores(make_host):
    task = make_task(make_host, labels=["spam", "ham"], rationale="keep")
    gold = Example("1", "train", {"text": "lunch at noon?"}, reference="ham")
    good, bad = task.parse("Answer: ham"), task.parse("Answer: spam")
    assert task.verify(gold, good).accepted
    assert task.verify(gold, bad).reason == "label_mismatch"
    (pair,) = task.student_targets(gold, task.parse("Reasoning: a normal question\nAnswer: ham"))
    assert pair.target == "Reasoning: a normal question\nAnswer: ham"
    (accuracy,) = task.score([gold, gold], [good, bad])
    assert (accuracy.name, accuracy.value, accuracy.n) == ("accuracy", 0.5, 2)


def test_options_are_validated(make_host):
    with pytest.raises(ValidationError):
        make_task(make_host, labels=["a", "a"])
    with pytest.raises(ValidationError):
        make_task(make_host, lables=["a", "b"])
''',
    usage=r'''task = "${plugin}"

[task_options]
labels = ["yes", "no"]''',
)


TEACHER = KindTemplate(
    suffix="Teacher",
    module="teacher",
    hook="register_teachers",
    summary="a teacher backend that calls an OpenAI-compatible chat completions endpoint over HTTP",
    code=r'''"""The ``${plugin}`` teacher: an OpenAI-compatible ``/chat/completions`` endpoint called over HTTP.

A starting point for a teacher behind your own API: requests run in a thread pool
(``concurrency``), failures are retried (``max_retries``) and then reported as results with an
error, token counts come from the response's ``usage``. It keeps no response cache.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field
from stillhouse.kernel.errors import BudgetExceededError, ConfigError, Location
from stillhouse.kernel.interfaces import (
    Completion,
    Estimate,
    Teacher,
    TeacherConfig,
    TeacherRequest,
    TeacherResult,
)

RETRYABLE = {408, 409, 429, 500, 502, 503, 504}


class ${Class}Config(TeacherConfig):
    """``[teacher]`` with ``backend = "${plugin}"``."""

    backend: str = "${plugin}"
    path: str = Field("/chat/completions", description="Path of the chat completions endpoint under api_base.")


class ${Class}Teacher(Teacher):
    name = "${plugin}"
    description = "Any OpenAI-compatible chat completions endpoint, called over HTTP."
    Config = ${Class}Config

    config: ${Class}Config

    def check(self) -> None:
        if not self.config.api_base:
            raise ConfigError(
                "this teacher needs the endpoint's URL",
                where=Location(field="teacher.api_base"),
                hint='set teacher.api_base = "http://host:port/v1"',
            )
        if self.config.api_key_env and not os.environ.get(self.config.api_key_env):
            raise ConfigError(
                f"the environment variable {self.config.api_key_env} (teacher.api_key_env) is not set",
                where=Location(field="teacher.api_key_env"),
            )

    def _cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        price = self.config.price
        if price is None:
            return None  # unknown, never 0
        return (prompt_tokens * price.input_per_mtok + completion_tokens * price.output_per_mtok) / 1e6

    def estimate(self, requests: Sequence[TeacherRequest], cache_dir: Path | None) -> Estimate:
        # ~4 characters a token: good enough to size a budget before calling anything
        prompt = sum(len(m["content"]) // 4 + 4 for r in requests for m in r.messages)
        completion = len(requests) * self.config.max_tokens * self.config.samples
        return Estimate(len(requests), 0, prompt, completion, self._cost(prompt, completion), note="~4 characters per token")

    def generate(
        self,
        requests: Sequence[TeacherRequest],
        on_result: Callable[[TeacherResult], None],
        *,
        cache_dir: Path | None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        from concurrent.futures import ThreadPoolExecutor, as_completed

        import httpx

        self.check()
        headers = {}
        if self.config.api_key_env:
            headers["Authorization"] = f"Bearer {os.environ[self.config.api_key_env]}"
        spent = 0.0
        with (
            httpx.Client(base_url=self.config.api_base or "", headers=headers, timeout=self.config.timeout) as client,
            ThreadPoolExecutor(self.config.concurrency) as pool,
        ):
            futures = [pool.submit(self._ask, client, request) for request in requests]
            try:
                for future in as_completed(futures):
                    result = future.result()
                    on_result(result)  # from the calling thread, as the interface asks
                    spent += result.cost_usd or 0.0
                    if self.config.budget_usd is not None and spent > self.config.budget_usd:
                        raise BudgetExceededError(f"spent $${spent:.4f} of the $${self.config.budget_usd} budget")
                    if should_stop():
                        break
            finally:
                for future in futures:
                    future.cancel()

    def _ask(self, client: Any, request: TeacherRequest) -> TeacherResult:
        import httpx

        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": request.messages,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "n": self.config.samples,
        }
        if self.config.seed is not None:
            body["seed"] = self.config.seed
        if self.config.stop:
            body["stop"] = self.config.stop
        start = time.perf_counter()
        error = "no attempt"
        for attempt in range(self.config.max_retries + 1):
            try:
                response = client.post(self.config.path, json=body)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return self._result(request, response.json(), start)
                error = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code not in RETRYABLE:
                    break
            time.sleep(min(2.0**attempt * 0.1, 5.0))
        latency = (time.perf_counter() - start) * 1000
        return TeacherResult(request.sample_id, self.config.model, error=error, latency_ms=latency, cost_usd=None)

    def _result(self, request: TeacherRequest, data: dict[str, Any], start: float) -> TeacherResult:
        completions = [
            Completion(choice["message"].get("content") or "", choice.get("finish_reason")) for choice in data.get("choices", [])
        ]
        usage = data.get("usage") or {}
        prompt_tokens, completion_tokens = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        return TeacherResult(
            request.sample_id,
            self.config.model,
            completions,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=self._cost(prompt_tokens, completion_tokens),
            latency_ms=(time.perf_counter() - start) * 1000,
            error=None if completions else "the response had no choices",
        )
''',
    test_imports=r'''from stillhouse.kernel.errors import ConfigError
from stillhouse.kernel.interfaces import TeacherRequest
''',
    tests=r'''def make_teacher(make_host, **options):
    host = make_host(${package}, entry_points=False)
    cls = host.get("${kind}", "${plugin}")
    return cls(cls.Config.model_validate({"model": "tiny", "max_retries": 0, **options}))


def test_answers_through_a_real_openai_compatible_server(make_host, openai_server):
    """``openai_server`` serves a real tiny model on 127.0.0.1 (stillhouse.testing)."""
    teacher = make_teacher(make_host, api_base=openai_server, temperature=0.0, max_tokens=8, concurrency=2)
    requests = [TeacherRequest(f"s{i}", [{"role": "user", "content": f"Count to {i}."}]) for i in range(3)]
    results = []
    teacher.generate(requests, results.append, cache_dir=None)
    assert sorted(r.sample_id for r in results) == ["s0", "s1", "s2"]
    for result in results:
        assert result.ok, result.error
        assert result.completion_tokens > 0 and result.prompt_tokens > 0 and result.latency_ms > 0
        assert result.cost_usd is None  # no price configured: unknown, not free


def test_a_failing_endpoint_becomes_an_error_result(make_host, openai_server):
    teacher = make_teacher(make_host, api_base=openai_server, path="/no-such-endpoint")
    results = []
    teacher.generate([TeacherRequest("s0", [{"role": "user", "content": "hi"}])], results.append, cache_dir=None)
    (result,) = results
    assert not result.ok and result.error.startswith("HTTP 404")


def test_estimate_and_check(make_host):
    teacher = make_teacher(make_host, price={"input_per_mtok": 1.0, "output_per_mtok": 2.0}, max_tokens=10)
    estimate = teacher.estimate([TeacherRequest("s0", [{"role": "user", "content": "x" * 40}])], None)
    assert (estimate.calls, estimate.prompt_tokens, estimate.completion_tokens) == (1, 14, 10)
    assert estimate.cost_usd == pytest.approx((14 * 1.0 + 10 * 2.0) / 1e6)
    with pytest.raises(ConfigError):
        teacher.check()  # no api_base
    with pytest.raises(ValidationError):
        make_teacher(make_host, temprature=0.1)
''',
    usage=r'''[teacher]
backend = "${plugin}"
model = "my-model"
api_base = "http://127.0.0.1:8000/v1"
api_key_env = "MY_API_KEY"        # the variable's name, never the key''',
)


STUDENT = KindTemplate(
    suffix="Trainer",
    module="trainer",
    hook="register_students",
    summary="a student trainer: full fine-tuning of a local transformers model with a plain PyTorch loop",
    code=r'''"""The ``${plugin}`` student trainer: full fine-tuning with a plain PyTorch loop.

A starting point for custom training: each TrainPair becomes prompt tokens (no loss) followed by
target tokens, the configured loss plugin gets the batch as ``LossInputs``, AdamW steps. It keeps
no checkpoints (a resumed run trains again) and feeds losses no teacher signals, so it accepts only
losses that need none (e.g. ``sft``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import model_validator
from stillhouse.kernel.errors import ConfigError, Location
from stillhouse.kernel.interfaces import (
    Answer,
    ChatModel,
    Message,
    StudentConfig,
    StudentTrainer,
    TrainJob,
    TrainOutcome,
    TrainPair,
)


class ${Class}Config(StudentConfig):
    """``[student]`` with ``trainer = "${plugin}"``."""

    trainer: str = "${plugin}"

    @model_validator(mode="after")
    def _supported(self) -> ${Class}Config:
        if self.init != "pretrained" or self.lora is not None:
            raise ValueError('this trainer fine-tunes the whole pretrained model: use init = "pretrained" and no [student.lora]')
        return self


class LocalChatModel(ChatModel):
    """A local model answering chat prompts greedily in batches."""

    def __init__(self, spec: str, config: ${Class}Config) -> None:
        from stillhouse.plugins.hf_models import load_causal_lm

        self.spec = spec
        self.model, self.tokenizer = load_causal_lm(spec, dtype=config.dtype, device=config.device)

    def answer(self, prompts: Sequence[list[Message]], *, max_new_tokens: int, batch_size: int) -> list[Answer]:
        from stillhouse.plugins.hf_models import generate_chat

        outputs = generate_chat(self.model, self.tokenizer, list(prompts), max_new_tokens=max_new_tokens, batch_size=batch_size)
        return [Answer(o.text, o.latency_ms, o.prompt_tokens, o.completion_tokens) for o in outputs]

    def footprint(self) -> dict[str, Any]:
        from stillhouse.plugins.hf_models import count_parameters, folder_bytes

        return {"parameters": count_parameters(self.model), "bytes_on_disk": folder_bytes(self.spec)}

    def close(self) -> None:
        self.model = None


def encode(tokenizer: Any, pair: TrainPair, max_length: int) -> tuple[list[int], list[int]]:
    """Token ids and labels of one pair: the prompt is masked (-100), the target is learnt."""
    prompt = tokenizer.apply_chat_template(pair.messages, tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(pair.target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    prompt_ids = prompt_ids[-max(max_length - len(target_ids), 1) :]  # cut the prompt's start, never the target
    ids = (prompt_ids + target_ids)[:max_length]
    return ids, ([-100] * len(prompt_ids) + target_ids)[:max_length]


class ${Class}Trainer(StudentTrainer):
    name = "${plugin}"
    description = "Full fine-tuning with a plain PyTorch loop."
    Config = ${Class}Config

    config: ${Class}Config

    def train(self, job: TrainJob) -> TrainOutcome:
        import torch
        from stillhouse.plugins.hf_models import load_causal_lm

        if job.loss.requires:
            raise ConfigError(
                f"loss '{job.loss.name}' needs {', '.join(sorted(job.loss.requires))}, which this trainer does not provide",
                where=Location(field="train.loss"),
                hint='use loss = "sft"',
            )
        config = job.train_config
        torch.manual_seed(config.seed)
        model, tokenizer = load_causal_lm(self.config.model, dtype=self.config.dtype, device=self.config.device)
        model.train()
        device = next(model.parameters()).device
        encoded = [self._encode(tokenizer, pair) for pair in job.train]
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        total = config.max_steps or math.ceil(math.ceil(len(encoded) / config.batch_size) * config.num_epochs)
        step, loss_value = 0, float("nan")
        while step < total and not job.should_stop():
            order = torch.randperm(len(encoded)).tolist()
            for start in range(0, len(order), config.batch_size):
                batch = [encoded[i] for i in order[start : start + config.batch_size]]
                loss = self._loss(model, job, batch, tokenizer.pad_token_id, device)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                step, loss_value = step + 1, loss.item()
                job.emit({"type": "metric", "key": "train/loss", "value": loss_value, "step": step, "context": "train"})
                job.emit({"type": "progress", "stage": "train", "done": step, "total": total})
                if step >= total or job.should_stop():
                    break
        summary: dict[str, Any] = {"final_train_loss": loss_value}
        if job.validation:
            summary["eval_loss"] = self._validation_loss(model, job, tokenizer, device)
            job.emit({"type": "metric", "key": "eval/loss", "value": summary["eval_loss"], "step": step, "context": "validation"})
        job.output_dir.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(job.output_dir)
        tokenizer.save_pretrained(job.output_dir)
        return TrainOutcome(job.output_dir, step, summary)

    def _encode(self, tokenizer: Any, pair: TrainPair) -> tuple[list[int], list[int], float]:
        return (*encode(tokenizer, pair, self.config.max_length), pair.weight)

    def _loss(self, model: Any, job: TrainJob, batch: list[tuple[list[int], list[int], float]], pad_id: int, device: Any) -> Any:
        import torch
        from stillhouse.plugins.losses.inputs import LossInputs

        width = max(len(ids) for ids, _, _ in batch)
        ids = torch.tensor([i + [pad_id] * (width - len(i)) for i, _, _ in batch], device=device)
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab, _ in batch], device=device)
        attention = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _, _ in batch], device=device)
        weights = torch.tensor([[w] * width for _, _, w in batch], device=device, dtype=torch.float32)
        logits = model(input_ids=ids, attention_mask=attention).logits
        # position t predicts token t + 1: shift once here, as LossInputs expects
        return job.loss(LossInputs(logits=logits[:, :-1], labels=labels[:, 1:], weights=weights[:, 1:]))

    def _validation_loss(self, model: Any, job: TrainJob, tokenizer: Any, device: Any) -> float:
        import torch

        model.eval()
        with torch.no_grad():
            batches = [[self._encode(tokenizer, pair)] for pair in job.validation]
            losses = [float(self._loss(model, job, batch, tokenizer.pad_token_id, device)) for batch in batches]
        return sum(losses) / len(losses)

    def load(self, model_dir: Path | None) -> ChatModel:
        return LocalChatModel(str(model_dir) if model_dir is not None else self.config.model, self.config)
''',
    test_imports=r'''from stillhouse.kernel.interfaces import TrainConfig, TrainJob, TrainPair
from stillhouse.plugins import losses as builtin_losses
''',
    tests=r'''PAIRS = [
    TrainPair(f"s{i}", [{"role": "user", "content": f"Is {word} a colour?"}], answer)
    for i, (word, answer) in enumerate([("red", "yes"), ("table", "no"), ("blue", "yes"), ("chair", "no")])
]


def test_trains_a_real_tiny_model_and_loads_it(make_host, tiny_model_dir, tmp_path):
    host = make_host(${package}, builtin_losses, entry_points=False)
    cls = host.get("${kind}", "${plugin}")
    trainer = cls(cls.Config.model_validate({"model": str(tiny_model_dir), "device": "cpu"}))
    events = []
    job = TrainJob(
        run_dir=tmp_path,
        output_dir=tmp_path / "student",
        checkpoint_dir=tmp_path / "checkpoints",
        train=PAIRS,
        validation=PAIRS[:1],
        student=trainer.config,
        train_config=TrainConfig(learning_rate=3e-3, batch_size=2, num_epochs=8),
        loss=host.get("loss", "sft")(),
        teacher=None,
        emit=events.append,
    )
    outcome = trainer.train(job)
    losses = [e["value"] for e in events if e.get("key") == "train/loss"]
    assert outcome.steps == 16 == len(losses)
    assert sum(losses[-4:]) < sum(losses[:4])  # it learnt the four answers
    assert "eval_loss" in outcome.summary and (outcome.model_dir / "config.json").exists()

    student = trainer.load(outcome.model_dir)
    answers = student.answer([p.messages for p in PAIRS], max_new_tokens=4, batch_size=4)
    assert len(answers) == 4 and all(a.latency_ms > 0 and a.error is None for a in answers)
    assert student.footprint()["parameters"] > 0
    assert trainer.load(None).answer([PAIRS[0].messages], max_new_tokens=2, batch_size=1)[0].error is None


def test_rejects_what_it_cannot_do(make_host, tiny_model_dir):
    host = make_host(${package}, entry_points=False)
    cls = host.get("${kind}", "${plugin}")
    with pytest.raises(ValidationError):
        cls.Config.model_validate({"model": str(tiny_model_dir), "init": "teacher-layers"})
''',
    usage=r'''[student]
trainer = "${plugin}"
model = "HuggingFaceTB/SmolLM2-135M-Instruct"   # hub id or local folder''',
)


LOSS = KindTemplate(
    suffix="Loss",
    module="loss",
    hook="register_losses",
    summary="a distillation loss: focal cross-entropy on the teacher's text",
    code=r'''"""The ``${plugin}`` loss: focal cross-entropy on the teacher's text (Lin et al., 2017).

Each target token's cross-entropy is scaled by ``(1 - p)^gamma``, where p is the student's
probability of that token: tokens the student already predicts well count less. ``gamma = 0`` is
plain cross-entropy. Needs no teacher probabilities, so it works with any teacher.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field
from stillhouse.kernel.interfaces import Loss, StrictModel

if TYPE_CHECKING:  # torch is imported where it is used: `still --help` imports this module
    import torch
    from stillhouse.plugins.losses.inputs import LossInputs


class ${Class}Config(StrictModel):
    """``[train] loss_options`` of ``loss = "${plugin}"``."""

    gamma: float = Field(2.0, ge=0, le=10, description="Focusing strength; 0 is plain cross-entropy.")


class ${Class}Loss(Loss):
    name = "${plugin}"
    description = "Focal cross-entropy on the teacher's text."
    Config = ${Class}Config

    config: ${Class}Config

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        import torch.nn.functional as F

        mask = inputs.mask
        logits = inputs.logits[mask].float()
        labels = inputs.labels[mask]
        log_p = F.log_softmax(logits, dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
        per_token = -((1 - log_p.exp()) ** self.config.gamma) * log_p
        if inputs.weights is not None:
            per_token = per_token * inputs.weights[mask].float()
        # divide by the trainer's token count when given, so accumulation and packing don't change the scale
        normaliser = inputs.num_items if inputs.num_items is not None else max(int(labels.numel()), 1)
        # `logits.sum() * 0` keeps the loss attached to the graph even when a batch has no target
        return inputs.logits.sum() * 0.0 + per_token.sum() / normaliser
''',
    test_imports=r'''import torch
import torch.nn.functional as F
from stillhouse.plugins.losses.inputs import LossInputs
''',
    tests=r'''def make_loss(make_host, **options):
    host = make_host(${package}, entry_points=False)
    cls = host.get("${kind}", "${plugin}")
    return cls(cls.Config.model_validate(options))


def batch(requires_grad=False):
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11, requires_grad=requires_grad)
    labels = torch.randint(0, 11, (2, 5))
    labels[0, :2] = -100  # prompt positions carry no loss
    return logits, labels


def test_gamma_zero_is_cross_entropy(make_host):
    logits, labels = batch()
    loss = make_loss(make_host, gamma=0.0)(LossInputs(logits=logits, labels=labels))
    expected = F.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1), ignore_index=-100)
    assert torch.allclose(loss, expected)


def test_focusing_lowers_the_loss_and_weights_and_num_items_scale_it(make_host):
    logits, labels = batch()
    focal = make_loss(make_host, gamma=2.0)
    plain = make_loss(make_host, gamma=0.0)(LossInputs(logits=logits, labels=labels))
    base = focal(LossInputs(logits=logits, labels=labels))
    assert 0 < base < plain
    doubled = focal(LossInputs(logits=logits, labels=labels, weights=torch.full((2, 5), 2.0)))
    assert torch.allclose(doubled, 2 * base)
    n = int((labels != -100).sum())
    assert torch.allclose(focal(LossInputs(logits=logits, labels=labels, num_items=2 * n)), base / 2)


def test_gradients_reach_the_logits(make_host):
    logits, labels = batch(requires_grad=True)
    make_loss(make_host)(LossInputs(logits=logits, labels=labels)).backward()
    assert logits.grad is not None and logits.grad[0, :2].abs().sum() == 0 and logits.grad[1].abs().sum() > 0
    with pytest.raises(ValidationError):
        make_loss(make_host, gama=1.0)
''',
    usage=r'''[train]
loss = "${plugin}"
loss_options = { gamma = 2.0 }''',
)


EVALUATOR = KindTemplate(
    suffix="Evaluator",
    module="evaluator",
    hook="register_evaluators",
    summary="an evaluator: how long the model's answers are, and how often they are empty",
    code=r'''"""The ``${plugin}`` evaluator: answer length in words and the share of empty answers."""

from __future__ import annotations

from stillhouse.kernel.interfaces import EvalSubject, Evaluator, Metric, mean


class ${Class}Evaluator(Evaluator):
    name = "${plugin}"
    description = "Mean answer length in words, and the share of empty or failed answers."

    def evaluate(self, subject: EvalSubject) -> list[Metric]:
        if not subject.answers:
            reason = "the model gave no answers"
            return [
                Metric("answer_words_mean", None, reason=reason, higher_is_better=None, unit="words"),
                Metric("empty_answer_rate", None, reason=reason, higher_is_better=False),
            ]
        answered = [a for a in subject.answers if a.error is None]
        words = [len(a.text.split()) for a in answered]
        empty = sum(1 for a in subject.answers if a.error is not None or not a.text.strip())
        n = len(subject.answers)
        mean_words = mean(words)
        return [
            Metric(
                "answer_words_mean",
                mean_words,
                len(words),
                reason=None if mean_words is not None else "every answer failed",
                higher_is_better=None,
                unit="words",
            ),
            Metric("empty_answer_rate", empty / n, n, higher_is_better=False),
        ]
''',
    test_imports=r'''from stillhouse.kernel.interfaces import Answer, EvalSubject
''',
    tests=r'''def evaluate(make_host, answers):
    host = make_host(${package}, entry_points=False)
    evaluator = host.get("${kind}", "${plugin}")()
    subject = EvalSubject("student", "tiny", None, None, [], answers, [])
    return {m.name: m for m in evaluator.evaluate(subject)}


def test_measures_length_and_empty_answers(make_host):
    answers = [Answer("yes it is", 5.0), Answer("", 4.0), Answer("no", 3.0), Answer("", 1.0, error="timeout")]
    metrics = evaluate(make_host, answers)
    assert metrics["answer_words_mean"].value == pytest.approx(4 / 3) and metrics["answer_words_mean"].n == 3
    assert metrics["empty_answer_rate"].value == 0.5 and metrics["empty_answer_rate"].n == 4


def test_nothing_measured_is_none_with_a_reason(make_host):
    metrics = evaluate(make_host, [])
    assert all(m.value is None and m.reason for m in metrics.values())
    config_model = make_host(${package}, entry_points=False).get("${kind}", "${plugin}").Config
    with pytest.raises(ValidationError):
        config_model.model_validate({"unknown": 1})
''',
    usage=r'''[evaluate]
evaluators = ["task_metrics", "latency", "${plugin}"]''',
)


REPORTER = KindTemplate(
    suffix="Reporter",
    module="reporter",
    hook="register_reporters",
    summary="a reporter: a compact JSON summary of each role's metrics and the student's retention",
    code=r'''"""The ``${plugin}`` reporter: ``summary.json`` with each role's metrics and the student's retention
of the teacher's primary metric."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stillhouse.kernel.interfaces import Reporter, ReportInput


class ${Class}Reporter(Reporter):
    name = "${plugin}"
    description = "summary.json: metrics per role and the student's retention of the teacher's score."

    def write(self, report: ReportInput) -> list[Path]:
        roles = {role: {m.name: m.value for m in metrics} for role, metrics in report.results.items()}
        primary = report.primary_metric
        teacher = roles.get("teacher", {}).get(primary)
        student = roles.get("student", {}).get(primary)
        retention: dict[str, Any] = {"value": None, "reason": "needs the teacher's and the student's " + primary}
        if teacher and student is not None:
            retention = {"value": student / teacher, "reason": None}
        summary = {"run_id": report.run_id, "primary_metric": primary, "roles": roles, "retention": retention}
        path = report.run_dir / "summary.json"
        path.write_text(json.dumps(summary, indent=2))
        return [path]
''',
    test_imports=r'''from stillhouse.kernel.interfaces import Metric, ReportInput
''',
    tests=r'''def write(make_host, tmp_path, results):
    host = make_host(${package}, entry_points=False)
    reporter = host.get("${kind}", "${plugin}")()
    return reporter.write(ReportInput("run-1", tmp_path, {}, results, "accuracy"))


def test_writes_metrics_and_retention(make_host, tmp_path):
    results = {
        "teacher": [Metric("accuracy", 0.8, 10)],
        "student": [Metric("accuracy", 0.6, 10), Metric("latency_p50_ms", 12.0, 10)],
    }
    (path,) = write(make_host, tmp_path, results)
    summary = json.loads(path.read_text())
    assert path == tmp_path / "summary.json"
    assert summary["roles"]["student"] == {"accuracy": 0.6, "latency_p50_ms": 12.0}
    assert summary["retention"]["value"] == pytest.approx(0.75)


def test_retention_without_a_teacher_is_unknown(make_host, tmp_path):
    (path,) = write(make_host, tmp_path, {"student": [Metric("accuracy", 0.6, 10)]})
    retention = json.loads(path.read_text())["retention"]
    assert retention["value"] is None and "teacher" in retention["reason"]
    config_model = make_host(${package}, entry_points=False).get("${kind}", "${plugin}").Config
    with pytest.raises(ValidationError):
        config_model.model_validate({"unknown": 1})
''',
    usage=r'''[report]
reporters = ["markdown", "${plugin}"]''',
)


KINDS: dict[str, KindTemplate] = {
    "task": TASK,
    "teacher": TEACHER,
    "student": STUDENT,
    "loss": LOSS,
    "evaluator": EVALUATOR,
    "reporter": REPORTER,
}


# -- files every kind shares --------------------------------------------------------------------

PYPROJECT = '''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "${dist}"
version = "0.1.0"
description = "A Stillhouse plugin: ${summary}."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["stillhouse>=${version}"]

# How Stillhouse finds the plugin: the entry-point name is the plugin's name in `still plugins`.
[project.entry-points.stillhouse]
${plugin} = "${package}"

[tool.setuptools]
packages = ["${package}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "-ra --strict-markers"
'''

INIT = '''"""${dist}: ${summary}.

Stillhouse loads this module through the ``stillhouse`` entry point and calls its hooks. Keep it
light: ``still --help`` imports it, so the plugin module is imported inside the hook.
"""

from __future__ import annotations

from typing import Any

from stillhouse.kernel import hookimpl


@hookimpl
def ${hook}(register: Any) -> None:
    from ${package}.${module} import ${cls}

    register(${cls})
'''

TEST_HEADER = '''"""Tests of the ${plugin} ${kind} plugin, with the fixtures of the ``stillhouse.testing`` pytest plugin."""

import json
import subprocess
import sys

${third_party_imports}

import ${package}


def test_the_hook_registers_the_plugin(make_host):
    host = make_host(${package}, entry_points=False)
    assert not host.failures
    assert host.names("${kind}") == ["${plugin}"]
    assert host.get("${kind}", "${plugin}").__name__ == "${cls}"


def test_the_installed_package_shows_up_in_still_plugins():
    """The entry point works: needs the package installed (pip install -e .)."""
    done = subprocess.run(
        [sys.executable, "-m", "stillhouse.kernel.cli", "plugins", "--json"], capture_output=True, text=True, check=True
    )
    listing = json.loads(done.stdout)
    row = next((p for p in listing["plugins"] if p["name"] == "${plugin}"), None)
    assert row is not None, f"'${plugin}' is not installed (pip install -e .); failures: {listing['failures']}"
    assert row["package"] == "${dist}" and row["provides"] == {"${kind}": ["${plugin}"]}


'''

README = '''# ${dist}

A Stillhouse plugin: ${summary}.

Generated by `still plugin new ${plugin} --kind ${kind}`; the ${kind} lives in
`${package}/${module}.py` (class `${cls}`), and `${package}/__init__.py` registers it through the
`${hook}` hook. Stillhouse finds the package through the `stillhouse` entry point in
`pyproject.toml`. See Stillhouse's `docs/plugins.md` for every hook and interface.

## Install and check

```bash
pip install -e .
still plugins          # lists ${plugin} (${dist}), providing ${kind}: ${plugin}
pytest                 # the tests use the stillhouse.testing fixtures
```

## Use it in a pipeline config

```toml
${usage}
```
'''
