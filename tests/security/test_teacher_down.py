"""A failure never reports success: a teacher server that dies mid-run trips the circuit breaker
(the run stops at once with "teacher unreachable at <api_base>", resumable), and a generate stage
that ends with failed calls ends the run "incomplete" with exit code 3 and the --resume hint."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from stillhouse.kernel.runs import read_jsonl
from stillhouse.testing.fake_openai import FakeBehaviour, FakeOpenAIServer
from tests.security.helpers import nli_rows, only_run, still, write_config


def finished_event(run_dir: Path) -> dict:
    return [e for e in read_jsonl(run_dir / "events.jsonl") if e["type"] == "run_finished"][-1]


@pytest.mark.slow
def test_server_dies_mid_run_then_resume_answers_each_prompt_once(tmp_path: Path) -> None:
    import os

    home = tmp_path / "home"
    env = {**os.environ, "SEC_TEACHER_CRED": "test-key-123456", "STILLHOUSE_HOME": str(home)}
    first_server = FakeOpenAIServer(FakeBehaviour(latency_s=0.2)).start()
    port = first_server.port
    config = write_config(tmp_path / "cfg", first_server.url, nli_rows())
    process = subprocess.Popen(still("run", str(config), "--stage", "generate"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no teacher outputs appeared"
            outputs = list((home / "runs").glob("*/teacher/outputs.jsonl")) if (home / "runs").exists() else []
            if outputs and len(list(read_jsonl(outputs[0]))) >= 6:
                break
            time.sleep(0.02)
        first_server.stop()  # the teacher dies: connections are refused from now on
        died = time.monotonic()
        stdout, stderr = process.communicate(timeout=120)
        print(f"the run stopped {time.monotonic() - died:.1f} s after the server died (exit {process.returncode})")
    finally:
        if process.poll() is None:
            process.kill()
        first_server.stop()
    run_dir = only_run(home)
    assert process.returncode != 0, stdout + stderr
    assert f"teacher unreachable at http://127.0.0.1:{port}/v1" in stderr
    assert "still run --resume" in stderr
    assert finished_event(run_dir)["status"] == "failed"
    answered_before = sum(first_server.stats.answered.values())
    assert 6 <= answered_before < 24

    second_server = FakeOpenAIServer(FakeBehaviour(), port=port).start()  # the teacher is back
    try:
        resumed = subprocess.run(still("run", "--resume", run_dir.name, "--stage", "generate"), env=env, capture_output=True, text=True, timeout=240)
    finally:
        second_server.stop()
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert finished_event(run_dir)["status"] == "completed"
    summary = [e for e in read_jsonl(run_dir / "events.jsonl") if e["type"] == "stage_finished"][-1]["summary"]
    assert summary["answered"] == 24 and summary["failed"] == 0
    # Counted at the servers: every prompt answered, none twice.
    answered = first_server.stats.answered + second_server.stats.answered
    assert len(answered) == 24
    assert [p for p, n in answered.items() if n > 1] == []
    print(f"faults injected: 1 server death; prompts answered before/after: {answered_before}/{sum(second_server.stats.answered.values())}")


def test_failed_teacher_calls_end_the_run_incomplete(tmp_path: Path, run_still, stillhouse_home: Path, fake_server) -> None:
    server = fake_server()
    rows = nli_rows(4, mark={2: "[[fail:400]]"})
    config = write_config(tmp_path, server.url, rows)
    result = run_still("run", str(config), "--stage", "generate", env={"SEC_TEACHER_CRED": "test-key-123456"})
    run_dir = only_run(stillhouse_home)
    assert result.exit_code == 3, result.output
    assert "incomplete" in result.output and f"still run --resume {run_dir.name}" in result.output
    event = finished_event(run_dir)
    assert event["status"] == "incomplete" and "1 teacher call(s) failed" in event["error"]
    listed = run_still("runs", "list", env={"COLUMNS": "400"})
    assert listed.exit_code == 0 and "incomplete" in listed.output
    status = run_still("sql", f"select status from runs where run_id = '{run_dir.name}'", "--format", "json")
    assert json.loads(status.output)[0]["status"] == "incomplete"


@pytest.mark.slow  # ~13 s here, most of it litellm's first call
def test_nothing_listening_trips_the_breaker_after_n_connection_failures(tmp_path: Path) -> None:
    import socket

    from stillhouse.kernel.errors import TeacherError
    from stillhouse.plugins.teachers.litellm_teacher import LiteLLMTeacher
    from tests.plugins.teachers.helpers import prompts

    with socket.socket() as sock:  # a port that was free a moment ago: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api_base = f"http://127.0.0.1:{port}/v1"
    teacher = LiteLLMTeacher(
        LiteLLMTeacher.Config(model="openai/fake-teacher", api_base=api_base, concurrency=2, max_retries=5,
                              retry_base_delay=0.01, retry_max_delay=0.02, unreachable_after=4)
    )
    results = []
    started = time.perf_counter()
    try:
        with pytest.raises(TeacherError, match=f"teacher unreachable at {api_base}") as raised:
            teacher.generate(prompts(40), results.append, cache_dir=tmp_path)
    finally:
        teacher.close()
    print(f"breaker tripped after {time.perf_counter() - started:.2f} s and {len(results)} recorded failure(s)")
    assert "4 connection failures in a row" in raised.value.what and "--resume" in (raised.value.hint or "")
    # Stopped early: not 40 prompts x 6 attempts; the prompts never sent stay unanswered for resume.
    assert len(results) <= 2 and all(r.error for r in results)
