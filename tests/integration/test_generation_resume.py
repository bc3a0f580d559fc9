"""`still run --stage generate` killed with SIGKILL halfway, then `still run --resume`: the final
teacher outputs equal a clean run's, and no answered prompt was paid for again (counted at a real
local OpenAI-compatible server)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stillhouse.kernel.runs import read_jsonl
from stillhouse.testing.fake_openai import FakeBehaviour, FakeOpenAIServer

FIXTURE = Path(__file__).parents[1] / "fixtures" / "data" / "nli.jsonl"
CONCURRENCY = 2


def write_config(folder: Path, api_base: str) -> Path:
    shutil.copy(FIXTURE, folder / "train.jsonl")
    path = folder / "pipeline.toml"
    path.write_text(
        f'''task = "nli"
[data]
train = "train.jsonl"
[teacher]
model = "openai/fake-teacher"
api_base = "{api_base}"
api_key_env = "FAKE_TEACHER_KEY"
concurrency = {CONCURRENCY}
max_retries = 2
[student]
model = "unused-until-the-train-stage"
'''
    )
    return path


def still(*args: str) -> list[str]:
    return [sys.executable, "-c", "from stillhouse.kernel.cli import main; main()", *args]


def outputs(run_dir: Path) -> dict[str, str]:
    latest = {r["sample_id"]: r for r in read_jsonl(run_dir / "teacher" / "outputs.jsonl")}
    return {sid: r["completions"][0]["text"] for sid, r in latest.items() if not r["error"]}


@pytest.mark.slow
def test_kill_9_during_generation_then_resume(tmp_path: Path) -> None:
    env = {**os.environ, "FAKE_TEACHER_KEY": "test-key", "STILLHOUSE_HOME": str(tmp_path / "home")}
    server = FakeOpenAIServer(FakeBehaviour(latency_s=0.15)).start()
    try:
        config = write_config(tmp_path, server.url)
        process = subprocess.Popen(still("run", str(config), "--stage", "generate"), env=env, stdout=subprocess.PIPE, text=True)
        runs = tmp_path / "home" / "runs"
        deadline = time.monotonic() + 240
        while True:
            assert process.poll() is None, "generation ended before it could be killed"
            assert time.monotonic() < deadline, "no teacher outputs appeared"
            done = list(runs.glob("*/teacher/outputs.jsonl"))
            if done and len(list(read_jsonl(done[0]))) >= 6:
                break
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        run_dir = done[0].parents[1]
        before = outputs(run_dir)
        assert 6 <= len(before) < 24

        resumed = subprocess.run(still("run", "--resume", run_dir.name, "--stage", "generate"), env=env, capture_output=True, text=True, timeout=240)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        final = outputs(run_dir)
        summary = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if '"stage_finished"' in line][-1]["summary"]
        assert summary["answered"] == 24 and summary["failed"] == 0
        assert summary["reused_from_earlier_attempts"] >= len(before)
    finally:
        server.stop()

    clean_server = FakeOpenAIServer(FakeBehaviour()).start()
    try:
        (tmp_path / "clean").mkdir()
        clean_config = write_config(tmp_path / "clean", clean_server.url)
        clean_env = {**env, "STILLHOUSE_HOME": str(tmp_path / "clean-home")}
        subprocess.run(still("run", str(clean_config), "--stage", "generate"), env=clean_env, check=True, capture_output=True, timeout=240)
        clean_dir = next((tmp_path / "clean-home" / "runs").iterdir())
        assert final == outputs(clean_dir)
    finally:
        clean_server.stop()

    # At the server: every prompt answered; only calls in flight at the kill could be answered twice.
    assert len(server.stats.answered) == 24
    assert sum(server.stats.answered.values()) <= 24 + CONCURRENCY
    twice = [p for p, n in server.stats.answered.items() if n > 1]
    assert len(twice) <= CONCURRENCY
