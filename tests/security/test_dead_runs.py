"""A run whose process was killed (SIGKILL: nothing recorded) is "dead", not "running" forever, in
`still runs list` and in SQL (issue 19, "Medium: killed runs stay running"). The registry judges by
kernel/runs.py's ``run_process_alive``, the rule the TUI uses too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stillhouse.kernel.runs import LOCK_FILE, Run, run_process_alive

# What Pipeline.execute does first, in a real process: take the run's lock, record run_started
# with its pid and the process's start time, then work (here: sleep) until killed.
WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from stillhouse.kernel.runs import Run, RunLock, process_start_time
    run = Run(sys.argv[1], Path(sys.argv[2]))
    if sys.argv[3] == "lock":
        RunLock(run.dir).acquire()
    run.emit("run_started", name="victim", task="qa", config={}, pid=os.getpid(),
             pid_start=process_start_time(os.getpid()))
    run.emit("stage_started", stage="generate")
    print("working", flush=True)
    time.sleep(600)
    """
)


def start_worker(home: Path, run_id: str, *, lock: bool) -> subprocess.Popen[str]:
    run_dir = home / "runs" / run_id
    run_dir.mkdir(parents=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, run_id, str(run_dir), "lock" if lock else "nolock"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "working"
    return proc


def statuses(run_still) -> dict[str, str]:
    result = run_still("runs", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    return {row["run_id"]: row["status"] for row in json.loads(result.stdout)}


@pytest.mark.parametrize("lock", [True, False], ids=["locked-run", "run-from-before-locks"])
def test_a_killed_run_is_dead_in_runs_list_and_sql(stillhouse_home: Path, run_still, lock: bool) -> None:
    run_id = "20261201-000000-killed-a001"
    proc = start_worker(stillhouse_home, run_id, lock=lock)
    try:
        assert statuses(run_still)[run_id] == "running"
        assert (stillhouse_home / "runs" / run_id / LOCK_FILE).exists() == lock
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert statuses(run_still)[run_id] == "dead"
        sql = run_still("sql", "select s.status, r.error from run_summary s join runs r using (run_id)", "--format", "json")
        [row] = json.loads(sql.stdout)
        assert row["status"] == "dead" and "without recording a finish" in row["error"]
        assert statuses(run_still)[run_id] == "dead"  # stays so, and `--status dead` finds it
        dead_only = run_still("runs", "list", "--status", "dead", "--format", "json")
        assert [r["run_id"] for r in json.loads(dead_only.stdout)] == [run_id]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_a_resume_after_death_is_running_again(stillhouse_home: Path, run_still) -> None:
    run_id = "20261201-000000-again-a002"
    proc = start_worker(stillhouse_home, run_id, lock=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert statuses(run_still)[run_id] == "dead"
    run = Run(run_id, stillhouse_home / "runs" / run_id)
    run.emit("run_started", name="victim", task="qa", config={}, pid=os.getpid())  # resumed here
    from stillhouse.kernel.runs import RunLock

    with RunLock(run.dir):
        assert statuses(run_still)[run_id] == "running"


def test_a_reused_pid_is_not_taken_for_the_run(stillhouse_home: Path) -> None:
    """No lock file, the recorded pid alive (this test process), but that process started at
    another time than the one recorded: another program got the pid after the run died."""
    run = Run("20261201-000000-reused-a003", stillhouse_home / "runs" / "20261201-000000-reused-a003")
    run.dir.mkdir(parents=True)
    run.emit("run_started")
    assert run_process_alive(run.dir)  # no pid recorded: no evidence, so never called dead
    run.emit("run_started", pid=os.getpid(), pid_start=time.time() - 86400 * 30)
    assert not run_process_alive(run.dir)
    # Without pid_start (older runs), the event's own time decides: this process began before it.
    run.emit("run_started", pid=os.getpid())
    assert run_process_alive(run.dir)
    run.emit("run_started", pid=os.getpid(), ts_note="ts forced below")
    events = (run.dir / "events.jsonl").read_text().splitlines()
    last = json.loads(events[-1]) | {"ts": 1_000_000.0}  # written in 1970: before this process began
    (run.dir / "events.jsonl").write_text("\n".join([*events[:-1], json.dumps(last)]) + "\n")
    assert not run_process_alive(run.dir)
