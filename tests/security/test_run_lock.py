"""One process per run folder (issue 19, "Medium: no lock on a run"), with real processes: a holder
of the run's lock, a second `still run --resume` refused at once naming the holder's pid, and a
lock left by a process killed with SIGKILL taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stillhouse.kernel.runs import LOCK_FILE, RunLock, RunLockedError, lock_holder
from tests.security.helpers import env_for, resumable_run, still_exe

HOLDER = textwrap.dedent(
    """
    import sys, time
    from stillhouse.kernel.runs import RunLock
    RunLock(sys.argv[1]).acquire()  # the same lock Pipeline.execute takes
    print("locked", flush=True)
    time.sleep(600)
    """
)


@pytest.fixture
def holder(stillhouse_home: Path):
    """A real process that holds a run's lock until killed."""
    run_dir = resumable_run(stillhouse_home)
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield run_dir, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_a_second_resume_is_refused_at_once_naming_the_holder(holder, stillhouse_home: Path) -> None:
    run_dir, proc = holder
    events_before = (run_dir / "events.jsonl").read_bytes()
    done = subprocess.run(
        [still_exe(), "run", "--resume", run_dir.name],
        env=env_for(stillhouse_home),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 2, done.stderr
    assert f"in use by process {proc.pid}" in done.stderr
    assert "Traceback" not in done.stderr
    # Refused before anything was written: no run_started, no interleaved events.
    assert (run_dir / "events.jsonl").read_bytes() == events_before
    assert lock_holder(run_dir) == proc.pid


def test_the_pipeline_takes_the_lock_in_execute(holder, stillhouse_home: Path) -> None:
    """In-process: Pipeline.execute refuses a run folder another process holds."""
    from stillhouse.kernel.config import validate_config
    from stillhouse.kernel.pipeline import Pipeline
    from stillhouse.kernel.plugins import get_host
    from stillhouse.kernel.runs import Run

    run_dir, proc = holder
    run = Run.open(run_dir.name)
    host = get_host()
    loaded = validate_config(dict(run.config), host, source=str(run.path("config.json")), base_dir=run.dir)
    with pytest.raises(RunLockedError) as info:
        Pipeline(loaded, host, run).execute(resume=True)
    assert info.value.exit_code == 2 and str(proc.pid) in info.value.what


def test_a_lock_of_a_killed_process_is_taken_over(holder) -> None:
    run_dir, proc = holder
    with pytest.raises(RunLockedError):
        RunLock(run_dir).acquire()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert (run_dir / LOCK_FILE).read_text().strip() == str(proc.pid)  # the dead pid is still written there
    assert lock_holder(run_dir) is None  # ...but the kernel dropped its flock
    with RunLock(run_dir):
        assert (run_dir / LOCK_FILE).read_text().strip() == str(os.getpid())
        assert lock_holder(run_dir) == os.getpid()
    assert lock_holder(run_dir) is None


@pytest.mark.slow
def test_real_still_run_holds_the_lock_refuses_a_second_and_dies_to_dead(tmp_path: Path) -> None:
    """The whole story with real `still run` processes and a real local OpenAI-compatible server:
    the first holds the lock, a second `--resume` is refused naming its pid and writes nothing,
    and after kill -9 the lock is free and the run is "dead" in `still runs list`."""
    import json
    import shutil
    import time

    from stillhouse.testing.fake_openai import FakeBehaviour, FakeOpenAIServer

    fixture = Path(__file__).parents[1] / "fixtures" / "data" / "nli.jsonl"
    home = tmp_path / "home"
    env = env_for(home, FAKE_TEACHER_KEY="test-key")
    server = FakeOpenAIServer(FakeBehaviour(latency_s=1.0)).start()  # 24 prompts, one at a time: ~24 s
    try:
        shutil.copy(fixture, tmp_path / "train.jsonl")
        config = tmp_path / "pipeline.toml"
        config.write_text(
            f'task = "nli"\n[data]\ntrain = "train.jsonl"\n[teacher]\nmodel = "openai/fake-teacher"\n'
            f'api_base = "{server.url}"\napi_key_env = "FAKE_TEACHER_KEY"\nconcurrency = 1\n'
            '[student]\nmodel = "unused-until-the-train-stage"\n'
        )
        first = subprocess.Popen([still_exe(), "run", str(config), "--stage", "generate"], env=env, stdout=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            run_dir = None
            while run_dir is None or lock_holder(run_dir) != first.pid:
                assert first.poll() is None and time.monotonic() < deadline, "the first run did not start"
                found = list((home / "runs").glob("*/events.jsonl"))
                run_dir = found[0].parent if found else None
                time.sleep(0.05)
            second = subprocess.run(
                [still_exe(), "run", "--resume", run_dir.name, "--stage", "generate"],
                env=env, capture_output=True, text=True, timeout=180,
            )  # fmt: skip
            assert second.returncode == 2, second.stderr
            assert f"in use by process {first.pid}" in second.stderr
            assert first.poll() is None, "the first run ended before the check: make the teacher slower"
            events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
            assert [e["pid"] for e in events if e["type"] == "run_started"] == [first.pid]
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(timeout=30)
        assert lock_holder(run_dir) is None
        listed = subprocess.run(
            [still_exe(), "runs", "list", "--format", "json"], env=env, capture_output=True, text=True, timeout=180
        )
        assert [r["status"] for r in json.loads(listed.stdout)] == ["dead"]
    finally:
        server.stop()
