"""Several teachers and a judge: ``[[teachers]]``, ``[ensemble]`` and ``judge = {...}``.

Each teacher of a ``[[teachers]]`` list is a plugin of its backend with its own config, so each gets
the teaching engine's cache, budget and cost accounting (:mod:`stillhouse.kernel.teaching`). Its
answers are stored in the run folder under its name (``teacher/outputs.jsonl``); in vote mode the
teachers answer at the same time, one thread each. The filter stage combines them per sample:

- answers that are labels, numbers or spans (nli, classification, math, qa): a weighted vote across
  teachers and their samples (each teacher's weight split evenly over its completions), compared by
  the task's ``answer_key``; the winner's vote share is the sample's confidence, and
  ``ensemble.min_agreement`` rejects a disputed sample (reason ``teachers_disagree``). The winning
  answer is then verified like a one-teacher answer.
- free text (tasks with ``free_text = True``: summarization, conversation): best-of, the answer the
  task's verifier accepts with the highest verdict confidence (then the heaviest teacher), or with
  ``ensemble.best_of = "judge"`` the one the judge scores highest (or, with ``judge.mode =
  "pairwise"``, the one that wins most comparisons side by side, each pair asked in both orders).
- ``ensemble.mode = "cascade"``: the teachers are asked in list order (cheap first); a row goes to
  the next teacher only when the previous one's answer fails verification or its samples disagree
  (majority share below ``ensemble.escalate_below``). The combined answer is the last one asked.
  The end of generate says what the cascade cost against asking the last teacher everything.

The judge (``judge = { model = ..., rubric = ..., threshold = ... }``, any option of a teacher of
its backend) scores each accepted answer in a call of its own (pointwise: it never sees two answers,
so it has no position to prefer, and never a teacher's name) and stores the score and its one-line
reason with the sample; a score below ``threshold`` rejects it (``judge_below_threshold``).
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from stillhouse.kernel.events import teacher_call_fields
from stillhouse.kernel.interfaces import (
    Estimate,
    Example,
    NamedTeacher,
    Parsed,
    StrictModel,
    TaskType,
    Teacher,
    TeacherConfig,
    TeacherRequest,
    TeacherResult,
)
from stillhouse.kernel.run_folder import SampleRecord, StoredTeacherResult
from stillhouse.kernel.teaching.config import CallTeacherConfig
from stillhouse.kernel.teaching.loop import LoopThread
from stillhouse.kernel.teaching.teacher import CallTeacher

if TYPE_CHECKING:  # pragma: no cover - typing only
    from stillhouse.kernel.pipeline import Pipeline
    from stillhouse.kernel.plugins import PluginHost

JUDGE_MARKER = "You grade one answer to a task"
"""The start of the judge's system prompt (the fake OpenAI server recognises judge calls by it)."""
QUESTION_HEADING = "### Task\n"
ANSWER_HEADING = "\n### Answer to grade\n"
PAIRWISE_MARKER = "You compare two answers to a task"
"""The start of the pairwise judge's system prompt (the fake OpenAI server recognises it)."""
FIRST_HEADING = "\n### Answer A\n"
SECOND_HEADING = "\n### Answer B\n"

DEFAULT_RUBRICS = {
    "summarization": "Faithfulness to the document: every statement of the summary is supported by the "
    "document, nothing important is left out, nothing is invented.",
    "conversation": "Relevance and persona: the reply follows from the conversation, answers the last turn, "
    "and speaks as the given speaker.",
    "math": "The reasoning: every step follows from the problem and the ones before, and the final number is right.",
}
DEFAULT_RUBRIC = "Correctness: the answer is right for the task and its reasoning, if any, supports it."

_SCORE = re.compile(r"score\s*[:=]?\s*\**\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)
_REASON = re.compile(r"reason\s*[:=]\s*(.+)", re.IGNORECASE)
_WINNER = re.compile(r"winner\s*[:=]\s*\**\s*(A|B|tie)\b", re.IGNORECASE)


class EnsembleConfig(StrictModel):
    """The ``[ensemble]`` section: how the answers of ``[[teachers]]`` combine."""

    mode: Literal["vote", "cascade"] = Field(
        "vote",
        description="vote: ask every teacher every row and combine; cascade: ask the teachers in list order "
        "(cheap first), the next only for rows the previous failed (verification, or its samples disagree).",
    )
    min_agreement: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Labels, numbers, spans: least weighted share of the teachers' votes for the combined "
        "answer; below it the sample is rejected (teachers_disagree).",
    )
    escalate_below: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Cascade: ask the next teacher when the previous one's majority share across its samples "
        "is below this (1.0: any disagreement of a teacher with itself).",
    )
    best_of: Literal["verifier", "judge"] = Field(
        "verifier", description="Free text: pick the best answer by the task's verifier, or by the judge's score."
    )


