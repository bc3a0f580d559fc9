"""The event protocol of a run: one JSON object a line in the run folder's events file.

Every event has ``ts`` (unix seconds, float), ``type`` and ``run_id``; the other fields per type are
the TypedDicts below, and :data:`Event` is their union. The kernel writes them (``Run.emit``); the
registry, the TUI, the reports and the plugins read them through :func:`read_events` or an
:class:`EventReader`, never by parsing lines of their own.

Readers are lenient on purpose: a line torn by a kill, a line that is not a JSON object, and a
field a writer left out never stop a reader. An event whose ``type`` the kernel does not know
(a third-party plugin's) is passed through; folds ignore it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict, Union, cast, get_args, get_type_hints

if TYPE_CHECKING:
    from stillhouse.kernel.interfaces import TeacherResult

STAGES = ("generate", "filter", "train", "evaluate", "report")
"""The pipeline's stages in the order they run (the ``stage`` of stage and progress events)."""

RunStatus = Literal["completed", "incomplete", "failed", "interrupted"]


class _Base(TypedDict):
    ts: float
    run_id: str


class RunStarted(_Base):
    type: Literal["run_started"]
    name: NotRequired[str | None]
    kind: NotRequired[str]  # "pipeline" (default) | "eval"
    task: NotRequired[str]
    teacher_model: NotRequired[str | None]
    student_model: NotRequired[str | None]
    primary_metric: NotRequired[str | None]
    config: NotRequired[dict[str, Any]]
    config_hash: NotRequired[str]
    resumed: NotRequired[bool]
    stages: NotRequired[list[str]]  # the stages this start means to run
    pid: NotRequired[int]
    pid_start: NotRequired[float | None]  # the process start time, to tell a reused pid from the run
    plugins: NotRequired[list[dict[str, Any]]]


class StageStarted(_Base):
    type: Literal["stage_started"]
    stage: str


class Progress(_Base):
    type: Literal["progress"]
    stage: str
    done: int
    total: int | None
    role: NotRequired[str]  # evaluate counts each role and phase apart
    phase: NotRequired[str]


class StageFinished(_Base):
    type: Literal["stage_finished"]
    stage: str
    summary: dict[str, Any]
    seconds: float


class StageFailed(_Base):
    type: Literal["stage_failed"]
    stage: str
    error: str  # "interrupted" for a Ctrl+C or a cancel


class TeacherCall(_Base):
    type: Literal["teacher_call"]
    sample_id: str
    split: str
    model: str
    cache_key: str
    cache_hit: bool
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    latency_ms: float
    error: str | None
    teacher: NotRequired[str]  # with [[teachers]]: the teacher's name; "judge" for the judge's calls



def teacher_call_fields(result: TeacherResult, split: str, teacher: str | None = None) -> dict[str, Any]:
    """The fields of a ``teacher_call`` event for one answer (``teacher``: the ``[[teachers]]`` name
    or "judge"; left out for the one ``[teacher]``). One place, so every caller logs the same record."""
    fields: dict[str, Any] = {
        "sample_id": result.sample_id,
        "split": split,
        "model": result.model,
        "cache_key": result.cache_key,
        "cache_hit": result.cache_hit,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "cost_usd": result.cost_usd,
        "latency_ms": round(result.latency_ms, 3),
        "error": result.error,
    }
    if teacher is not None:
        fields["teacher"] = teacher
    return fields

class MetricEvent(_Base):
    type: Literal["metric"]
    key: str
    value: float
    step: NotRequired[int | None]
    context: NotRequired[str]  # "train" | "validation" | a stage name


class EvalEvent(_Base):
    type: Literal["eval"]
    role: str
    metric: str
    value: float | None
    n: NotRequired[int | None]
    reason: NotRequired[str | None]
    model: NotRequired[str]
    low: NotRequired[float | None]
    high: NotRequired[float | None]


class Artifact(_Base):
    type: Literal["artifact"]
    name: str
    path: str  # relative to the run folder
    bytes: int


