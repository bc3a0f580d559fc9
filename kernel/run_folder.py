"""The layout of a run folder, defined once, with typed readers and writers for what it holds.

``$STILLHOUSE_HOME/runs/<run_id>/`` holds

- ``config.json`` / ``config.toml``  the resolved config (no secrets: keys are env var *names*)
- ``events.jsonl``                   append-only, one event a line (``kernel.events``)
- ``teacher/outputs.jsonl``          one TeacherResult a line, appended + fsynced as they arrive
                                     (with ``[[teachers]]``, each line names its ``teacher``)
- ``teacher/judge.jsonl``            the judge's replies (``judge = {...}``), one TeacherResult a line
- ``samples.jsonl``                  the filter stage's verdict and targets per example
- ``checkpoints/``, ``student/``     training state and the distilled student
- ``eval/<role>.jsonl``              per-sample evaluation outputs of each role
- ``eval/results.json``              {role: {model, info, metrics}}, rewritten whole after each role
- ``report.md``, ``report.html``, ``run.lock``

Every other module reaches these files through :class:`RunFolder`: a file name spelled anywhere
else is a second definition that can drift.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypedDict, cast

from stillhouse.kernel.comparison import metric_from_dict
from stillhouse.kernel.events import Event, EventReader, read_events
from stillhouse.kernel.interfaces import Completion, Metric, TeacherResult, TokenLogprob
from stillhouse.kernel.secrets import redact_text

# -- JSONL files written by us -------------------------------------------------------------------

_checked_tails: set[Path] = set()


def append_jsonl(path: Path, records: Sequence[Any], *, fsync: bool = True) -> None:
    """Append records durably: one write, then fsync, so a kill loses at most this call."""
    if not records:
        return
    # Redacted at the source: a provider that echoes the key in an error never gets it on disk.
    data = redact_text("".join(json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in records))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path not in _checked_tails:
        # A process killed mid-write can leave a torn last line; end it so the next record
        # starts on a line of its own (readers skip the torn one). Once per file per process.
        _checked_tails.add(path)
        if path.exists() and path.stat().st_size:
            with open(path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    data = "\n" + data
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(data)
        fh.flush()
        if fsync:
            os.fsync(fh.fileno())


def write_text_redacted(path: Path, text: str) -> None:
    """Write a run file whole (atomically: a temporary file, then rename), secrets redacted."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(redact_text(text), encoding="utf-8")
    os.replace(tmp, path)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Read a JSONL file written by us, ignoring a torn last line left by a kill."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue  # only a torn final line can be malformed: we write whole lines


# -- records -------------------------------------------------------------------------------------


@dataclass
class StoredTeacherResult(TeacherResult):
    """A TeacherResult as the generate stage stored it, with the split its example came from."""

    split: str = ""
    teacher: str = ""
    """The ``[[teachers]]`` name that answered; "" for the one ``[teacher]``."""


class SampleRecord(TypedDict, total=False):
    """One line of samples.jsonl: the filter stage's verdict on one teacher answer."""

    sample_id: str
    split: str
    accepted: bool
    reason: str
    detail: str | None
    finish_reason: str | None
    confidence: float | None
    prompt: Any  # the student's chat messages
    teacher_output: str | None
    parsed_answer: Any
    rationale: str | None
    reference: Any
    targets: list[dict[str, Any]]  # TrainPair fields
    source: str | None
    teacher: str | None  # with [[teachers]]: the teacher whose answer became the target
    teacher_answers: list[dict[str, Any]]  # with [[teachers]]: each teacher's answer (name, model, weight, answer, text)
    judge_score: float | None  # with a judge: its score of the answer (on its scale)
    judge_reason: str | None  # with a judge: its short reason
    judge_comparisons: list[dict[str, Any]]  # a pairwise judge: each pair of teachers, asked in both orders
    judge_verdict: str  # a pairwise judge: how the chosen teacher fared