class JudgeOptions(StrictModel):
    """The judge's own keys in ``judge = {...}``; every other key is a teacher option of its backend."""

    rubric: str | None = Field(None, description="What the judge scores; the task's default rubric if unset.")
    threshold: float | None = Field(None, description="Reject accepted answers the judge scores below this.")
    scale: Literal["1-10", "0-1"] = Field("1-10", description="The score range the judge is asked for.")
    mode: Literal["pointwise", "pairwise"] = Field(
        "pointwise",
        description='How best_of = "judge" picks among the teachers\' answers: pointwise scores each alone; '
        "pairwise shows the judge two answers side by side, each pair in both orders (a win counts only when "
        "both orders agree).",
    )

    @property
    def bounds(self) -> tuple[float, float]:
        return (1.0, 10.0) if self.scale == "1-10" else (0.0, 1.0)


JUDGE_KEYS = frozenset(JudgeOptions.model_fields)
ENTRY_KEYS = frozenset({"name", "weight"})


@dataclass
class JudgeSpec:
    """``judge = {...}``: the judge model's teacher config and the judge's own options."""

    config: TeacherConfig
    options: JudgeOptions

    def dump(self) -> dict[str, Any]:
        return {**self.config.model_dump(mode="json"), **self.options.model_dump(mode="json")}


def primary_teacher(teachers: Sequence[NamedTeacher], mode: str) -> NamedTeacher:
    """The teacher that stands for the list where one is needed (evaluate's teacher role, the report):
    in a cascade the last (strongest), else the heaviest (the first of equals)."""
    if mode == "cascade":
        return teachers[-1]
    return max(teachers, key=lambda t: t.weight)  # max keeps the first of equals


def make_teacher(host: PluginHost, config: TeacherConfig, **overrides: Any) -> Teacher:
    config = config.model_copy(update=overrides) if overrides else config
    return host.get(Teacher, config.backend)(config)


def is_free_text(task: TaskType) -> bool:
    """Whether a task's answers are free text (best-of) rather than labels, numbers or spans (vote)."""
    return bool(getattr(task, "free_text", False))


def list_cost(teacher: Teacher, result: TeacherResult) -> float | None:
    """What a result costs at the teacher's price whether or not it came from the cache."""
    price = getattr(teacher, "price", lambda: None)()
    if price is None:
        return None
    return float(price.cost(result.prompt_tokens, result.completion_tokens))


# -- generate -----------------------------------------------------------------------------------


@dataclass
class TeacherTally:
    model: str
    weight: float
    asked: int = 0
    answered: int = 0
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    list_cost_usd: float | None = 0.0
    """Cost at the teacher's price of every answer it gave for this run, cached or not."""


MAX_CONCURRENT_TEACHERS = 8
"""Vote mode asks this many teachers at once (each through its own engine, in a thread of its own)."""


def generate(pipe: Pipeline, requests: list[TeacherRequest], split_of: dict[str, str]) -> dict[str, Any]:
    """The generate stage with ``[[teachers]]``: each teacher through its own engine; in vote mode
    all at once, in a cascade in list order (a row reaches a teacher only when the previous failed it)."""
    teachers = pipe.loaded.teachers
    ensemble = pipe.loaded.ensemble
    stored = pipe.run.folder.latest_results_by_teacher()
    for named in teachers:
        stored.setdefault(named.name, {})
    tallies = {t.name: TeacherTally(t.config.model, t.weight) for t in teachers}
    final: dict[str, str] = {}  # sample id -> the teacher whose answer stands (cascade)
    lock = threading.Lock()
    if ensemble.mode == "vote":
        asks = [_Ask(pipe, named, list(requests), stored[named.name], tallies[named.name], split_of, lock) for named in teachers]
        _run_concurrently(asks)
        return _generate_summary(pipe, requests, stored, tallies, final)
    examples = _examples(pipe)
    rows = list(requests)
    for index, named in enumerate(teachers):
        if pipe.should_stop():
            break
        if index > 0:
            previous = teachers[index - 1].name
            rows = [r for r in rows if _escalate(pipe, examples.get(r.sample_id), stored[previous].get(r.sample_id))]
        for r in rows:
            final[r.sample_id] = named.name
        _run_concurrently([_Ask(pipe, named, rows, stored[named.name], tallies[named.name], split_of, lock)])
    return _generate_summary(pipe, requests, stored, tallies, final)


