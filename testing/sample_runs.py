"""Fabricated run folders in the documented run-folder format (kernel/runs.py, the helpers' brief).

Test and benchmark data (not part of the registry itself). Used by the registry's tests, the docs example queries and ``bench/registry.py`` so the registry
can be built and measured without running a pipeline. The folders look like a pipeline's: a
resolved config from the kernel's own config models, events in stage order, ``samples.jsonl``,
``eval/<role>.jsonl`` and ``eval/results.json``.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from stillhouse.kernel.run_folder import RunFolder
from stillhouse.kernel.runs import config_hash, runs_root
from stillhouse.registry.rows import DEFAULT_PRIMARY_METRIC

SECONDARY = {
    "nli": "macro_f1",
    "qa": "exact_match",
    "math": "exact_match",
    "summarization": "rouge1",
    "conversation": "distinct_2",
}
REJECT_REASONS = {
    "nli": ("wrong_label", "unparseable"),
    "qa": ("not_in_context", "unparseable"),
    "math": ("wrong_answer", "no_final_answer"),
    "summarization": ("too_long", "low_overlap"),
    "conversation": ("refusal", "too_short"),
}
ROLES = ("teacher", "baseline", "student")


@dataclass
class FakeTeacher:
    """One of several ``[[teachers]]``: right with probability ``accuracy``; ``price`` scales the
    run's ``cost_per_call``."""

    name: str
    model: str
    weight: float = 1.0
    accuracy: float = 0.8
    price: float = 1.0


@dataclass
class FakeRun:
    """What to fabricate. ``scores`` are the primary metric per role; ``status`` decides how far it got:
    completed (all stages), failed (the train stage fails), running (stops inside train)."""

    run_id: str
    task: str = "nli"
    name: str | None = None
    kind: str = "pipeline"  # pipeline | eval (a standalone `still eval`: role "model" only)
    teacher_model: str = "openai/gpt-4o-mini"
    student_model: str = "HuggingFaceTB/SmolLM2-135M-Instruct"
    status: str = "completed"
    started: float = 1_795_000_000.0  # 2026-11-18, unix seconds
    samples: int = 20
    accept_rate: float = 0.8
    cache_hit_rate: float = 0.25
    cost_per_call: float | None = 0.0004
    train_steps: int = 20
    metric_every: int = 1
    scores: dict[str, float] = field(default_factory=lambda: {"teacher": 0.9, "baseline": 0.45, "student": 0.82})
    config: dict[str, Any] = field(default_factory=dict)  # overrides merged into the resolved config
    extra_events: list[dict[str, Any]] = field(default_factory=list)  # appended before run_finished
    after_events: list[dict[str, Any]] = field(default_factory=list)  # appended after it (a sweep's sweep_trial)
    seed: int = 0
    teachers: list[FakeTeacher] = field(default_factory=list)  # [[teachers]]: vote over these instead
    judge: bool = False  # with teachers: a judge scores each accepted sample


@dataclass
class FakeFiles:
    events: list[dict[str, Any]]
    samples: list[dict[str, Any]]
    eval_outputs: dict[str, list[dict[str, Any]]]
    results: dict[str, Any]
    config: dict[str, Any]


def resolved_config(spec: FakeRun) -> dict[str, Any]:
    """A resolved pipeline config, validated by the config model of the plugins it names (as a
    config file is: kernel/config.py ``config_model``)."""
    from stillhouse.kernel.config import config_model
    from stillhouse.kernel.plugins import get_host

    raw: dict[str, Any] = {
        "name": spec.name,
        "task": spec.task,
        "data": {"train": f"data/{spec.task}/train.jsonl", "test": f"data/{spec.task}/test.jsonl"},
        "teacher": {"model": spec.teacher_model, "api_key_env": "OPENAI_API_KEY"},
        "student": {"model": spec.student_model},
    }
    _merge(raw, spec.config)
    known = _without_unknown(raw)
    validated = config_model(known, get_host()).model_validate(known)
    resolved = validated.model_dump(mode="json")
    _merge(resolved, spec.config)  # keep planted extras (e.g. a secret) the model would refuse
    return resolved


