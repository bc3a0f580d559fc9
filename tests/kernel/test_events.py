"""The event protocol: every kernel event type round-trips through the events file, and readers
survive what a kill or a newer writer leaves behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

from stillhouse.kernel.events import EVENT_TYPES, Event, EventReader, parse_event, read_events
from stillhouse.kernel.run_folder import RunFolder

ONE_OF_EACH: list[dict] = [
    {"ts": 1.0, "run_id": "r", "type": "run_started", "name": "n", "task": "nli", "config": {"a": 1}, "pid": 7},
    {"ts": 2.0, "run_id": "r", "type": "stage_started", "stage": "generate"},
    {"ts": 3.0, "run_id": "r", "type": "progress", "stage": "generate", "done": 1, "total": 2},
    {
        "ts": 4.0,
        "run_id": "r",
        "type": "teacher_call",
        "sample_id": "s1",
        "split": "train",
        "model": "m",
        "cache_key": "k",
        "cache_hit": False,
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "cost_usd": 0.5,
        "latency_ms": 9.0,
        "error": None,
    },
    {"ts": 5.0, "run_id": "r", "type": "stage_finished", "stage": "generate", "summary": {"n": 2}, "seconds": 3.0},
    {"ts": 6.0, "run_id": "r", "type": "stage_failed", "stage": "filter", "error": "boom"},
    {"ts": 7.0, "run_id": "r", "type": "metric", "key": "train/loss", "value": 1.5, "step": 1, "context": "train"},
    {"ts": 8.0, "run_id": "r", "type": "eval", "role": "student", "metric": "accuracy", "value": 0.5, "n": 10},
    {"ts": 9.0, "run_id": "r", "type": "artifact", "name": "student", "path": "student", "bytes": 12},
    {"ts": 10.0, "run_id": "r", "type": "log", "level": "info", "message": "hi"},
    {"ts": 10.5, "run_id": "r", "type": "curation", "step": "dedup", "split": "train", "before": 3, "after": 2, "removed": {"exact": 1, "near": 0}},
    {"ts": 11.0, "run_id": "r", "type": "run_finished", "status": "failed", "error": "boom"},
]


def test_the_union_names_every_event_type_the_kernel_writes() -> None:
    assert len(get_args(Event)) == len(EVENT_TYPES) == 12
    assert {e["type"] for e in ONE_OF_EACH} == set(EVENT_TYPES)


def test_every_event_type_round_trips_through_the_events_file(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    folder.append_events(ONE_OF_EACH, fsync=False)
    assert list(read_events(folder.events_path)) == ONE_OF_EACH
    assert list(folder.events()) == ONE_OF_EACH


def test_an_unknown_event_type_passes_through_and_a_non_event_does_not() -> None:
    assert parse_event('{"type": "plugin_thing", "ts": 1, "x": 2}') == {"type": "plugin_thing", "ts": 1, "x": 2}
    assert parse_event('{"ts": 1}') is None  # no type
    assert parse_event('{"type": 3}') is None
    assert parse_event("[1, 2]") is None
    assert parse_event("   ") is None


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / RunFolder.EVENTS
    path.write_text(json.dumps(ONE_OF_EACH[0]) + "\n" + '{"ts": 2.0, "type": "stage_sta')
    assert list(read_events(path)) == [ONE_OF_EACH[0]]


def test_the_incremental_reader_returns_only_whole_new_lines(tmp_path: Path) -> None:
    path = tmp_path / RunFolder.EVENTS
    reader = EventReader(path)
    assert reader.read_new() == []  # no file yet
    first, second = (json.dumps(e) for e in ONE_OF_EACH[:2])
    path.write_text(first + "\n" + second[:10])  # the writer is half-way through the second line
    assert reader.read_new() == [ONE_OF_EACH[0]]
    assert reader.read_new() == []
    with open(path, "a") as fh:
        fh.write(second[10:] + "\n")
    assert reader.read_new() == [ONE_OF_EACH[1]]
    assert reader.offset == path.stat().st_size


def test_a_line_torn_by_a_kill_and_then_appended_to_is_skipped(tmp_path: Path) -> None:
    """A resumed run's append ends the torn line first (append_jsonl); the torn part alone is lost."""
    folder = RunFolder(tmp_path)
    folder.events_path.write_text(json.dumps(ONE_OF_EACH[0]) + "\n" + '{"ts": 2.0, "ty')
    reader = folder.event_reader()
    assert reader.read_new() == [ONE_OF_EACH[0]]
    folder.append_events([ONE_OF_EACH[1]], fsync=False)
    assert reader.read_new() == [ONE_OF_EACH[1]]