def _run_concurrently(asks: Sequence[_Ask]) -> None:
    """Start every teacher here (its budget and its check, in list order), then let them answer at
    once, one thread each, their engines on one shared event loop; the first failure in list order
    is raised once all are done, so what was answered meanwhile is stored and a resume asks only the rest."""
    shared = LoopThread("stillhouse-teachers") if len(asks) > 1 else None
    try:
        for ask in asks:
            ask.start(shared)
        if len(asks) == 1:
            asks[0].run()
            return
        with ThreadPoolExecutor(max_workers=min(MAX_CONCURRENT_TEACHERS, len(asks)), thread_name_prefix="teacher") as pool:
            futures = [pool.submit(ask.run) for ask in asks]
        for future in futures:
            future.result()
    finally:
        for ask in asks:
            ask.finish()
        if shared is not None:
            shared.close()


@dataclass
class _Ask:
    """One teacher asked the rows it has no answer to yet: each answer stored, reported and counted
    under a lock shared by the teachers answering at the same time (one run folder, one event log)."""

    pipe: Pipeline
    named: NamedTeacher
    rows: list[TeacherRequest]
    mine: dict[str, StoredTeacherResult]
    tally: TeacherTally
    split_of: dict[str, str]
    lock: threading.Lock
    teacher: Teacher | None = None

    def start(self, loop: LoopThread | None) -> None:
        self.teacher = _teacher_within_budget(self.pipe, self.named)
        if loop is not None and isinstance(self.teacher, CallTeacher):
            self.teacher.share_loop(loop)
        self.teacher.check()

    def run(self) -> None:
        pipe, named, mine, tally, teacher = self.pipe, self.named, self.mine, self.tally, self.teacher
        assert teacher is not None
        folder = pipe.run.folder
        tally.asked = len(self.rows)
        pending = [r for r in self.rows if not (r.sample_id in mine and mine[r.sample_id].ok)]
        already, every = len(self.rows) - len(pending), max(1, len(self.rows) // 100)

        def on_result(result: TeacherResult) -> None:
            split = self.split_of.get(result.sample_id, "")
            with self.lock:
                folder.append_teacher_result(result, split, teacher=named.name)
                values = {f.name: getattr(result, f.name) for f in fields(result)}
                mine[result.sample_id] = StoredTeacherResult(**values, split=split, teacher=named.name)
                pipe.emit("teacher_call", **teacher_call_fields(result, split, named.name))
                tally.calls += 1
                tally.cache_hits += int(result.cache_hit)
                tally.prompt_tokens += result.prompt_tokens
                tally.completion_tokens += result.completion_tokens
                tally.cost_usd = (
                    None if tally.cost_usd is None or result.cost_usd is None else tally.cost_usd + result.cost_usd
                )
                done = already + tally.calls
                if done % every == 0 or done == tally.asked:
                    pipe.emit("progress", stage="generate", done=done, total=tally.asked, role=named.name)

        if pending:
            teacher.generate(pending, on_result, cache_dir=pipe.cache_dir, should_stop=pipe.should_stop)

    def finish(self) -> None:
        """Close the engine and count what this teacher's answers cost."""
        teacher, tally, mine = self.teacher, self.tally, self.mine
        if teacher is None:
            return
        teacher.close()
        tally.asked = len(self.rows)
        tally.answered = sum(1 for r in self.rows if r.sample_id in mine and mine[r.sample_id].ok)
        costs = [list_cost(teacher, mine[r.sample_id]) for r in self.rows if r.sample_id in mine]
        tally.list_cost_usd = None if any(c is None for c in costs) else round(sum(c or 0.0 for c in costs), 6)
        if tally.cost_usd is not None:
            tally.cost_usd = round(tally.cost_usd, 6)


def estimate(pipe: Pipeline, requests: Sequence[TeacherRequest]) -> Estimate:
    """A dry run's estimate for every teacher of the list, summed (a cascade's later teachers counted
    for every row: an upper bound)."""
    parts = [(t, make_teacher(pipe.host, t.config).estimate(requests, pipe.cache_dir)) for t in pipe.loaded.teachers]
    costs = [e.cost_usd for _, e in parts]
    per_teacher = "; ".join(
        f"{t.name}: {e.calls} calls" + (f", ${e.cost_usd:.4f}" if e.cost_usd is not None else "") for t, e in parts
    )
    cascade = (
        " (cascade: an upper bound, as if every row reached every teacher)"
        if pipe.loaded.ensemble.mode == "cascade"
        else ""
    )
    return Estimate(
        calls=sum(e.calls for _, e in parts),
        cached=sum(e.cached for _, e in parts),
        prompt_tokens=sum(e.prompt_tokens for _, e in parts),
        completion_tokens=sum(e.completion_tokens for _, e in parts),
        cost_usd=None if any(c is None for c in costs) else sum(c or 0.0 for c in costs),
        note=f"{len(parts)} teachers{cascade}: {per_teacher}. " + (parts[0][1].note if parts else ""),
    )


def _examples(pipe: Pipeline) -> dict[str, Example]:
    out: dict[str, Example] = {}
    for name in ("train", "validation"):
        loaded = pipe.split(name)
        if loaded is not None:
            out.update((e.id, e) for e in loaded.examples)
    return out


def _teacher_within_budget(pipe: Pipeline, named: NamedTeacher) -> Teacher:
    budget = named.config.budget_usd if isinstance(named.config, CallTeacherConfig) else None
    if budget is None:
        return make_teacher(pipe.host, named.config)
    # a resumed run may spend only what earlier attempts of this teacher left
    spent = sum(
        r.cost_usd or 0.0 for r in pipe.run.folder.teacher_results() if r.teacher == named.name and not r.cache_hit
    )
    return make_teacher(pipe.host, named.config, budget_usd=max(0.0, budget - spent))


def _escalate(pipe: Pipeline, example: Example | None, result: TeacherResult | None) -> bool:
    """Whether a row goes on to the next teacher of a cascade: the previous one failed it."""
    if example is None or result is None or not result.ok:
        return True
    record = pipe._judge(pipe.task, example, result, pipe.loaded.ensemble.escalate_below)
    return not record["accepted"]


def _generate_summary(
    pipe: Pipeline,
    requests: list[TeacherRequest],
    stored: dict[str, dict[str, StoredTeacherResult]],
    tallies: dict[str, TeacherTally],
    final: dict[str, str],
) -> dict[str, Any]:
    teachers = pipe.loaded.teachers
    ensemble = pipe.loaded.ensemble
    ids = [r.sample_id for r in requests]
    if ensemble.mode == "cascade":
        answered = sum(1 for sid in ids if (res := stored.get(final.get(sid, ""), {}).get(sid)) is not None and res.ok)
    else:
        answered = sum(
            1 for sid in ids if all((res := stored.get(t.name, {}).get(sid)) is not None and res.ok for t in teachers)
        )
    total = len(ids)
    costs = [t.cost_usd for t in tallies.values()]
    summary: dict[str, Any] = {
        "requests": total,
        "answered": answered,
        "failed": total - answered,
        "calls": sum(t.calls for t in tallies.values()),
        "cache_hits": sum(t.cache_hits for t in tallies.values()),
        "prompt_tokens": sum(t.prompt_tokens for t in tallies.values()),
        "completion_tokens": sum(t.completion_tokens for t in tallies.values()),
        "cost_usd": None if any(c is None for c in costs) else round(sum(c or 0.0 for c in costs), 6),
        "mode": ensemble.mode,
        "teachers": {name: asdict(t) for name, t in tallies.items()},
        "incomplete": total - answered > 0,
    }
    if ensemble.mode == "cascade" and total:
        summary["cascade"] = cascade_saving(tallies, teachers[-1].name, total)
        message = cascade_message(summary["cascade"])
        pipe.emit("log", level="info", message=message)
    return summary


def cascade_saving(tallies: dict[str, TeacherTally], last: str, rows: int) -> dict[str, Any]:
    """The cascade's cost against asking the last (strongest) teacher every row, at list price
    (cached answers counted at what they would cost), and its calls."""
    expensive = tallies[last]
    per_row = (
        (expensive.list_cost_usd / expensive.asked) if expensive.list_cost_usd is not None and expensive.asked else None
    )
    costs = [t.list_cost_usd for t in tallies.values()]
    actual = None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)
    alone = per_row * rows if per_row is not None else None
    saved = alone - actual if alone is not None and actual is not None else None
    return {
        "rows": rows,
        "asked": {name: t.asked for name, t in tallies.items()},
        "expensive_teacher": last,
        "cost_usd": None if actual is None else round(actual, 6),
        "expensive_alone_usd": None if alone is None else round(alone, 6),
        "saved_usd": None if saved is None else round(saved, 6),
        "saved_share": None if saved is None or not alone else round(saved / alone, 4),
        "expensive_calls_saved": rows - expensive.asked,
    }


