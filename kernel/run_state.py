"""What the events of a run say, folded once: :func:`fold` and :meth:`RunState.apply`.

One reducer for everyone who reads a run's events: ``Run.status`` and the resume logic, the TUI
(live, one appended batch at a time), the reports (stage summaries, the training curve) and the
demo. It keeps status, stages with progress, timings and attempts, training metrics, evaluation
results, teacher-call accounting and artifacts. Pure Python: no I/O, no clock except in ETAs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from stillhouse.kernel.comparison import retention
from stillhouse.kernel.events import (
    STAGES,
    Artifact,
    EvalEvent,
    Event,
    MetricEvent,
    Progress,
    RunFinished,
    RunStarted,
    StageFailed,
    StageFinished,
    StageStarted,
    TeacherCall,
)


@dataclass
class StageState:
    """One pipeline stage as the events describe it."""

    name: str
    status: str = "pending"  # pending | running | finished | failed | interrupted
    started: float | None = None
    finished: float | None = None
    seconds: float | None = None
    attempts: int = 0  # stage_started events seen (a resume or --stage re-run starts it again)
    done: int | None = None
    total: int | None = None
    first_progress: tuple[float, int] | None = None  # (ts, done) of the first progress event seen
    last_progress_ts: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    part: str | None = None
    """The part of the stage the progress counts, e.g. "baseline timing" in evaluate (None: all)."""

    @property
    def fraction(self) -> float | None:
        if self.status == "finished":
            return 1.0
        if self.done is None or not self.total:
            return None
        return min(1.0, self.done / self.total)

    def eta_seconds(self, now: float | None = None) -> float | None:
        """Seconds left at the rate observed since the first progress event of this attempt."""
        if self.status != "running" or self.done is None or not self.total or self.first_progress is None:
            return None
        ts0, done0 = self.first_progress
        ts1 = self.last_progress_ts or ts0
        if self.done <= done0 or ts1 <= ts0:
            return None
        rate = (self.done - done0) / (ts1 - ts0)
        remaining = (self.total - self.done) / rate
        # Time already spent since the last progress event counts against the estimate; past it,
        # the stage is overdue (or its process died) and there is no honest estimate.
        elapsed_since = max(0.0, (now or time.time()) - ts1)
        return remaining - elapsed_since if elapsed_since <= remaining else None


@dataclass
class MetricPoint:
    step: int | None
    value: float
    ts: float


@dataclass
class RunState:
    """Everything the events of one run say, kept current by :meth:`apply`."""

    run_id: str
    name: str = ""
    kind: str = "pipeline"  # pipeline | eval (`still eval`)
    task: str = ""
    teacher: str = ""
    student: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    config_hash: str = ""
    primary_metric: str | None = None
    pid: int | None = None
    pid_start: float | None = None
    status: str = "created"  # created | running | completed | incomplete | failed | interrupted
    error: str | None = None
    starts: int = 0  # run_started events seen (each resume starts again)
    started: float | None = None
    last_start: float | None = None  # the latest run_started (a resume starts again)
    finished: float | None = None
    last_ts: float | None = None
    stages: dict[str, StageState] = field(default_factory=lambda: {s: StageState(s) for s in STAGES})
    planned: tuple[str, ...] = ()
    """The stages the latest start means to run (run_started ``stages``; empty: all of them)."""
    metrics: dict[str, list[MetricPoint]] = field(default_factory=dict)
    evals: dict[str, dict[str, float | None]] = field(default_factory=dict)  # role -> metric -> value
    eval_models: dict[str, str] = field(default_factory=dict)
    cost_usd: float = 0.0
    teacher_calls: int = 0
    teacher_errors: int = 0
    cache_hits: int = 0
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    events_seen: int = 0

    # -- folding ---------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Fold one event in. Unknown types are counted and otherwise ignored (newer writers)."""
        self.events_seen += 1
        ts = _float(event.get("ts"))
        if ts is not None:
            self.last_ts = ts
        handler = getattr(self, f"_on_{event.get('type')}", None)
        if handler is not None:
            handler(event, ts)

    def _on_run_started(self, e: RunStarted, ts: float | None) -> None:
        self.name = e.get("name") or self.name
        self.kind = e.get("kind") or self.kind
        self.task = e.get("task") or self.task
        self.teacher = e.get("teacher_model") or self.teacher
        self.student = e.get("student_model") or self.student
        self.config = e.get("config") or self.config
        self.config_hash = e.get("config_hash") or self.config_hash
        self.primary_metric = e.get("primary_metric") or self.primary_metric
        pid = e.get("pid")
        self.pid = pid if isinstance(pid, int) else self.pid
        self.pid_start = _float(e.get("pid_start"))
        wanted = e.get("stages")
        self.planned = tuple(str(x) for x in wanted if x in STAGES) if isinstance(wanted, list) else ()
        self.status = "running"
        self.error = None
        self.finished = None
        self.starts += 1
        if self.started is None:
            self.started = ts
        self.last_start = ts

    def _on_stage_started(self, e: StageStarted, ts: float | None) -> None:
        stage = self._stage(e)
        # A re-run (resume or --stage) starts the stage afresh: progress and ETA restart with it.
        stage.status, stage.started, stage.finished, stage.seconds = "running", ts, None, None
        stage.done = stage.total = None
        stage.first_progress = stage.last_progress_ts = None
        stage.error = None
        stage.attempts += 1

    def _on_progress(self, e: Progress, ts: float | None) -> None:
        stage = self._stage(e)
        done, total = e.get("done"), e.get("total")
        if not isinstance(done, int):
            return
        part = " ".join(str(v) for v in (e.get("role"), e.get("phase")) if v) or None
        if part != stage.part:  # evaluate counts each role and phase apart: its ETA starts afresh
            stage.part, stage.first_progress = part, None
        stage.done, stage.total = done, total if isinstance(total, int) else stage.total
        if stage.status == "pending":
            stage.status, stage.started = "running", ts
        if ts is not None:
            if stage.first_progress is None:
                stage.first_progress = (ts, done)
            stage.last_progress_ts = ts

    def _on_stage_finished(self, e: StageFinished, ts: float | None) -> None:
        stage = self._stage(e)
        stage.status, stage.finished = "finished", ts
        stage.seconds = _float(e.get("seconds"))
        stage.summary = e.get("summary") or {}
        stage.error = None  # a finished stage carries no error of an earlier attempt
        if stage.total is not None:
            stage.done = stage.total

    def _on_stage_failed(self, e: StageFailed, ts: float | None) -> None:
        stage = self._stage(e)
        stage.error = str(e.get("error") or "")
        # The pipeline records a Ctrl+C / cancel as stage_failed(error="interrupted").
        stage.status = "interrupted" if stage.error == "interrupted" else "failed"
        stage.finished = ts

    def _on_teacher_call(self, e: TeacherCall, ts: float | None) -> None:
        self.teacher_calls += 1
        self.cost_usd += _float(e.get("cost_usd")) or 0.0
        self.cache_hits += bool(e.get("cache_hit"))
        self.teacher_errors += bool(e.get("error"))

    def _on_metric(self, e: MetricEvent, ts: float | None) -> None:
        value = _float(e.get("value"))
        key = e.get("key")
        if value is None or not isinstance(key, str):
            return
        step = e.get("step")
        self.metrics.setdefault(key, []).append(MetricPoint(step if isinstance(step, int) else None, value, ts or 0.0))

    def _on_eval(self, e: EvalEvent, ts: float | None) -> None:
        role, metric = e.get("role"), e.get("metric")
        if not isinstance(role, str) or not isinstance(metric, str):
            return
        self.evals.setdefault(role, {})[metric] = _float(e.get("value"))
        if e.get("model"):
            self.eval_models[role] = str(e.get("model"))

    def _on_artifact(self, e: Artifact, ts: float | None) -> None:
        self.artifacts = [a for a in self.artifacts if a.get("name") != e.get("name")]
        self.artifacts.append({"name": e.get("name"), "path": e.get("path"), "bytes": e.get("bytes")})

    def _on_run_finished(self, e: RunFinished, ts: float | None) -> None:
        self.status = e.get("status") or "completed"
        error = e.get("error")
        self.error = None if error is None else str(error)
        self.finished = ts
        for stage in self.stages.values():
            # A killed stage never wrote stage_failed; the run's end says it stopped.
            if stage.status == "running":
                stage.status = "failed" if self.status == "failed" else "interrupted"

    def _stage(self, e: StageStarted | Progress | StageFinished | StageFailed) -> StageState:
        name = str(e.get("stage") or "?")
        if name not in self.stages:
            self.stages[name] = StageState(name)
        return self.stages[name]

    # -- derived values --------------------------------------------------------------------

    def finished_stages(self) -> dict[str, dict[str, Any]]:
        """Stages whose latest attempt finished, with their summaries. A stage that started again
        (re-run with ``--stage``) counts as unfinished until it finishes again."""
        return {s.name: s.summary for s in self.stages.values() if s.status == "finished"}

    def summary(self, stage: str) -> dict[str, Any]:
        """The summary of ``stage``'s latest finish ({} when it never finished)."""
        found = self.stages.get(stage)
        return found.summary if found is not None else {}

    @property
    def current_stage(self) -> StageState | None:
        running = [s for s in self.stages.values() if s.status == "running"]
        return running[-1] if running else None

    @property
    def progress(self) -> float | None:
        """Share of the pipeline done: finished stages count whole, the running one by its progress."""
        if self.status == "completed":
            return 1.0
        # `still run --stage generate` plans one stage: its progress is that stage's, not a fifth.
        stages = [s for s in self.stages.values() if s.name in (self.planned or STAGES)]
        if not any(s.status != "pending" for s in stages):
            return None
        done = sum(1.0 for s in stages if s.status == "finished")
        current = self.current_stage
        if current is not None and current.fraction is not None:
            done += current.fraction
        return done / len(stages)

    def eta_seconds(self, now: float | None = None) -> float | None:
        current = self.current_stage
        return current.eta_seconds(now) if current else None

    def primary(self, role: str) -> float | None:
        metric = self.primary_metric
        if metric is None:
            return None
        return self.evals.get(role, {}).get(metric)

    @property
    def retention(self) -> float | None:
        """Distilled student's primary metric as a share of the teacher's (1.0 = 100 %)."""
        return retention(self.primary("student"), self.primary("teacher"))

    def latest(self, key: str) -> float | None:
        points = self.metrics.get(key)
        return points[-1].value if points else None


def fold(events: Iterable[Event], run_id: str = "") -> RunState:
    """The state that ``events`` (in file order) leave a run in."""
    state = RunState(run_id=run_id)
    for event in events:
        state.apply(event)
    return state


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


__all__ = ["MetricPoint", "RunState", "StageState", "fold"]
