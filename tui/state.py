"""A run's live state, folded from its ``events.jsonl``.

The TUI never asks the registry how a running run is doing: the run folder is the truth and the
registry only catches up at stage ends. :class:`EventFollower` reads only the bytes appended since
its last call (a torn last line is left for the next call), and :class:`RunState` folds each event
into what the screens show: stages with progress and ETA, training metrics, evaluation results,
cost, artifacts and the pid that a cancel signals.

Pure Python, no Textual: the screens call this from worker threads and tests call it directly.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stillhouse.kernel.runs import STAGES


@dataclass
class StageState:
    """One pipeline stage as the events describe it."""

    name: str
    status: str = "pending"  # pending | running | finished | failed | interrupted
    started: float | None = None
    finished: float | None = None
    seconds: float | None = None
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
    task: str = ""
    teacher: str = ""
    student: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    config_hash: str = ""
    primary_metric: str | None = None
    pid: int | None = None
    status: str = "created"
    error: str | None = None
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

    def apply(self, event: dict[str, Any]) -> None:
        """Fold one event in. Unknown types are counted and otherwise ignored (newer writers)."""
        self.events_seen += 1
        kind = event.get("type")
        ts = _float(event.get("ts"))
        if ts is not None:
            self.last_ts = ts
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(event, ts)

    def _on_run_started(self, e: dict[str, Any], ts: float | None) -> None:
        self.name = e.get("name") or self.name
        self.task = e.get("task") or self.task
        self.teacher = e.get("teacher_model") or self.teacher
        self.student = e.get("student_model") or self.student
        self.config = e.get("config") or self.config
        self.config_hash = e.get("config_hash") or self.config_hash
        self.primary_metric = e.get("primary_metric") or self.primary_metric
        self.pid = e.get("pid") if isinstance(e.get("pid"), int) else self.pid
        wanted = e.get("stages")
        self.planned = tuple(str(x) for x in wanted if x in STAGES) if isinstance(wanted, list) else ()
        self.status = "running"
        self.error = None
        self.finished = None
        if self.started is None:
            self.started = ts
        self.last_start = ts

    def _on_stage_started(self, e: dict[str, Any], ts: float | None) -> None:
        stage = self._stage(e)
        # A re-run (resume or --stage) starts the stage afresh: progress and ETA restart with it.
        stage.status, stage.started, stage.finished, stage.seconds = "running", ts, None, None
        stage.done = stage.total = None
        stage.first_progress = stage.last_progress_ts = None
        stage.error = None

    def _on_progress(self, e: dict[str, Any], ts: float | None) -> None:
        stage = self._stage(e)
        done, total = e.get("done"), e.get("total")
        if not isinstance(done, int):
            return
        part = " ".join(str(e[k]) for k in ("role", "phase") if e.get(k)) or None
        if part != stage.part:  # evaluate counts each role and phase apart: its ETA starts afresh
            stage.part, stage.first_progress = part, None
        stage.done, stage.total = done, total if isinstance(total, int) else stage.total
        if stage.status == "pending":
            stage.status, stage.started = "running", ts
        if ts is not None:
            if stage.first_progress is None:
                stage.first_progress = (ts, done)
            stage.last_progress_ts = ts

    def _on_stage_finished(self, e: dict[str, Any], ts: float | None) -> None:
        stage = self._stage(e)
        stage.status, stage.finished = "finished", ts
        stage.seconds = _float(e.get("seconds"))
        stage.summary = e.get("summary") or {}
        if stage.total is not None:
            stage.done = stage.total

    def _on_stage_failed(self, e: dict[str, Any], ts: float | None) -> None:
        stage = self._stage(e)
        stage.error = str(e.get("error") or "")
        # The pipeline records a Ctrl+C / cancel as stage_failed(error="interrupted").
        stage.status = "interrupted" if stage.error == "interrupted" else "failed"
        stage.finished = ts

    def _on_teacher_call(self, e: dict[str, Any], ts: float | None) -> None:
        self.teacher_calls += 1
        self.cost_usd += _float(e.get("cost_usd")) or 0.0
        self.cache_hits += bool(e.get("cache_hit"))
        self.teacher_errors += bool(e.get("error"))

    def _on_metric(self, e: dict[str, Any], ts: float | None) -> None:
        value = _float(e.get("value"))
        key = e.get("key")
        if value is None or not isinstance(key, str):
            return
        step = e.get("step") if isinstance(e.get("step"), int) else None
        self.metrics.setdefault(key, []).append(MetricPoint(step, value, ts or 0.0))

    def _on_eval(self, e: dict[str, Any], ts: float | None) -> None:
        role, metric = e.get("role"), e.get("metric")
        if not isinstance(role, str) or not isinstance(metric, str):
            return
        self.evals.setdefault(role, {})[metric] = _float(e.get("value"))
        if e.get("model"):
            self.eval_models[role] = str(e["model"])

    def _on_artifact(self, e: dict[str, Any], ts: float | None) -> None:
        self.artifacts = [a for a in self.artifacts if a.get("name") != e.get("name")]
        self.artifacts.append({"name": e.get("name"), "path": e.get("path"), "bytes": e.get("bytes")})

    def _on_run_finished(self, e: dict[str, Any], ts: float | None) -> None:
        self.status = e.get("status") or "completed"
        self.error = e.get("error")
        self.finished = ts
        for stage in self.stages.values():
            # A killed stage never wrote stage_failed; the run's end says it stopped.
            if stage.status == "running":
                stage.status = "failed" if self.status == "failed" else "interrupted"

    def _stage(self, e: dict[str, Any]) -> StageState:
        name = str(e.get("stage") or "?")
        if name not in self.stages:
            self.stages[name] = StageState(name)
        return self.stages[name]

    # -- derived values --------------------------------------------------------------------

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
        student, teacher = self.primary("student"), self.primary("teacher")
        if student is None or not teacher:
            return None
        return student / teacher

    def latest(self, key: str) -> float | None:
        points = self.metrics.get(key)
        return points[-1].value if points else None


class EventFollower:
    """Reads a growing ``events.jsonl`` incrementally and keeps a :class:`RunState` current."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "events.jsonl"
        self.state = RunState(run_id=self.run_dir.name)
        self._offset = 0

    def poll(self) -> list[dict[str, Any]]:
        """Fold in the events appended since the last call and return them."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        # Only whole lines: a writer may be half-way through the last one.
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self._offset += end + 1
        events = []
        for raw in chunk[: end + 1].splitlines():
            if not raw.strip():
                continue
            try:
                event = json.loads(raw)
            except json.JSONDecodeError:
                continue  # a line torn by a kill, then overwritten by a resumed run's append
            if isinstance(event, dict):
                self.state.apply(event)
                events.append(event)
        return events


def load_state(run_dir: Path) -> RunState:
    """The state of a run folder as of now."""
    follower = EventFollower(run_dir)
    follower.poll()
    return follower.state


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None
