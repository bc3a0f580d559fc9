"""Launching, finding, cancelling and resuming runs as real processes (no UI)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from stillhouse.kernel.errors import UserError
from stillhouse.kernel.runs import append_jsonl
from stillhouse.testing.sample_runs import FakeRun, write_run
from stillhouse.tui.launch import cancel_run, find_run_by_pid, launch_run, resume_run, same_process


def wait_exit(launched, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while (code := launched.exit_code()) is None:
        assert time.monotonic() < deadline, "process did not end"
        time.sleep(0.1)
    return code


def test_launch_runs_still_detached_and_finds_the_run_by_pid(tmp_path: Path, stillhouse_home: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text('task = "nli"\n[data]\ntrain = "train.jsonl"\n[teacher]\nmodel = "hf//no/such/folder"\n[student]\nmodel = "x"\n')
    (tmp_path / "train.jsonl").write_text('{"premise": "a", "hypothesis": "b", "label": "neutral"}\n')
    launched = launch_run(config, stillhouse_home)
    assert os.getsid(launched.pid) == launched.pid  # its own session: the TUI's terminal cannot stop it
    assert wait_exit(launched) != 0
    run_id = find_run_by_pid(launched.pid, stillhouse_home)
    assert run_id is not None and (stillhouse_home / "runs" / run_id / "events.jsonl").exists()
    assert "local teacher model not found" in launched.log_path.read_text()
    assert find_run_by_pid(launched.pid + 100_000, stillhouse_home) is None


def test_launch_refuses_a_missing_config(stillhouse_home: Path) -> None:
    with pytest.raises(UserError, match="config file not found"):
        launch_run(stillhouse_home / "nope.toml", stillhouse_home)


def test_cancel_refuses_finished_runs_and_gone_processes(stillhouse_home: Path) -> None:
    done = write_run(stillhouse_home, FakeRun("20261120-000000-done-a001"))
    with pytest.raises(UserError, match="not running"):
        cancel_run(done)
    # "running", but its pid (4242 in the fabricated events, long before now) is not that process.
    live = write_run(stillhouse_home, FakeRun("20261120-000000-live-a002", status="running"))
    with pytest.raises(UserError, match="is gone"):
        cancel_run(live)


def test_same_process_rejects_a_reused_pid() -> None:
    now = time.time()
    assert same_process(os.getpid(), now)  # started before now
    assert not same_process(os.getpid(), now - 10 * 365 * 86400)  # the run started years before this process


def test_resume_checks_the_folder_not_a_stale_listing(stillhouse_home: Path) -> None:
    with pytest.raises(UserError, match="already completed"):
        resume_run(write_run(stillhouse_home, FakeRun("20261120-000000-done-a001")).name, stillhouse_home)
    # A run whose process is this very test process: still running, so not resumed.
    live = write_run(stillhouse_home, FakeRun("20261120-000000-live-a002", status="running"))
    append_jsonl(live / "events.jsonl", [{"ts": time.time(), "type": "run_started", "run_id": live.name, "pid": os.getpid(), "resumed": True}])
    with pytest.raises(UserError, match="still running"):
        resume_run(live.name, stillhouse_home)
    # Killed without a trace (pid gone): resumable, and `still run --resume` is started.
    killed = write_run(stillhouse_home, FakeRun("20261120-000000-killed-a003", status="running"))
    launched = resume_run(killed.name, stillhouse_home)
    assert launched.command[-3:] == ["run", "--resume", killed.name]
    wait_exit(launched)
    assert launched.log_path.exists()
