"""Evaluating one model ("role") on a task's examples: answers, parsing, evaluator plugins, and the
per-sample and per-metric records. Used by the pipeline's evaluate stage and by ``still eval``."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stillhouse.kernel.interfaces import (
    Answer,
    ChatModel,
    EvalRole,
    EvalSubject,
    EvaluateConfig,
    Evaluator,
    Example,
    Message,
    Metric,
    Parsed,
    StudentConfig,
    StudentTrainer,
    TaskType,
    Teacher,
    TeacherRequest,
    TeacherResult,
    Timing,
    TimingConfig,
)
from stillhouse.kernel.runs import append_jsonl
from stillhouse.kernel.timing import interleaved_timing, timing_metrics


class TeacherChatModel(ChatModel):
    """A teacher plugin seen as a ChatModel: requests go through its engine without the cache, so
    latency and cost are measured, not remembered."""

    def __init__(self, teacher: Teacher) -> None:
        self.teacher = teacher

    def answer(self, prompts: Sequence[list[Message]], *, max_new_tokens: int, batch_size: int) -> list[Answer]:
        results: dict[str, TeacherResult] = {}
        requests = [TeacherRequest(f"eval-{i}", list(p)) for i, p in enumerate(prompts)]
        self.teacher.generate(requests, lambda r: results.__setitem__(r.sample_id, r), cache_dir=None)
        answers = []
        for request in requests:
            r = results.get(request.sample_id)
            if r is None or not r.ok:
                answers.append(Answer("", r.latency_ms if r else 0.0, error=(r.error if r else "no answer")))
                continue
            answers.append(Answer(r.completions[0].text, r.latency_ms, r.prompt_tokens, r.completion_tokens, r.cost_usd))
        return answers

    def time_request(self, prompt: list[Message], *, new_tokens: int) -> Timing:
        """An API model cannot be made to ignore its end of sequence through every provider: the
        request asks for ``new_tokens`` and the timing is divided by the tokens actually produced
        (``forced`` False, no time to first token: the engine does not stream)."""
        answer = self.answer([prompt], max_new_tokens=new_tokens, batch_size=1)[0]
        if answer.error:
            raise RuntimeError(answer.error)
        return Timing(answer.latency_ms, answer.completion_tokens or 1, None, forced=answer.completion_tokens == new_tokens)

    def close(self) -> None:
        self.teacher.close()


def teacher_model(teacher: Teacher) -> tuple[ChatModel, str, dict[str, Any]]:
    teacher.check()
    info = dict(teacher.describe())
    return TeacherChatModel(teacher), teacher.config.model, info


def student_model(host: Any, student: StudentConfig, model_dir: Path | None) -> tuple[ChatModel, str, dict[str, Any]]:
    trainer = host.get(StudentTrainer, student.trainer)(student)
    model = trainer.load(model_dir)
    name = str(model_dir) if model_dir else student.model
    name = getattr(model, "name", None) or name  # e.g. "(layers 0,3,..., untrained)" for a layer subset
    return model, name, {"model": name, "trained": model_dir is not None}


def chat_model_for(host: Any, model: str, *, api_base: str | None = None, api_key_env: str | None = None) -> tuple[ChatModel, str, dict[str, Any]]:
    """Any model string as a ChatModel: ``hf/...`` and local folders through the student trainer
    (in-process, batched), everything else through the litellm teacher."""
    local = model[3:] if model.startswith("hf/") else model
    if model.startswith("hf/") or Path(local).exists():
        return student_model(host, StudentConfig(model=local), None)
    teacher_cls = host.get(Teacher, "litellm")
    endpoint = {k: v for k, v in (("api_base", api_base), ("api_key_env", api_key_env)) if v is not None}
    return teacher_model(teacher_cls(teacher_cls.Config.model_validate({"model": model, "temperature": 0.0, **endpoint})))


def evaluate_role(
    role: EvalRole,
    model_name: str,
    model: ChatModel,
    task: TaskType,
    examples: list[Example],
    config: EvaluateConfig,
    host: Any,
    out_dir: Path,
    *,
    info: dict[str, Any] | None = None,
    emit: Callable[..., None] | None = None,
) -> list[Metric]:
    """Answer every example with ``model``, score with the configured evaluators, and write
    ``out_dir/<role>.jsonl`` plus one ``eval`` event per metric. Progress events (stage
    ``evaluate``, ``role``, ``phase``) follow the answering and each evaluator."""
    prompts = [task.student_messages(e) for e in examples]

    def progress(phase: str, done: int, total: int) -> None:
        if emit is not None:
            emit("progress", stage="evaluate", role=role, phase=phase, done=done, total=total)

    start = time.perf_counter()
    # In chunks of whole batches (about ten) so that progress shows; each chunk is batched as before.
    chunk = config.batch_size * max(1, -(-len(prompts) // (config.batch_size * 10)))
    answers: list[Answer] = []
    for begin in range(0, len(prompts), chunk):
        progress("answers", begin, len(prompts))
        answers.extend(
            model.answer(prompts[begin : begin + chunk], max_new_tokens=config.max_new_tokens, batch_size=config.batch_size)
        )
    progress("answers", len(prompts), len(prompts))
    info = info if info is not None else {}  # updated in place: the caller stores it with the results
    info["answer_wall_s"] = time.perf_counter() - start
    # The decoding the evaluators must repeat when they time or measure the model again.
    for key in ("batch_size", "max_new_tokens", "usd_per_hour", "rank_choices"):
        info.setdefault(key, getattr(config, key))
    parsed = [task.parse(a.text) if not a.error else Parsed(error=a.error) for a in answers]
    subject = EvalSubject(role, model_name, model, task, examples, answers, parsed, info)
    metrics: list[Metric] = []
    for i, name in enumerate(config.evaluators):
        progress(name, i, len(config.evaluators))
        evaluator_cls = host.get(Evaluator, name)
        evaluator = evaluator_cls(evaluator_cls.Config.model_validate(config.options.get(name, {})))
        metrics.extend(evaluator.evaluate(subject))
    ranked = info.pop("ranked_answers", None) or [None] * len(examples)  # set by task_metrics for label tasks
    out_dir.mkdir(parents=True, exist_ok=True)
    per_sample = out_dir / f"{role}.jsonl"
    per_sample.unlink(missing_ok=True)
    append_jsonl(
        per_sample,
        [
            {
                "sample_id": e.id,
                "role": role,
                "model": model_name,
                "prompt": p,
                "output": a.text,
                "parsed_answer": q.answer,
                "ranked_answer": r,
                "reference": e.reference,
                "latency_ms": round(a.latency_ms, 3),
                "error": a.error or q.error,
            }
            for e, p, a, q, r in zip(examples, prompts, answers, parsed, ranked, strict=True)
        ],
    )
    if emit is not None:
        for m in metrics:
            emit("eval", role=role, model=model_name, metric=m.name, value=m.value, n=m.n, reason=m.reason)
    return metrics


def time_roles(
    models: dict[str, ChatModel],
    prompts: list[list[Message]],
    config: TimingConfig,
    *,
    emit: Callable[..., None] | None = None,
) -> dict[str, list[Metric]]:
    """The timing phase: every role timed interleaved on the same prompts (see kernel.timing), as
    ``ttft_ms``, ``decode_ms_per_token`` and ``request_latency_ms`` per role."""

    def on_request(done: int, total: int, role: str) -> None:
        if emit is not None:
            emit("progress", stage="evaluate", role=role or "all", phase="timing", done=done, total=total)

    records = interleaved_timing(models, prompts, config, on_request=on_request)
    metrics = {role: timing_metrics(record, config.new_tokens) for role, record in records.items()}
    for role, model in models.items():
        # The timed model is loaded in-process even where the quality pass went through an API
        # layer (a local hf/ teacher), so its weights can be counted here for every role alike.
        weights = model.footprint().get("weights_bytes")
        if weights is not None:
            unit = "bytes (parameters × dtype size, as loaded)"
            metrics[role].append(Metric("weights_bytes", float(weights), n=1, higher_is_better=False, unit=unit))
    if emit is not None:
        for role, role_metrics in metrics.items():
            for m in role_metrics:
                emit("eval", role=role, model=getattr(models[role], "name", role), metric=m.name, value=m.value,
                     n=m.n, reason=m.reason, low=m.low, high=m.high)
    return metrics


__all__ = [
    "TeacherChatModel",
    "chat_model_for",
    "evaluate_role",
    "student_model",
    "teacher_model",
    "time_roles",
]