def cascade_message(c: dict[str, Any]) -> str:
    asked = ", ".join(f"{name} {n}" for name, n in c["asked"].items())
    text = f"cascade: rows asked per teacher: {asked} (of {c['rows']}); {c['expensive_teacher']} skipped {c['expensive_calls_saved']} rows"
    if c["saved_usd"] is not None:
        text += (
            f"; cost ${c['cost_usd']:.6f} vs ${c['expensive_alone_usd']:.6f} asking {c['expensive_teacher']} "
            f"everything: saved ${c['saved_usd']:.6f} ({c['saved_share']:.0%})"
            if c["saved_share"] is not None
            else f"; cost ${c['cost_usd']:.6f}"
        )
    else:
        text += "; cost unknown (set a price for each teacher to see the saving in dollars)"
    return text


# -- filter: combining ---------------------------------------------------------------------------


@dataclass
class Candidate:
    """One completion of one teacher, parsed."""

    teacher: NamedTeacher
    result: TeacherResult
    index: int
    parsed: Parsed
    weight: float  # the teacher's weight over its completions

    def as_result(self) -> TeacherResult:
        """A one-completion result, so the one-teacher verdict code judges it."""
        return TeacherResult(self.result.sample_id, self.result.model, [self.result.completions[self.index]])


class Combiner:
    """Per sample, one SampleRecord out of the answers of all teachers (the filter stage)."""

    def __init__(self, pipe: Pipeline) -> None:
        self.pipe = pipe
        self.task = pipe.task
        self.teachers = pipe.loaded.teachers
        self.ensemble = pipe.loaded.ensemble
        self.results = pipe.run.folder.latest_results_by_teacher()
        self.judge_scores: dict[str, tuple[float | None, str | None]] = {}
        self.comparisons: dict[str, list[dict[str, Any]]] = {}
        """Pairwise judging: per sample id, each pair of teachers' answers compared in both orders."""

    def has_results(self) -> bool:
        return any(self.results.get(t.name) for t in self.teachers)

    def prepare(self, examples: Sequence[Example]) -> None:
        """Best-of by the judge: score every verified free-text candidate first (one batch of calls)."""
        judge = self.pipe.loaded.judge
        if not (is_free_text(self.task) and self.ensemble.best_of == "judge" and judge):
            return
        if judge.options.mode == "pairwise":
            pools = {e.id: (e, _one_per_teacher(self._verified(e, self._candidates(e)))) for e in examples}
            self.comparisons = PairwiseJudge(self.pipe).compare([(e, pool) for e, pool in pools.values() if len(pool) > 1])
            return
        items = []
        for example in examples:
            for cand in self._verified(example, self._candidates(example)):
                items.append((_candidate_id(cand), example, cand.result.completions[cand.index].text))
        self.judge_scores = Judge(self.pipe).score(items)

    def record(self, example: Example) -> SampleRecord | None:
        answers = {t.name: self.results.get(t.name, {}).get(example.id) for t in self.teachers}
        if all(r is None for r in answers.values()):
            return None  # a few-shot example, never asked
        candidates = self._candidates(example)
        if self.ensemble.mode == "cascade":
            record = self._cascade(example, answers)
        elif is_free_text(self.task):
            record = self._best_of(example, candidates, answers)
        else:
            record = self._vote(example, candidates, answers)
        record["teacher_answers"] = self._answers(candidates, answers)
        return record

    def _candidates(self, example: Example) -> list[Candidate]:
        out = []
        for named in self.teachers:
            result = self.results.get(named.name, {}).get(example.id)
            if result is None or not result.ok:
                continue
            share = named.weight / len(result.completions)
            for i, completion in enumerate(result.completions):
                out.append(Candidate(named, result, i, self.task.parse(completion.text), share))
        return out

    def _answers(
        self, candidates: list[Candidate], answers: dict[str, StoredTeacherResult | None]
    ) -> list[dict[str, Any]]:
        out = []
        for named in self.teachers:
            result = answers.get(named.name)
            if result is None:
                continue  # not asked (a cascade stopped before it)
            mine = [c for c in candidates if c.teacher is named]
            out.append(
                {
                    "teacher": named.name,
                    "model": result.model,
                    "weight": named.weight,
                    "answers": [c.parsed.answer if c.parsed.ok else None for c in mine],
                    "text": result.completions[0].text if result.completions else None,
                    "error": result.error,
                }
            )
        return out

    def _fallback(self, example: Example, answers: dict[str, StoredTeacherResult | None]) -> SampleRecord:
        """No usable answer from any teacher: the verdict of the first answer there is says why."""
        result = next((r for r in answers.values() if r is not None and r.ok), None) or next(
            r for r in answers.values() if r is not None
        )
        record = self.pipe._judge(self.task, example, result, 0.0)
        record["teacher"] = None
        return record

    def _vote(
        self, example: Example, candidates: list[Candidate], answers: dict[str, StoredTeacherResult | None]
    ) -> SampleRecord:
        votes: dict[Any, float] = {}
        first: dict[Any, Candidate] = {}
        total = sum(c.weight for c in candidates)
        for cand in sorted(candidates, key=lambda c: -c.teacher.weight):  # stable: list order among equals
            if cand.parsed.ok:
                key = self.task.answer_key(cand.parsed.answer)
                votes[key] = votes.get(key, 0.0) + cand.weight
                first.setdefault(key, cand)
        if not votes:
            return self._fallback(example, answers)
        key, weight = max(votes.items(), key=lambda kv: kv[1])  # ties: the heaviest teacher's answer
        winner = first[key]
        agreement = weight / total if total else 0.0
        record = self.pipe._judge(self.task, example, winner.as_result(), 0.0)
        record["teacher"] = winner.teacher.name
        record["confidence"] = round(agreement, 6)
        if agreement < self.ensemble.min_agreement:
            _reject(record, "teachers_disagree")
        return record

    def _verified(self, example: Example, candidates: list[Candidate]) -> list[Candidate]:
        return [c for c in candidates if c.parsed.ok and self.task.verify(example, c.parsed).accepted]

    def _best_of(
        self, example: Example, candidates: list[Candidate], answers: dict[str, StoredTeacherResult | None]
    ) -> SampleRecord:
        passed = self._verified(example, candidates)
        if not passed:
            return self._fallback(example, answers)
        total = sum(c.weight for c in candidates)

        comparisons = self.comparisons.get(example.id, [])
        wins = Counter(c["winner"] for c in comparisons if c["winner"] is not None)

        compared = {id(c) for c in _one_per_teacher(passed)}

        def rank(cand: Candidate) -> tuple[float, float]:
            if self.comparisons:
                return (wins[cand.teacher.name] if id(cand) in compared else float("-inf"), cand.teacher.weight)
            if self.judge_scores:
                score = self.judge_scores.get(_candidate_id(cand), (None, None))[0]
                return (score if score is not None else float("-inf"), cand.teacher.weight)
            verdict = self.task.verify(example, cand.parsed)
            return (verdict.confidence if verdict.confidence is not None else 0.0, cand.teacher.weight)

        best = max(passed, key=rank)  # max keeps the first of equals: list order
        record = self.pipe._judge(self.task, example, best.as_result(), 0.0)
        record["teacher"] = best.teacher.name
        record["confidence"] = round(sum(c.weight for c in passed) / total, 6) if total else None
        if comparisons:
            record["judge_comparisons"] = comparisons
            record["judge_verdict"] = (
                f"{best.teacher.name} won {wins[best.teacher.name]} of its {len(comparisons)} comparison"
                f"{'s' if len(comparisons) > 1 else ''} (a win counts when both orders agree; ties otherwise)"
            )
        return record

    def _cascade(self, example: Example, answers: dict[str, StoredTeacherResult | None]) -> SampleRecord:
        asked = [t for t in self.teachers if answers.get(t.name) is not None]
        last = asked[-1]
        result = answers[last.name]
        assert result is not None
        record = self.pipe._judge(self.task, example, result, self.task.config.min_agreement)
        record["teacher"] = last.name
        return record