def _without_unknown(raw: dict[str, Any]) -> dict[str, Any]:
    known = {"name", "task", "data", "teacher", "student", "train", "evaluate", "report", "task_options"}
    cleaned = {k: v for k, v in raw.items() if k in known}
    teacher = dict(cleaned.get("teacher", {}))
    for key in ("api_key", "headers"):
        teacher.pop(key, None)
    cleaned["teacher"] = teacher
    return cleaned


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def fabricate(spec: FakeRun) -> FakeFiles:
    rng = random.Random(spec.seed)
    config = resolved_config(spec)
    primary = DEFAULT_PRIMARY_METRIC.get(spec.task, "accuracy")
    clock = [spec.started]

    def ev(type_: str, **payload: Any) -> dict[str, Any]:
        clock[0] += 0.25
        return {"ts": round(clock[0], 6), "type": type_, "run_id": spec.run_id, **payload}

    if spec.kind == "eval":
        return _fabricate_eval(spec, rng, config, primary, ev)
    events = [
        ev(
            "run_started",
            name=spec.name,
            task=spec.task,
            teacher_model=spec.teacher_model,
            student_model=spec.student_model,
            config=config,
            config_hash=config_hash(config),
            resumed=False,
            primary_metric=primary,
            pid=4242,
        )
    ]
    if spec.teachers:
        samples = _ensemble_generate_and_filter(spec, rng, ev, events)
    else:
        samples = _generate_and_filter(spec, rng, ev, events)
    # train
    events.append(ev("stage_started", stage="train"))
    steps = spec.train_steps if spec.status == "completed" else max(1, spec.train_steps // 2)
    for step in range(1, steps + 1):
        if step % spec.metric_every == 0:
            loss = 2.5 * math.exp(-step / max(1, spec.train_steps / 3)) + 0.3 + rng.uniform(-0.05, 0.05)
            for key, value in (
                ("train/loss", loss),
                ("train/lr", 2e-5 * (1 - step / (spec.train_steps + 1))),
                ("train/grad_norm", 1.5 * loss + rng.uniform(0, 0.3)),
                ("train/tokens_per_s", 140 + rng.uniform(-10, 10)),
            ):
                events.append(ev("metric", key=key, value=round(value, 6), step=step, context="train"))
        if step % 5 == 0:
            events.append(
                ev("metric", key="eval/loss", value=round(0.4 + 2.0 / step, 6), step=step, context="validation")
            )
        events.append(ev("progress", stage="train", done=step, total=spec.train_steps))
    if spec.status == "failed":
        events.append(ev("stage_failed", stage="train", error="CUDA out of memory (simulated)"))
        events += [ev(e.pop("type"), **e) for e in [dict(x) for x in spec.extra_events]]
        events.append(ev("run_finished", status="failed", error="stage train failed"))
        return FakeFiles(events, samples, {}, {}, config)
    if spec.status == "running":
        return FakeFiles(events, samples, {}, {}, config)
    events.append(ev("artifact", name="student", path="student", bytes=270_000_000))
    events.append(ev("stage_finished", stage="train", summary={"steps": steps}, seconds=300.0))
    # evaluate
    events.append(ev("stage_started", stage="evaluate"))
    results: dict[str, Any] = {}
    outputs: dict[str, list[dict[str, Any]]] = {}
    for role in ROLES:
        if role not in spec.scores:
            continue
        model = spec.teacher_model if role == "teacher" else spec.student_model
        metrics = _metrics(spec, role, primary, rng)
        results[role] = {"model": model, "info": {"role": role}, "metrics": metrics}
        outputs[role] = [
            {
                "sample_id": f"t{i:03d}",
                "role": role,
                "model": model,
                "prompt": [{"role": "user", "content": f"test question {i}"}],
                "output": f"answer {i}",
                "parsed_answer": f"answer {i}",
                "reference": f"answer {i}" if rng.random() < spec.scores[role] else "other",
                "latency_ms": round(rng.uniform(20, 90), 2),
                "error": None,
            }
            for i in range(5)
        ]
        for m in metrics:
            events.append(
                ev("eval", role=role, metric=m["name"], value=m["value"], n=m["n"], reason=m["reason"], model=model)
            )
    events.append(ev("stage_finished", stage="evaluate", summary={"roles": list(results)}, seconds=40.0))
    events.append(ev("stage_started", stage="report"))
    events.append(ev("artifact", name="report_md", path="report.md", bytes=4096))
    events.append(ev("stage_finished", stage="report", summary={}, seconds=0.2))
    events += [ev(e.pop("type"), **e) for e in [dict(x) for x in spec.extra_events]]
    events.append(ev("run_finished", status="completed", error=None))
    events += [ev(e.pop("type"), **e) for e in [dict(x) for x in spec.after_events]]
    return FakeFiles(events, samples, outputs, results, config)


def _generate_and_filter(spec: FakeRun, rng: random.Random, ev: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The generate and filter stages of a one-teacher run: their events, and the samples."""
    # generate
    events.append(ev("stage_started", stage="generate"))
    for i in range(spec.samples):
        hit = rng.random() < spec.cache_hit_rate
        prompt_tokens, completion_tokens = rng.randint(60, 200), rng.randint(20, 120)
        cost = (
            None
            if spec.cost_per_call is None
            else (0.0 if hit else round(spec.cost_per_call * (0.5 + rng.random()), 8))
        )
        events.append(
            ev(
                "teacher_call",
                sample_id=f"s{i:04d}",
                split="train",
                model=spec.teacher_model,
                cache_key=f"{spec.seed:04x}{i:08x}",
                cache_hit=hit,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost_usd=cost,
                latency_ms=0.0 if hit else round(rng.uniform(200, 1500), 1),
                error=None,
            )
        )
        events.append(ev("progress", stage="generate", done=i + 1, total=spec.samples))
    events.append(ev("stage_finished", stage="generate", summary={"calls": spec.samples}, seconds=12.5))
    # filter
    events.append(ev("stage_started", stage="filter"))
    samples = _samples(spec, rng)
    accepted = sum(s["accepted"] for s in samples)
    events.append(
        ev(
            "stage_finished",
            stage="filter",
            summary={"accepted": accepted, "rejected": len(samples) - accepted},
            seconds=0.4,
        )
    )
    return samples


def _ensemble_generate_and_filter(
    spec: FakeRun, rng: random.Random, ev: Any, events: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Generate and filter with ``[[teachers]]`` (vote mode), shaped as kernel/teacher_ensemble.py
    writes them: a named teacher_call per teacher and row, per-teacher tallies in the generate
    summary, samples with ``teacher`` and ``teacher_answers``, the filter summary's per-teacher
    acceptance from the kernel's own ``acceptance_by_teacher``; with ``judge``, a judge call and
    ``judge_score`` per accepted sample."""
    from stillhouse.kernel.teacher_ensemble import acceptance_by_teacher

    labels = ("entailment", "neutral", "contradiction")
    tallies: dict[str, dict[str, Any]] = {
        t.name: {"model": t.model, "weight": t.weight, "asked": 0, "answered": 0, "calls": 0, "cache_hits": 0,
                 "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "list_cost_usd": 0.0}
        for t in spec.teachers
    }  # fmt: skip
    events.append(ev("stage_started", stage="generate"))
    answers: list[dict[str, str]] = []
    for i in range(spec.samples):
        reference = labels[i % 3]
        row: dict[str, str] = {"": reference}
        for teacher in spec.teachers:
            right = rng.random() < teacher.accuracy
            row[teacher.name] = reference if right else labels[(i + 1) % 3]
            call = _call(spec, rng, f"s{i:04d}", teacher.name, teacher.model, teacher.price)
            events.append(ev("teacher_call", **call))
            tally = tallies[teacher.name]
            tally["asked"] += 1
            tally["answered"] += 1
            tally["calls"] += 1
            tally["cache_hits"] += int(call["cache_hit"])
            tally["prompt_tokens"] += call["prompt_tokens"]
            tally["completion_tokens"] += call["completion_tokens"]
            tally["cost_usd"] = round(tally["cost_usd"] + (call["cost_usd"] or 0.0), 8)
            tally["list_cost_usd"] = round(tally["list_cost_usd"] + (call["cost_usd"] or 0.0), 8)
        answers.append(row)
        events.append(ev("progress", stage="generate", done=i + 1, total=spec.samples))
    summary = {"requests": spec.samples, "calls": spec.samples * len(spec.teachers), "mode": "vote", "teachers": tallies}
    events.append(ev("stage_finished", stage="generate", summary=summary, seconds=12.5))
    events.append(ev("stage_started", stage="filter"))
    samples = []
    for i, row in enumerate(answers):
        votes: dict[str, float] = {}
        for teacher in spec.teachers:
            votes[row[teacher.name]] = votes.get(row[teacher.name], 0.0) + teacher.weight
        winner = max(votes, key=lambda label: votes[label])
        chosen = max((t for t in spec.teachers if row[t.name] == winner), key=lambda t: t.weight)
        ok = winner == row[""]
        prompt = [{"role": "user", "content": f"question {i}"}]
        sample: dict[str, Any] = {
            "sample_id": f"s{i:04d}",
            "split": "train",
            "accepted": ok,
            "reason": "ok" if ok else "wrong_label",
            "confidence": round(votes[winner] / sum(votes.values()), 4),
            "prompt": prompt,
            "teacher_output": f"Answer: {winner}",
            "parsed_answer": winner,
            "reference": row[""],
            "targets": [{"messages": prompt, "target": f"Answer: {winner}", "weight": 1.0}] if ok else [],
            "source": f"data/{spec.task}/train.jsonl:{i + 1}",
            "teacher": chosen.name,
            "teacher_answers": [
                {"teacher": t.name, "model": t.model, "weight": t.weight, "answers": [row[t.name]],
                 "text": f"Answer: {row[t.name]}", "error": None}
                for t in spec.teachers
            ],
        }  # fmt: skip
        if spec.judge and ok:
            events.append(ev("teacher_call", **_call(spec, rng, sample["sample_id"], "judge", "openai/judge", 1.0)))
            sample["judge_score"] = float(5 + i % 6)
            sample["judge_reason"] = "faithful"
        samples.append(sample)
    accepted = sum(s["accepted"] for s in samples)
    summary = {"accepted": accepted, "rejected": len(samples) - accepted, "teachers": acceptance_by_teacher(samples)}
    events.append(ev("stage_finished", stage="filter", summary=summary, seconds=0.4))
    return samples


def _call(spec: FakeRun, rng: random.Random, sample_id: str, teacher: str, model: str, price: float) -> dict[str, Any]:
    """A named teacher_call event's payload."""
    hit = rng.random() < spec.cache_hit_rate
    cost = None if spec.cost_per_call is None else (0.0 if hit else round(spec.cost_per_call * price, 8))
    return {
        "sample_id": sample_id,
        "split": "train",
        "model": model,
        "cache_key": f"{teacher}-{sample_id}",
        "cache_hit": hit,
        "prompt_tokens": rng.randint(60, 200),
        "completion_tokens": rng.randint(5, 20),
        "cost_usd": cost,
        "latency_ms": 0.0 if hit else round(rng.uniform(200, 1500), 1),
        "error": None,
        "teacher": teacher,
    }


def _fabricate_eval(spec: FakeRun, rng: random.Random, config: dict[str, Any], primary: str, ev: Any) -> FakeFiles:
    """A `still eval` run: one model, role "model", the evaluate stage only."""
    config = {
        "kind": "eval",
        "name": spec.name,
        "task": spec.task,
        "model": spec.student_model,
        "data": {"test": f"data/{spec.task}/test.jsonl"},
        "evaluate": config["evaluate"],
    }
    events = [
        ev(
            "run_started",
            name=spec.name,
            kind="eval",
            task=spec.task,
            teacher_model=None,
            student_model=spec.student_model,
            primary_metric=primary,
            config=config,
            config_hash=config_hash(config),
            resumed=False,
            stages=["evaluate"],
            pid=4242,
        ),
        ev("stage_started", stage="evaluate"),
    ]
    metrics = _metrics(spec, "model", primary, rng)
    for m in metrics:
        events.append(
            ev(
                "eval",
                role="model",
                metric=m["name"],
                value=m["value"],
                n=m["n"],
                reason=m["reason"],
                model=spec.student_model,
            )
        )
    events.append(
        ev(
            "stage_finished",
            stage="evaluate",
            summary={"roles": {"model": {primary: spec.scores["model"]}}},
            seconds=8.0,
        )
    )
    events.append(ev("run_finished", status="completed", error=None))
    results = {"model": {"model": spec.student_model, "info": {}, "metrics": metrics}}
    return FakeFiles(events, [], {}, results, config)


def _samples(spec: FakeRun, rng: random.Random) -> list[dict[str, Any]]:
    reasons = REJECT_REASONS.get(spec.task, ("rejected",))
    rows = []
    for i in range(spec.samples):
        ok = rng.random() < spec.accept_rate
        answer = rng.choice(["entailment", "neutral", "contradiction"]) if spec.task == "nli" else f"answer {i}"
        prompt = [{"role": "system", "content": "Answer the question."}, {"role": "user", "content": f"question {i}"}]
        rows.append(
            {
                "sample_id": f"s{i:04d}",
                "split": "train",
                "accepted": ok,
                "reason": "ok" if ok else reasons[i % len(reasons)],
                "confidence": round(rng.uniform(0.5, 1.0), 3),
                "prompt": prompt,
                "teacher_output": f"Reasoning about {i}. Answer: {answer}",
                "parsed_answer": answer,
                "rationale": f"Reasoning about {i}.",
                "reference": answer if ok else "neutral",
                "targets": [{"messages": prompt, "target": f"Answer: {answer}", "weight": 1.0}] if ok else [],
                "source": f"data/{spec.task}/train.jsonl:{i + 1}",
            }
        )
    return rows


def _metrics(spec: FakeRun, role: str, primary: str, rng: random.Random) -> list[dict[str, Any]]:
    score = spec.scores[role]
    secondary = SECONDARY.get(spec.task, "f1")
    size = 7e9 if role == "teacher" else 1.35e8
    rows = [
        {"name": primary, "value": score, "n": 50, "reason": None, "higher_is_better": True, "unit": ""},
        {
            "name": secondary,
            "value": round(score * 0.95, 4),
            "n": 50,
            "reason": None,
            "higher_is_better": True,
            "unit": "",
        },
        {
            "name": "latency_p50_ms",
            "value": round(rng.uniform(30, 60) * (8 if role == "teacher" else 1), 2),
            "n": 50,
            "reason": None,
            "higher_is_better": False,
            "unit": "ms",
        },
    ]
    if role == "teacher":
        rows.append(
            {
                "name": "parameters",
                "value": None,
                "n": 0,
                "reason": "API model: parameter count unknown",
                "higher_is_better": None,
                "unit": "",
            }
        )
        cost = None if spec.cost_per_call is None else round(spec.cost_per_call * 50, 6)
        rows.append(
            {
                "name": "cost_usd_total",
                "value": cost,
                "n": 50,
                "reason": None if cost is not None else "price unknown",
                "higher_is_better": False,
                "unit": "usd",
            }
        )
    else:
        rows.append({"name": "parameters", "value": size, "n": 1, "reason": None, "higher_is_better": None, "unit": ""})
    return rows


def write_run(home: Path, spec: FakeRun) -> Path:
    """Write a complete run folder under ``home/runs`` and return it."""
    files = fabricate(spec)
    folder = RunFolder(runs_root(home) / spec.run_id)
    folder.root.mkdir(parents=True, exist_ok=True)
    folder.write_config(files.config)
    folder.append_events(files.events, fsync=False)
    write_outputs(folder.root, files)
    return folder.root


def write_outputs(run_dir: Path, files: FakeFiles) -> None:
    """samples.jsonl and the eval/ files at their RunFolder paths, written whole like the pipeline's
    stages do, but as given: not redacted (the registry's tests plant secrets to see ingest cut them)."""
    folder = RunFolder(run_dir)
    if files.samples:
        _write_text(folder.samples_path, _jsonl(files.samples))
    for role, rows in files.eval_outputs.items():
        _write_text(folder.eval_outputs_path(role), _jsonl(rows))
    if files.results:
        _write_text(folder.results_path, json.dumps(files.results, indent=2))


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def started_from_id(run_id: str) -> float:
    """Unix time of a run id's ``YYYYMMDD-HHMMSS`` prefix (UTC)."""
    from datetime import datetime

    return datetime.strptime(run_id[:15], "%Y%m%d-%H%M%S").replace(tzinfo=UTC).timestamp()


def standard_runs() -> list[FakeRun]:
    """A small, varied registry: several tasks, teachers and students, good and bad runs."""
    runs = [
        FakeRun(
            "20261120-090000-nli-mini-a001",
            task="nli",
            name="nli-mini",
            seed=1,
            scores={"teacher": 0.90, "baseline": 0.41, "student": 0.87},
        ),
        FakeRun(
            "20261121-090000-nli-lr-a002",
            task="nli",
            name="nli-lr",
            seed=2,
            config={"train": {"learning_rate": 1e-4}},
            scores={"teacher": 0.90, "baseline": 0.41, "student": 0.78},
        ),
        FakeRun(
            "20261122-090000-nli-4o-a003",
            task="nli",
            name="nli-4o",
            seed=3,
            teacher_model="openai/gpt-4o",
            cost_per_call=0.004,
            cache_hit_rate=0.6,
            scores={"teacher": 0.93, "baseline": 0.41, "student": 0.89},
        ),
        FakeRun(
            "20261123-090000-qa-a004",
            task="qa",
            name="qa",
            seed=4,
            accept_rate=0.6,
            scores={"teacher": 0.81, "baseline": 0.22, "student": 0.70},
        ),
        FakeRun(
            "20261124-090000-math-a005",
            task="math",
            name="math",
            seed=5,
            accept_rate=0.5,
            teacher_model="anthropic/claude-sonnet-4-5",
            cost_per_call=0.003,
            scores={"teacher": 0.76, "baseline": 0.05, "student": 0.73},
        ),
        FakeRun(
            "20261125-090000-sum-a006",
            task="summarization",
            name="sum",
            seed=6,
            student_model="Qwen/Qwen2.5-0.5B-Instruct",
            scores={"teacher": 0.42, "baseline": 0.20, "student": 0.40},
        ),
        FakeRun(
            "20261126-090000-chat-a007",
            task="conversation",
            name="chat",
            seed=7,
            cost_per_call=None,
            teacher_model="hf/HuggingFaceTB/SmolLM2-1.7B-Instruct",
            scores={"teacher": 0.51, "baseline": 0.30, "student": 0.49},
        ),
        FakeRun("20261127-090000-nli-fail-a008", task="nli", name="nli-fail", seed=8, status="failed"),
        FakeRun("20261128-090000-qa-live-a009", task="qa", name="qa-live", seed=9, status="running"),
        FakeRun(
            "20261129-090000-eval-smol-a010", task="nli", name="eval-smol", seed=10, kind="eval", scores={"model": 0.52}
        ),
    ]
    for run in runs:
        run.started = started_from_id(run.run_id)
    return runs


SWEEP_ID = "20261201-090000-sweep-5w01"


def sweep_trial_event(
    trial: int, state: str, values: list[float] | None, params: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """The ``sweep_trial`` event plugins/sweep appends to a trial's run once Optuna was told."""
    return {
        "type": "sweep_trial", "sweep_id": SWEEP_ID, "trial": trial, "state": state, "values": values,
        "objectives": ["accuracy"], "directions": ["maximize"], "params": params, "n_trials": 2, **extra,
    }  # fmt: skip


def sweep_and_teacher_runs() -> list[FakeRun]:
    """Two trials of one `still sweep` (tagged as plugins/sweep/trial.py tags them; trial 1 was
    pruned) and a run with two ``[[teachers]]`` and a judge. Kept apart from ``standard_runs``,
    whose registry the TUI snapshots show."""
    trial = {"sweep": SWEEP_ID}
    runs = [
        FakeRun(
            "20261201-090100-nli-sweep-t0-5w02",
            task="nli",
            name="nli-sweep-t0",
            seed=21,
            config={"tags": {**trial, "trial": "0"}, "train": {"learning_rate": 1e-4, "lr_scheduler": "linear"}},
            scores={"student": 0.61},
            after_events=[sweep_trial_event(0, "complete", [0.61], {"train.learning_rate": 1e-4})],
        ),
        FakeRun(
            "20261201-090300-nli-sweep-t1-5w03",
            task="nli",
            name="nli-sweep-t1",
            seed=22,
            config={"tags": {**trial, "trial": "1"}, "train": {"learning_rate": 2e-5, "lr_scheduler": "linear"}},
            scores={"student": 0.55},
            extra_events=[
                {"type": "log", "level": "info",
                 "message": f"sweep {SWEEP_ID}: trial 1 pruned at step 10 (validation loss 0.6); the run stops here"},
            ],
            after_events=[sweep_trial_event(1, "pruned", None, {"train.learning_rate": 2e-5}, pruned_at_step=10)],
        ),
        FakeRun(
            "20261202-090000-nli-vote-5w04",
            task="nli",
            name="nli-vote",
            seed=23,
            teacher_model="openai/t80",
            samples=30,
            teachers=[
                FakeTeacher("t70", "openai/t70", weight=1.0, accuracy=0.7, price=0.1),
                FakeTeacher("t80", "openai/t80", weight=2.0, accuracy=0.8, price=1.0),
            ],
            judge=True,
            scores={"teacher": 0.8, "baseline": 0.41, "student": 0.74},
        ),
    ]  # fmt: skip
    for run in runs:
        run.started = started_from_id(run.run_id)
    return runs