class Log(_Base):
    type: Literal["log"]
    level: str
    message: str


class CurationEvent(_Base):
    """What data curation did (kernel/curation.py): ``step`` is dedup, contamination,
    validation_split (before the teacher is asked) or balance (before training)."""

    type: Literal["curation"]
    step: str
    split: str
    before: int  # rows (balance: accepted samples) before the step
    after: int
    removed: NotRequired[dict[str, int]]  # dedup: {"exact": n, "near": m}
    matches: NotRequired[dict[str, int]]  # contamination: training rows matching each evaluation split
    leaked: NotRequired[int]  # contamination: training rows matching any evaluation split
    mode: NotRequired[str]  # contamination: drop | report; balance: none | downsample | upsample | weights
    threshold: NotRequired[float]
    by: NotRequired[str]  # balance: "label" or the data.balance_by field
    distributions: NotRequired[dict[str, dict[str, Any]]]  # balance: input, accepted, training (+ training_weight)
    weights: NotRequired[dict[str, float]]  # balance = "weights": the loss weight of each label
    absent: NotRequired[list[str]]  # balance: labels with no accepted sample
    carved: NotRequired[int]  # validation_split
    fraction: NotRequired[float]
    stratified_by: NotRequired[str | None]
    pairs_before: NotRequired[int]
    pairs_after: NotRequired[int]
    examples: NotRequired[list[dict[str, Any]]]  # a few removed rows: id, the row it matched, similarity, text


class RunFinished(_Base):
    type: Literal["run_finished"]
    status: RunStatus
    error: str | None  # absent altogether when the process was killed: the registry says "dead"


Event = Union[  # noqa: UP007 - a runtime alias, read by get_args in the tests
    RunStarted,
    StageStarted,
    Progress,
    StageFinished,
    StageFailed,
    TeacherCall,
    MetricEvent,
    EvalEvent,
    Artifact,
    Log,
    CurationEvent,
    RunFinished,
]

EVENT_TYPES: frozenset[str] = frozenset(get_args(get_type_hints(member)["type"])[0] for member in get_args(Event))
"""The ``type`` of every member of :data:`Event`."""


def parse_event(line: str | bytes) -> Event | None:
    """The event on one line; None for a blank line, a torn line, or JSON that is not an event
    object (no string ``type``). Types the kernel does not know pass through unchanged."""
    if not line.strip():
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None  # only a torn final line can be malformed: writers write whole lines
    return as_event(value)


def as_event(value: Any) -> Event | None:
    """``value`` as an event when it is an object with a string ``type``, else None."""
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return cast(Event, value)
    return None


def read_events(path: Path) -> Iterator[Event]:
    """Every event of an events file (none when it does not exist), skipping torn lines."""
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for line in fh:
            event = parse_event(line)
            if event is not None:
                yield event


def read_complete_lines(path: Path, offset: int) -> tuple[bytes, int]:
    """The bytes of ``path`` from ``offset`` up to its last newline, and the offset after them.

    A writer may be half-way through the last line: it waits for the next call."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return b"", offset
    end = data.rfind(b"\n") + 1
    return data[:end], offset + end


class EventReader:
    """Reads a growing events file incrementally: each :meth:`read_new` returns the whole lines
    appended since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset = 0

    def read_new(self) -> list[Event]:
        data, self.offset = read_complete_lines(self.path, self.offset)
        return [e for e in map(parse_event, data.splitlines()) if e is not None]


__all__ = [
    "EVENT_TYPES",
    "STAGES",
    "Artifact",
    "CurationEvent",
    "EvalEvent",
    "Event",
    "EventReader",
    "Log",
    "MetricEvent",
    "Progress",
    "RunFinished",
    "RunStarted",
    "RunStatus",
    "StageFailed",
    "StageFinished",
    "StageStarted",
    "TeacherCall",
    "as_event",
    "parse_event",
    "read_complete_lines",
    "read_events",
]