def _one_per_teacher(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Each teacher's first verified answer (the pairwise judge compares teachers, not samples)."""
    out: dict[str, Candidate] = {}
    for cand in candidates:
        out.setdefault(cand.teacher.name, cand)
    return list(out.values())


def _reject(record: SampleRecord, reason: str) -> None:
    record["accepted"], record["reason"], record["targets"] = False, reason, []


def _candidate_id(cand: Candidate) -> str:
    return f"{cand.result.sample_id}::{cand.teacher.name}::{cand.index}"


def acceptance_by_teacher(records: Sequence[SampleRecord]) -> dict[str, dict[str, Any]]:
    """Per teacher: the samples whose combined answer came from it, the accepted ones, and how often
    its own first answer agreed with the combined one (for the filter summary)."""
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        combined = record.get("parsed_answer")
        chosen = record.get("teacher")
        for answer in record.get("teacher_answers") or []:
            entry = out.setdefault(answer["teacher"], {"answered": 0, "chosen": 0, "accepted": 0, "agrees": 0})
            entry["answered"] += 1
            entry["chosen"] += int(chosen == answer["teacher"])
            entry["accepted"] += int(chosen == answer["teacher"] and bool(record.get("accepted")))
            first = (answer.get("answers") or [None])[0]
            entry["agrees"] += int(first is not None and combined is not None and str(first) == str(combined))
    for entry in out.values():
        entry["agreement_with_combined"] = round(entry["agrees"] / entry["answered"], 4) if entry["answered"] else None
    return out


# -- the judge -----------------------------------------------------------------------------------


class Judge:
    """Scores answers with the judge model, through the teaching engine (cache, budget, cost)."""

    def __init__(self, pipe: Pipeline) -> None:
        spec = pipe.loaded.judge
        assert spec is not None
        self.pipe = pipe
        self.spec = spec
        self.options = spec.options
        self.rubric = spec.options.rubric or DEFAULT_RUBRICS.get(pipe.cfg.task, DEFAULT_RUBRIC)
        low, high = spec.options.bounds
        self.calls = self.cache_hits = 0
        self.cost: float | None = 0.0
        self.system = (
            f"{JUDGE_MARKER}. Score it against this rubric: {self.rubric}\n"
            f"Reply with exactly two lines:\nScore: <a number from {low:g} to {high:g}, higher is better>\n"
            "Reason: <one short sentence>"
        )

    def question(self, example: Example) -> str:
        return "\n\n".join(m["content"] for m in self.pipe.task.student_messages(example) if m["role"] != "assistant")

    def messages(self, example: Example, answer: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": f"{QUESTION_HEADING}{self.question(example)}\n{ANSWER_HEADING}{answer}"},
        ]

    def ask(self, requests: Sequence[TeacherRequest], split_of: dict[str, str]) -> dict[str, str]:
        """The judge's reply text per request id ("" for a failed call); every reply stored and counted."""
        out: dict[str, str] = {}
        if not requests:
            return out
        teacher = make_teacher(self.pipe.host, self.spec.config)
        folder = self.pipe.run.folder

        def on_result(result: TeacherResult) -> None:
            split = split_of.get(result.sample_id, "")
            folder.append_judge_result(result, split)
            self.calls += 1
            self.cache_hits += int(result.cache_hit)
            self.cost = None if self.cost is None or result.cost_usd is None else self.cost + result.cost_usd
            self.pipe.emit("teacher_call", **teacher_call_fields(result, split, "judge"))
            out[result.sample_id] = result.completions[0].text if result.ok else ""

        teacher.check()
        try:
            teacher.generate(list(requests), on_result, cache_dir=self.pipe.cache_dir, should_stop=self.pipe.should_stop)
        finally:
            teacher.close()
        return out

    def score(self, items: Sequence[tuple[str, Example, str]]) -> dict[str, tuple[float | None, str | None]]:
        """(score, reason) per item id; the items are asked in a random order (seeded by the run)."""
        order = list(items)
        random.Random(self.pipe.run.id).shuffle(order)
        requests = [TeacherRequest(item_id, self.messages(example, answer)) for item_id, example, answer in order]
        split_of = {item_id: example.split for item_id, example, _ in items}
        replies = self.ask(requests, split_of)
        return {item_id: parse_judgement(text, self.options) for item_id, text in replies.items()}

    def apply(self, records: list[SampleRecord], examples: dict[str, Example]) -> dict[str, Any]:
        """Score every accepted record; below the threshold, reject it (``judge_below_threshold``)."""
        items = [
            (str(r["sample_id"]), examples[str(r["sample_id"])], str(r.get("teacher_output") or ""))
            for r in records
            if r.get("accepted") and str(r["sample_id"]) in examples
        ]
        scores = self.score(items)
        threshold = self.options.threshold
        judged = rejected = unscored = 0
        for record in records:
            if not record.get("accepted") or record["sample_id"] not in scores:
                continue
            score, reason = scores[str(record["sample_id"])]
            record["judge_score"], record["judge_reason"] = score, reason
            judged += 1
            if score is None:
                unscored += 1
                if threshold is not None:
                    _reject(record, "judge_unparseable")
                    rejected += 1
            elif threshold is not None and score < threshold:
                _reject(record, "judge_below_threshold")
                rejected += 1
        values = [s for s, _ in scores.values() if s is not None]
        return {
            "model": self.spec.config.model,
            "judged": judged,
            "rejected": rejected,
            "unparseable": unscored,
            "mean_score": round(sum(values) / len(values), 4) if values else None,
            "threshold": threshold,
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "cost_usd": None if self.cost is None else round(self.cost, 6),
        }


def parse_judgement(text: str, options: JudgeOptions) -> tuple[float | None, str | None]:
    """(score, reason) from a judge's reply; the score None when it gives none on its scale."""
    match = _SCORE.search(text or "")
    reason_match = _REASON.search(text or "")
    reason = reason_match.group(1).strip()[:200] if reason_match else None
    if match is None:
        return None, reason or ((text or "").strip()[:200] or None)
    score = float(match.group(1))
    low, high = options.bounds
    if not low <= score <= high:
        return None, reason
    return score, reason


class PairwiseJudge(Judge):
    """Compares the teachers' answers to a sample two at a time. Each pair is shown in an order drawn
    from a seed (the run id, the sample id and the two teachers' names: the same on a resume), and
    asked again the other way round; a teacher wins a pair only when both orders name its answer,
    any other outcome is a tie. The judge never sees a teacher's name."""

    def __init__(self, pipe: Pipeline) -> None:
        super().__init__(pipe)
        self.system = (
            f"{PAIRWISE_MARKER}. Decide which answer is better against this rubric: {self.rubric}\n"
            "Reply with exactly two lines:\nWinner: <A, B or tie>\nReason: <one short sentence>"
        )

    def pair_messages(self, example: Example, first: str, second: str) -> list[dict[str, str]]:
        body = f"{QUESTION_HEADING}{self.question(example)}\n{FIRST_HEADING}{first}\n{SECOND_HEADING}{second}"
        return [{"role": "system", "content": self.system}, {"role": "user", "content": body}]

    def compare(self, pools: Sequence[tuple[Example, Sequence[Candidate]]]) -> dict[str, list[dict[str, Any]]]:
        """Per sample id, one entry per pair of teachers: who was shown first (and the seed that
        chose it), the verdict and reason of each order, and the winner (None: a tie)."""
        pairs: list[tuple[Example, Candidate, Candidate, str]] = []
        requests: list[TeacherRequest] = []
        split_of: dict[str, str] = {}
        for example, pool in pools:
            for i, left in enumerate(pool):
                for right in pool[i + 1 :]:
                    seed = f"{self.pipe.run.id}:{example.id}:{left.teacher.name}:{right.teacher.name}"
                    first, second = (left, right) if random.Random(seed).random() < 0.5 else (right, left)
                    pairs.append((example, first, second, seed))
                    for a, b in ((first, second), (second, first)):
                        rid = _pair_id(example, a, b)
                        requests.append(TeacherRequest(rid, self.pair_messages(example, _text(a), _text(b))))
                        split_of[rid] = example.split
        replies = self.ask(requests, split_of)
        out: dict[str, list[dict[str, Any]]] = {}
        for example, first, second, seed in pairs:
            asked = parse_verdict(replies.get(_pair_id(example, first, second), ""))
            swapped = parse_verdict(replies.get(_pair_id(example, second, first), ""))
            names = (first.teacher.name, second.teacher.name)
            winners = (_winner(asked[0], names), _winner(swapped[0], names[::-1]))
            out.setdefault(example.id, []).append(
                {
                    "first": names[0],
                    "second": names[1],
                    "order_seed": seed,
                    "verdicts": [asked[0], swapped[0]],
                    "reasons": [asked[1], swapped[1]],
                    "winner": winners[0] if winners[0] is not None and winners[0] == winners[1] else None,
                }
            )
        return out


def _text(cand: Candidate) -> str:
    return cand.result.completions[cand.index].text


def _pair_id(example: Example, a: Candidate, b: Candidate) -> str:
    return f"{example.id}::{a.teacher.name}>{b.teacher.name}"


def _winner(verdict: str | None, shown: tuple[str, str]) -> str | None:
    """The teacher a verdict names, given the teachers shown as A and B (None: a tie or no verdict)."""
    return {"A": shown[0], "B": shown[1]}.get(verdict or "")


def parse_verdict(text: str) -> tuple[str | None, str | None]:
    """("A" | "B" | "tie" | None, reason) from a pairwise judge's reply."""
    match = _WINNER.search(text or "")
    reason_match = _REASON.search(text or "")
    reason = reason_match.group(1).strip()[:200] if reason_match else ((text or "").strip()[:200] or None)
    if match is None:
        return None, reason
    verdict = match.group(1)
    return (verdict.upper() if verdict.lower() != "tie" else "tie"), reason


def self_preference(judge: JudgeSpec, teachers: Sequence[tuple[str, TeacherConfig]]) -> list[str]:
    """The teachers whose model is the judge's own (a model tends to prefer its own answers)."""
    return [name for name, config in teachers if config.model == judge.config.model]


__all__ = [
    "ANSWER_HEADING",
    "JUDGE_MARKER",
    "Combiner",
    "EnsembleConfig",
    "Judge",
    "JudgeOptions",
    "PairwiseJudge",
    "JudgeSpec",
    "NamedTeacher",
    "acceptance_by_teacher",
    "cascade_saving",
    "generate",
    "parse_judgement",
    "parse_verdict",
    "self_preference",
    "primary_teacher",
]
