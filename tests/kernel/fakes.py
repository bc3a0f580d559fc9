"""Test-only plugins: a tiny task, a scripted teacher, a memorising student, an evaluator and a
reporter. They exercise the kernel's orchestration without models or network; the real plugins
have their own tests. Registered by fixtures through PluginHost(plugins=[fakes])."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stillhouse.kernel import hookimpl
from stillhouse.kernel.errors import BudgetExceededError
from stillhouse.kernel.interfaces import (
    Answer,
    ChatModel,
    Completion,
    Estimate,
    EvalSubject,
    Evaluator,
    Example,
    FieldSpec,
    Loss,
    Message,
    Metric,
    Parsed,
    Reporter,
    ReportInput,
    StrictModel,
    StudentTrainer,
    TaskType,
    Teacher,
    TeacherRequest,
    TeacherResult,
    TrainJob,
    TrainOutcome,
    TrainPair,
    Verdict,
)
from stillhouse.kernel.teaching import CallTeacherConfig

CALLS: Counter = Counter()
HOOK_CALLS: list[tuple[str, Any]] = []


def reset() -> None:
    """Forget the calls and scripted failures of earlier tests."""
    CALLS.clear()
    HOOK_CALLS.clear()
    ScriptedTeacher.failed = set()


class EchoTask(TaskType):
    """Answer = the last word of the text; gold label optional."""

    name = "echo"
    primary_metric = "accuracy"
    fields = (FieldSpec("text", aliases=("input", "sentence")), FieldSpec("label", required=False, reference=True))

    def teacher_messages(self, example: Example, few_shot: Sequence[Example] = ()) -> list[Message]:
        shots = "".join(f"{e.inputs['text']} -> {e.reference}\n" for e in few_shot)
        return [{"role": "user", "content": shots + example.inputs["text"]}]

    def student_messages(self, example: Example) -> list[Message]:
        return [{"role": "user", "content": example.inputs["text"]}]

    def parse(self, text: str) -> Parsed:
        text = text.strip()
        return Parsed(answer=text.lower(), text=text) if text else Parsed(error="empty", text=text)

    def verify(self, example: Example, parsed: Parsed) -> Verdict:
        if example.reference is not None and parsed.answer != str(example.reference).lower():
            return Verdict(False, "label_mismatch")
        return Verdict(True)

    def student_targets(self, example: Example, parsed: Parsed) -> list[TrainPair]:
        return [TrainPair(example.id, self.student_messages(example), parsed.answer)]

    def score(self, examples: Sequence[Example], predictions: Sequence[Parsed]) -> list[Metric]:
        pairs = [(e, p) for e, p in zip(examples, predictions, strict=True) if e.reference is not None]
        if not pairs:
            return [Metric("accuracy", None, 0, reason="no references")]
        right = sum(1 for e, p in pairs if p.answer == str(e.reference).lower())
        return [Metric("accuracy", right / len(pairs), len(pairs))]


class ScriptedConfig(CallTeacherConfig):
    fail_once: list[str] = []
    price_per_call: float = 0.0
    blank: dict[str, str] = {}  # sample id -> finish reason of an empty answer


class ScriptedTeacher(Teacher):
    """Answers with the last word of the last message; can fail chosen prompts once."""

    name = "scripted"
    Config = ScriptedConfig
    failed: set[str] = set()

    def estimate(self, requests: Sequence[TeacherRequest], cache_dir: Path | None) -> Estimate:
        return Estimate(len(requests), 0, 10 * len(requests), self.config.max_tokens * len(requests), self.config.price_per_call * len(requests))

    def generate(self, requests, on_result: Callable[[TeacherResult], None], *, cache_dir, should_stop=lambda: False) -> None:
        spent = 0.0
        for request in requests:
            if should_stop():
                return
            if self.config.budget_usd is not None and spent + self.config.price_per_call > self.config.budget_usd:
                raise BudgetExceededError(f"budget of ${self.config.budget_usd} reached")
            CALLS[request.sample_id] += 1
            if request.sample_id in self.config.fail_once and request.sample_id not in ScriptedTeacher.failed:
                ScriptedTeacher.failed.add(request.sample_id)
                on_result(TeacherResult(request.sample_id, self.config.model, error="HTTP 500: scripted failure"))
                continue
            word = request.messages[-1]["content"].split()[-1]
            spent += self.config.price_per_call
            completion = Completion(word, "stop")
            if request.sample_id in self.config.blank:
                completion = Completion("", self.config.blank[request.sample_id])
            on_result(TeacherResult(request.sample_id, self.config.model, [completion], prompt_tokens=10, completion_tokens=1, cost_usd=self.config.price_per_call, latency_ms=1.0))


class MemoryModel(ChatModel):
    def __init__(self, memory: dict[str, str]) -> None:
        self.memory = memory

    def answer(self, prompts, *, max_new_tokens: int, batch_size: int) -> list[Answer]:
        return [Answer(self.memory.get(p[-1]["content"], "unknown"), 2.0, 5, 1) for p in prompts]

    def footprint(self) -> dict[str, Any]:
        return {"parameters": len(self.memory)}


class MemorisingStudent(StudentTrainer):
    """'Trains' by remembering each prompt's target; stops after ``stop_after`` pairs if asked."""

    name = "memorise"
    stop_after: int | None = None

    def train(self, job: TrainJob) -> TrainOutcome:
        CALLS["train"] += 1
        memory_path = job.checkpoint_dir / "memory.json"
        memory: dict[str, str] = json.loads(memory_path.read_text()) if job.resume and memory_path.exists() else {}
        job.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        for step, pair in enumerate(job.train, 1):
            if pair.messages[-1]["content"] in memory:
                continue
            memory[pair.messages[-1]["content"]] = pair.target
            memory_path.write_text(json.dumps(memory))
            job.emit({"type": "metric", "key": "train/loss", "value": 1.0 / step, "step": step, "context": "train"})
            if MemorisingStudent.stop_after is not None and len(memory) >= MemorisingStudent.stop_after:
                MemorisingStudent.stop_after = None
                raise KeyboardInterrupt
        job.output_dir.mkdir(parents=True, exist_ok=True)
        (job.output_dir / "memory.json").write_text(json.dumps(memory))
        return TrainOutcome(job.output_dir, len(job.train), {"remembered": len(memory)})

    def load(self, model_dir: Path | None) -> ChatModel:
        if model_dir is None:
            return MemoryModel({})
        return MemoryModel(json.loads((model_dir / "memory.json").read_text()))


