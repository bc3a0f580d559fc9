"""Reading what a run folder holds besides its events: samples, evaluation outputs and results,
the resolved config, and the files it produced. Pure Python; called from worker threads."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stillhouse.kernel.run_folder import EvalResults, RunFolder

EVAL_ROLES_ORDER = ("teacher", "baseline", "student", "model")


@dataclass
class SampleView:
    """One sample as the samples tab shows it: the teacher's answer and verdict (training data),
    and each evaluated model's answer (held-out data), joined on ``sample_id``."""

    sample_id: str
    split: str = ""
    prompt: str = ""
    reference: str = ""
    accepted: bool | None = None
    reason: str = ""
    detail: str = ""  # what the filter measured against what limit ("132 words > max_words 120")
    confidence: float | None = None
    teacher_output: str = ""
    parsed_answer: str = ""
    source: str = ""
    outputs: dict[str, str] = field(default_factory=dict)  # eval role -> output
    parsed: dict[str, str] = field(default_factory=dict)  # eval role -> parsed answer
    errors: dict[str, str] = field(default_factory=dict)  # eval role -> error
    teachers: list[tuple[str, str]] = field(default_factory=list)  # [[teachers]]: (name, its answers), side by side
    chosen_teacher: str = ""  # [[teachers]]: whose answer became the target
    judge: str = ""  # the judge's score and reason

    @property
    def verdict(self) -> str:
        if self.accepted is None:
            return "eval"
        if self.accepted:
            return "accepted"
        return f"rejected: {self.reason}" + (f" ({self.detail})" if self.detail and self.detail != self.reason else "")

    def haystack(self) -> str:
        parts = [self.sample_id, self.prompt, self.reference, self.teacher_output, self.parsed_answer, self.reason, self.detail]
        return " ".join(" ".join([*parts, *self.outputs.values()]).lower().split())


def prompt_text(prompt: Any) -> str:
    """A chat prompt (list of messages) or plain string as readable text."""
    if isinstance(prompt, list):
        return "\n".join(
            f"[{m.get('role', '?')}] {m.get('content', '')}" if isinstance(m, dict) else str(m) for m in prompt
        )
    return "" if prompt is None else str(prompt)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def load_samples(run_dir: Path) -> list[SampleView]:
    """The filter's verdicts followed by each evaluated role's per-sample outputs."""
    folder = RunFolder(run_dir)
    views: dict[str, SampleView] = {}
    for row in folder.samples():
        sid = str(row.get("sample_id", ""))
        views[sid] = SampleView(
            sample_id=sid,
            split=str(row.get("split") or ""),
            prompt=prompt_text(row.get("prompt")),
            reference=_text(row.get("reference")),
            accepted=bool(row.get("accepted")),
            reason=str(row.get("reason") or ("ok" if row.get("accepted") else "")),
            detail=_text(row.get("detail")),
            confidence=row.get("confidence"),
            teacher_output=_text(row.get("teacher_output")),
            parsed_answer=_text(row.get("parsed_answer")),
            source=str(row.get("source") or ""),
            teachers=[
                (str(t.get("teacher", "")), ", ".join(_text(x) if x is not None else "?" for x in t.get("answers") or []) or _text(t.get("error")))
                for t in row.get("teacher_answers") or []
                if isinstance(t, dict)
            ],
            chosen_teacher=str(row.get("teacher") or ""),
            judge=f"{row['judge_score']:g} - {row.get('judge_reason') or ''}" if row.get("judge_score") is not None else "",
        )
    for role in eval_roles(run_dir):
        for out in folder.eval_outputs(role):  # dict lines, not SampleRecords
            sid = str(out.get("sample_id", ""))
            view = views.get(sid)
            if view is None:
                view = views[sid] = SampleView(
                    sample_id=sid, split="eval", prompt=prompt_text(out.get("prompt")), reference=_text(out.get("reference"))
                )
            view.outputs[role] = _text(out.get("output"))
            view.parsed[role] = _text(out.get("parsed_answer"))
            if out.get("error"):
                view.errors[role] = str(out["error"])
    return list(views.values())