class RoleResults(TypedDict, total=False):
    """One role's entry of eval/results.json."""

    model: str
    info: dict[str, Any]
    metrics: list[dict[str, Any]]  # Metric fields


EvalResults = dict[str, RoleResults]
"""eval/results.json: role -> its results."""


def teacher_result_from_dict(data: dict[str, Any]) -> StoredTeacherResult:
    """A stored line of teacher/outputs.jsonl as a typed record (unknown keys ignored)."""
    known = {f.name for f in fields(StoredTeacherResult)}
    values = {k: v for k, v in data.items() if k in known}
    values["completions"] = [_completion(c) for c in data.get("completions") or [] if isinstance(c, dict)]
    values.setdefault("model", "")
    return StoredTeacherResult(**values)


def _completion(data: dict[str, Any]) -> Completion:
    logprobs = data.get("logprobs")
    return Completion(
        text=data.get("text") or "",
        finish_reason=data.get("finish_reason"),
        logprobs=None
        if logprobs is None
        else [
            TokenLogprob(t["token"], t["logprob"], [(str(a), float(lp)) for a, lp in t.get("top") or []])
            for t in logprobs
        ],
    )


# -- the folder ----------------------------------------------------------------------------------


class RunFolder:
    """One run folder: its paths, and typed access to the files in it."""

    CONFIG_JSON = "config.json"
    CONFIG_TOML = "config.toml"
    EVENTS = "events.jsonl"
    TEACHER_OUTPUTS = "teacher/outputs.jsonl"
    JUDGE_OUTPUTS = "teacher/judge.jsonl"
    SAMPLES = "samples.jsonl"
    CHECKPOINTS = "checkpoints"
    STUDENT = "student"
    EVAL = "eval"
    RESULTS = "eval/results.json"
    LOCK = "run.lock"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunFolder) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    # -- paths ---------------------------------------------------------------------------------

    @property
    def config_json(self) -> Path:
        return self.root / self.CONFIG_JSON

    @property
    def config_toml(self) -> Path:
        return self.root / self.CONFIG_TOML

    @property
    def events_path(self) -> Path:
        return self.root / self.EVENTS

    @property
    def teacher_outputs(self) -> Path:
        return self.root / self.TEACHER_OUTPUTS

    @property
    def judge_outputs(self) -> Path:
        return self.root / self.JUDGE_OUTPUTS

    @property
    def samples_path(self) -> Path:
        return self.root / self.SAMPLES

    @property
    def checkpoints(self) -> Path:
        return self.root / self.CHECKPOINTS

    @property
    def student(self) -> Path:
        return self.root / self.STUDENT

    @property
    def eval_dir(self) -> Path:
        return self.root / self.EVAL

    @property
    def results_path(self) -> Path:
        return self.root / self.RESULTS

    @property
    def lock_path(self) -> Path:
        return self.root / self.LOCK

    def eval_outputs_path(self, role: str) -> Path:
        """eval/<role>.jsonl: one evaluated sample a line."""
        return self.eval_dir / f"{role}.jsonl"

    def eval_output_files(self) -> list[Path]:
        """The eval/<role>.jsonl files there are, sorted by name."""
        try:
            with os.scandir(self.eval_dir) as entries:
                return sorted(Path(e.path) for e in entries if e.name.endswith(".jsonl") and e.is_file())
        except (FileNotFoundError, NotADirectoryError):
            return []

    def is_run(self) -> bool:
        """Whether this folder is a run: it has an events file."""
        return self.events_path.exists()

    # -- config --------------------------------------------------------------------------------

    def read_config(self) -> dict[str, Any]:
        """The resolved config (config.json), {} when there is none."""
        path = self.config_json
        return json.loads(path.read_text()) if path.exists() else {}

    def write_config(self, config: dict[str, Any], toml: str | None = None) -> None:
        """config.json, and config.toml when its text is given."""
        self.config_json.write_text(json.dumps(config, indent=2))
        if toml is not None:
            self.config_toml.write_text(toml)

    # -- events --------------------------------------------------------------------------------

    def events(self) -> Iterator[Event]:
        return read_events(self.events_path)

    def event_reader(self) -> EventReader:
        """An incremental reader of this folder's events (a live run's file grows)."""
        return EventReader(self.events_path)

    def append_events(self, events: Sequence[Event | dict[str, Any]], *, fsync: bool = True) -> None:
        append_jsonl(self.events_path, events, fsync=fsync)

    # -- teacher outputs -----------------------------------------------------------------------

    def append_teacher_result(self, result: TeacherResult, split: str, teacher: str = "") -> None:
        """Store one answer; ``teacher`` names the ``[[teachers]]`` entry that gave it ("" for ``[teacher]``)."""
        append_jsonl(self.teacher_outputs, [{**asdict(result), "split": split, **({"teacher": teacher} if teacher else {})}])

    def teacher_results(self) -> Iterator[StoredTeacherResult]:
        """Every stored teacher result in file order (a retried sample appears more than once)."""
        for record in read_jsonl(self.teacher_outputs):
            yield teacher_result_from_dict(record)

    def latest_teacher_results(self, teacher: str = "") -> dict[str, StoredTeacherResult]:
        """The latest result per sample id of one teacher ("": the one ``[teacher]``): a retried
        failure is superseded by its success."""
        return {r.sample_id: r for r in self.teacher_results() if r.teacher == teacher}

    def latest_results_by_teacher(self) -> dict[str, dict[str, StoredTeacherResult]]:
        """Teacher name -> its latest result per sample id (a ``[[teachers]]`` run)."""
        out: dict[str, dict[str, StoredTeacherResult]] = {}
        for result in self.teacher_results():
            out.setdefault(result.teacher, {})[result.sample_id] = result
        return out

    def append_judge_result(self, result: TeacherResult, split: str) -> None:
        append_jsonl(self.judge_outputs, [{**asdict(result), "split": split}])

    def judge_results(self) -> Iterator[StoredTeacherResult]:
        """Every stored judge reply in file order."""
        for record in read_jsonl(self.judge_outputs):
            yield teacher_result_from_dict(record)

    # -- filtered samples ----------------------------------------------------------------------

    def write_samples(self, records: Sequence[SampleRecord]) -> None:
        text = "".join(json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in records)
        write_text_redacted(self.samples_path, text)

    def samples(self) -> Iterator[SampleRecord]:
        for record in read_jsonl(self.samples_path):
            yield cast(SampleRecord, record)  # a stored line, keys as written by write_samples

    # -- evaluation ----------------------------------------------------------------------------

    def eval_outputs(self, role: str) -> Iterator[dict[str, Any]]:
        return read_jsonl(self.eval_outputs_path(role))

    def read_results(self) -> EvalResults:
        """eval/results.json; {} while evaluation has not written it (or mid-write)."""
        try:
            data = json.loads(self.results_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write_results(self, results: EvalResults) -> None:
        self.eval_dir.mkdir(parents=True, exist_ok=True)
        write_text_redacted(self.results_path, json.dumps(results, indent=2, default=str))

    def read_metrics(self) -> dict[str, list[Metric]]:
        """eval/results.json as typed metrics per role."""
        return {
            role: [metric_from_dict(m) for m in entry.get("metrics") or []]
            for role, entry in self.read_results().items()
            if isinstance(entry, dict)
        }

    def read_models(self) -> dict[str, str]:
        """The model evaluated in each role, from eval/results.json."""
        return {
            role: str(entry.get("model", "")) for role, entry in self.read_results().items() if isinstance(entry, dict)
        }


__all__ = [
    "EvalResults",
    "RoleResults",
    "RunFolder",
    "SampleRecord",
    "StoredTeacherResult",
    "append_jsonl",
    "read_jsonl",
    "teacher_result_from_dict",
    "write_text_redacted",
]
