"""Secrets never reach the database: keys planted in a run's config, events and files are redacted
at ingest (the pipeline redacts at the source; this is the second line)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from stillhouse.kernel.runs import append_jsonl
from stillhouse.registry.db import db_path
from stillhouse.registry.ingest import ingest_all
from stillhouse.registry.redact import REDACTED, Redactor
from stillhouse.registry.schema import catalog
from stillhouse.testing.sample_runs import FakeRun, fabricate, write_outputs
from tests.registry.conftest import table

KEY = "sk-proj-PLANTEDsecretKEY0123456789abcdef"
BEARER = "PLANTEDbearerTOKEN0123456789"
ENV_SECRET = "PLANTEDenvValue-9f8e7d6c"  # no known shape: only the environment says it is a secret
CANARY = "CANARYvisibleText"  # not a secret: must arrive, proving the fields were ingested


def plant(home: Path) -> Path:
    spec = FakeRun(
        "20261130-110000-secret-c001",
        seed=21,
        config={"teacher": {"api_key": KEY, "headers": {"Authorization": f"Bearer {BEARER}"}}},
    )
    files = fabricate(spec)
    run_id = spec.run_id
    files.events.insert(
        -1,
        {
            "ts": spec.started + 900,
            "type": "log",
            "run_id": run_id,
            "level": "warning",
            "message": f"{CANARY} retrying with Authorization: Bearer {BEARER} and key {KEY}, env {ENV_SECRET}",
        },
    )
    files.events.insert(
        -1,
        {
            "ts": spec.started + 901,
            "type": "teacher_call",
            "run_id": run_id,
            "sample_id": "s9999",
            "split": "train",
            "model": "openai/gpt-4o-mini",
            "cache_key": "abc",
            "cache_hit": False,
            "prompt_tokens": 1,
            "completion_tokens": 0,
            "cost_usd": 0.0,
            "latency_ms": 5.0,
            "error": f"401 Incorrect API key provided: {KEY}",
        },
    )
    files.events.insert(
        -1,
        {
            "ts": spec.started + 902,
            "type": "metric",
            "run_id": run_id,
            "key": f"train/{KEY}",
            "value": 1.0,
            "step": 1,
            "context": "train",
        },
    )
    files.samples[0]["teacher_output"] = f"{CANARY} my key is {KEY}"
    files.eval_outputs["student"][0]["output"] = f"Bearer {BEARER}"
    files.results["teacher"]["metrics"][0]["reason"] = f"called with {KEY}"
    run_dir = home / "runs" / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(files.config))
    append_jsonl(run_dir / "events.jsonl", files.events, fsync=False)
    write_outputs(run_dir, files)
    return run_dir


def folder_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def text_columns() -> list[tuple[str, str]]:
    return [
        (r.name, c.name) for r in catalog() if r.kind == "table" for c in r.columns if c.type in ("VARCHAR", "JSON")
    ]


def test_planted_secrets_never_reach_the_database(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", ENV_SECRET)
    run_dir = plant(home)
    before = folder_digest(run_dir)
    ingest_all(home)

    for name, column in text_columns():
        leaks = table(home, f"SELECT count(*) FROM {name} WHERE CAST({column} AS VARCHAR) SIMILAR TO '.*PLANTED.*'")
        assert leaks == [(0,)], f"{name}.{column} holds a planted secret"
    # the fields were ingested, with the secrets cut out
    assert table(home, "SELECT value FROM params WHERE key = 'teacher.api_key'") == [(REDACTED,)]
    assert table(home, "SELECT value FROM params WHERE key = 'teacher.headers.Authorization'") == [(REDACTED,)]
    message = table(home, "SELECT message FROM logs WHERE level = 'warning'")[0][0]
    assert message.startswith(CANARY) and message.count(REDACTED) == 3
    assert table(home, "SELECT count(*) FROM samples WHERE teacher_output LIKE ?", [f"{CANARY}%{REDACTED}"]) == [(1,)]
    assert table(home, "SELECT count(*) FROM metrics WHERE key = ?", [f"train/{REDACTED}"]) == [(1,)]

    # The database file itself (after DuckDB's checkpoint on close): the canary is there, no secret is.
    raw = db_path(home).read_bytes()
    assert CANARY.encode() in raw
    assert b"PLANTED" not in raw
    # Exports carry no secret either.
    from stillhouse.registry.export import export_registry

    for fmt in ("parquet", "csv"):
        out = tmp_path / f"export-{fmt}"
        export_registry(out, fmt, home)
        for path in out.iterdir():
            assert b"PLANTED" not in path.read_bytes(), path
    # The registry writes nothing into the run folder.
    assert folder_digest(run_dir) == before


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sk-abcdefghijklmnop1234", REDACTED),
        ("Authorization: Bearer abc.def-ghi_jkl", f"Authorization: {REDACTED}"),
        ("AKIAABCDEFGHIJKLMNOP", REDACTED),
        ("hf_" + "a" * 34, REDACTED),
        ("my-risk-assessment-model-v2-large", "my-risk-assessment-model-v2-large"),  # "sk-" inside a word
        ("20261130-101010-task-name-ab12", "20261130-101010-task-name-ab12"),
    ],
)
def test_secret_shaped_values(value: str, expected: str) -> None:
    assert Redactor(env=False).text(value) == expected


def test_secret_named_keys_but_not_lookalikes() -> None:
    config = {
        "teacher": {"api_key": "x" * 10, "api_key_env": "OPENAI_API_KEY", "max_tokens": 256, "cache_key": "k"},
        "hf_token": "abc",
        "password": 1234,
        "train": {"tokenizer": "t", "prompt_tokens": 3},
        "x-api-key": ["a", "b"],
        "Authorization": "Basic dXNlcjpwYXNzd29yZA==",
    }
    red = Redactor(env=False).value(config)
    assert red["teacher"] == {"api_key": REDACTED, "api_key_env": "OPENAI_API_KEY", "max_tokens": 256, "cache_key": "k"}
    assert red["hf_token"] == REDACTED and red["password"] == REDACTED
    assert red["train"] == {"tokenizer": "t", "prompt_tokens": 3}
    assert red["x-api-key"] == [REDACTED, REDACTED]
    assert red["Authorization"] == REDACTED