def eval_roles(run_dir: Path) -> list[str]:
    """Roles with per-sample evaluation output, teacher/baseline/student first."""
    found = {p.stem for p in RunFolder(run_dir).eval_output_files()}
    ordered = [r for r in EVAL_ROLES_ORDER if r in found]
    return ordered + sorted(found - set(ordered))


def filter_samples(samples: list[SampleView], verdict: str, search: str) -> list[SampleView]:
    """``verdict``: all | accepted | rejected | eval | reason:<name>; ``search``: a phrase (case and
    spacing ignored) found in the id, prompt, any answer, the reference or the reason."""
    phrase = " ".join(search.lower().split())
    out = []
    for s in samples:
        if verdict == "accepted" and s.accepted is not True:
            continue
        if verdict == "rejected" and s.accepted is not False:
            continue
        if verdict == "eval" and not s.outputs:
            continue
        if verdict.startswith("reason:") and (s.accepted is not False or s.reason != verdict[7:]):
            continue
        if phrase and phrase not in s.haystack():
            continue
        out.append(s)
    return out


def reject_reasons(samples: list[SampleView]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for s in samples:
        if s.accepted is False:
            counts[s.reason] = counts.get(s.reason, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def results_table(results: EvalResults) -> tuple[list[str], list[list[Any]]]:
    """Metrics (rows) by role (columns) from the evaluation results: (roles, [[metric, v_role1, ...], ...])."""
    roles = [r for r in EVAL_ROLES_ORDER if r in results] + sorted(set(results) - set(EVAL_ROLES_ORDER))
    metrics: list[str | None] = []  # as stored: a row without a name shows as None, as before
    values: dict[tuple[str | None, str], Any] = {}
    for role in roles:
        for metric in results[role].get("metrics") or []:
            name = metric.get("name")
            if name not in metrics:
                metrics.append(name)
            values[(name, role)] = metric.get("value")
    return roles, [[name, *(values.get((name, role)) for role in roles)] for name in metrics]


def config_text(run_dir: Path, config: dict[str, Any]) -> str:
    """The resolved config as TOML: the folder's config.toml, else rendered from the event."""
    path = RunFolder(run_dir).config_toml
    if path.exists():
        return path.read_text(encoding="utf-8")
    if config:
        from stillhouse.kernel.config import to_toml

        return to_toml(config)
    return ""


@dataclass
class FileEntry:
    path: str  # relative to the run folder
    bytes: int
    declared: bool = False  # named by an artifact event


def list_files(run_dir: Path, artifacts: list[dict[str, Any]], max_depth: int = 2) -> list[FileEntry]:
    """Artifacts the run declared, then every file up to ``max_depth`` folders deep (checkpoints
    collapse to their folder so a long training run does not drown the list)."""
    entries: list[FileEntry] = []
    seen: set[str] = set()
    for artifact in artifacts:
        rel = str(artifact.get("path") or artifact.get("name") or "")
        size = artifact.get("bytes")
        entries.append(FileEntry(rel, int(size) if isinstance(size, int) else _bytes(run_dir / rel), True))
        seen.add(rel)
    for dirpath, dirnames, filenames in os.walk(run_dir):
        rel_dir = os.path.relpath(dirpath, run_dir)
        depth = 0 if rel_dir == "." else rel_dir.count(os.sep) + 1
        if depth >= max_depth:
            dirnames[:] = []
            if rel_dir not in seen:
                entries.append(FileEntry(rel_dir + "/", _bytes(Path(dirpath))))
            continue
        dirnames.sort()
        for name in sorted(filenames):
            rel = name if rel_dir == "." else os.path.join(rel_dir, name)
            if rel not in seen:
                entries.append(FileEntry(rel, _bytes(Path(dirpath) / name)))
    return entries


def _bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.path.getsize(os.path.join(dirpath, name))
            except OSError:
                continue
    return total


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