class NoLoss(Loss):
    name = "sft"

    def __call__(self, inputs: Any) -> Any:
        return 0.0


class WeightedLossConfig(StrictModel):
    temperature: float = 1.0


class WeightedLoss(Loss):
    name = "weighted"
    Config = WeightedLossConfig

    def __call__(self, inputs: Any) -> Any:
        return 0.0


class TaskMetrics(Evaluator):
    name = "task_metrics"

    def evaluate(self, subject: EvalSubject) -> list[Metric]:
        return subject.task.score(subject.examples, subject.parsed)


class TextReporter(Reporter):
    name = "text"

    def write(self, report: ReportInput) -> list[Path]:
        path = report.run_dir / "report.txt"
        lines = [f"{role}: " + ", ".join(f"{m.name}={m.value}" for m in metrics) for role, metrics in report.results.items()]
        path.write_text("\n".join(lines) + "\n")
        return [path]


@hookimpl
def register_tasks(register):
    register(EchoTask)


@hookimpl
def register_teachers(register):
    register(ScriptedTeacher)


@hookimpl
def register_students(register):
    register(MemorisingStudent)


@hookimpl
def register_losses(register):
    register(NoLoss)
    register(WeightedLoss)


@hookimpl
def register_evaluators(register):
    register(TaskMetrics)


@hookimpl
def register_reporters(register):
    register(TextReporter)


@hookimpl
def run_started(run):
    HOOK_CALLS.append(("run_started", run.id))


@hookimpl
def stage_finished(run, stage, summary):
    HOOK_CALLS.append(("stage_finished", stage))


@hookimpl
def run_finished(run, status):
    HOOK_CALLS.append(("run_finished", status))


@hookimpl
def filter_sample(example, parsed, verdict, task):
    HOOK_CALLS.append(("filter_sample", example.id))
    if parsed.answer == "forbidden":
        return Verdict(False, "forbidden_word")
    return None


@hookimpl
def register_commands(cli):
    import click

    @cli.command("fake-hello")
    def fake_hello() -> None:
        """A command added by the test plugin."""
        click.echo("hello from a plugin")
