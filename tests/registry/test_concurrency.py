"""A running pipeline (writer), a TUI-like poller and `still sql`, as three real processes at once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.registry.conftest import table

PIPELINE = textwrap.dedent(
    """
    # A pipeline's writes and hooks, without the models: events appended as a run would, and the
    # registry plugin's lifecycle hooks called through the real plugin host after each stage.
    import sys, time
    from pathlib import Path
    from stillhouse.kernel.plugins import PluginHost
    from stillhouse.kernel.runs import STAGES, Run
    home, steps = Path(sys.argv[1]), int(sys.argv[2])
    host = PluginHost()
    run = Run.create("concurrent", {"task": "nli"}, home)
    print(run.id, flush=True)
    run.emit("run_started", task="nli", config={"task": "nli"}, primary_metric="accuracy", pid=0)
    host.hook.run_started(run=run)
    for stage in STAGES:
        run.emit("stage_started", stage=stage)
        for step in range(1, steps + 1):
            run.emit_many([
                {"type": "metric", "key": f"{stage}/loss", "value": 1.0 / step, "step": step, "context": "train"},
                {"type": "progress", "stage": stage, "done": step, "total": steps},
            ])
            time.sleep(0.01)
        run.emit("stage_finished", stage=stage, summary={"steps": steps}, seconds=0.1)
        host.hook.stage_finished(run=run, stage=stage, summary={"steps": steps})
    run.emit("run_finished", status="completed", error=None)
    host.hook.run_finished(run=run, status="completed")
    """
)

POLLER = textwrap.dedent(
    """
    # What the TUI does: poll the registry (ingesting first) until the run has finished.
    import sys, time
    from pathlib import Path
    from stillhouse.registry.db import read_query
    home = Path(sys.argv[1])
    counts, deadline = [], time.monotonic() + 240
    while time.monotonic() < deadline:
        read_query("select * from run_summary", home=home)
        n, done = read_query(
            "select (select count(*) from metrics), count(*) filter (where status = 'completed') from runs", home=home
        ).rows[0]
        counts.append(n)
        if done:
            break
        time.sleep(0.05)
    assert counts == sorted(counts), counts
    print(len(counts), counts[-1], flush=True)
    """
)


@pytest.mark.slow
def test_pipeline_tui_and_sql_at_once(home: Path) -> None:
    env = {**os.environ, "STILLHOUSE_HOME": str(home), "STILLHOUSE_REGISTRY_LOCK_TIMEOUT": "60"}
    steps = 60
    pipeline = subprocess.Popen(
        [sys.executable, "-c", PIPELINE, str(home), str(steps)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    poller = subprocess.Popen(
        [sys.executable, "-c", POLLER, str(home)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    still = Path(sys.executable).with_name("still")
    sql_runs = []
    try:
        while pipeline.poll() is None or not sql_runs:
            sql_runs.append(
                subprocess.run(
                    [str(still), "sql", "select count(*) as n from metrics", "--format", "csv"],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
            )
            time.sleep(0.1)
        out, err = pipeline.communicate(timeout=240)
        poll_out, poll_err = poller.communicate(timeout=240)
    finally:
        for proc in (pipeline, poller):
            if proc.poll() is None:
                proc.kill()
    assert pipeline.returncode == 0, err
    assert poller.returncode == 0, poll_err
    for result in sql_runs:
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("n\n")
    run_id = out.split()[0]
    expected = 5 * steps * 2  # a metric and a progress row per step per stage
    polls, last_seen = map(int, poll_out.split())
    assert polls >= 2 and last_seen == expected
    seen_by_sql = [int(r.stdout.split()[1]) for r in sql_runs]
    assert len(sql_runs) >= 2  # `still sql` ran more than once while the pipeline wrote
    assert seen_by_sql == sorted(seen_by_sql)
    # everything arrived exactly once, and no hook ever reported a registry failure
    assert table(home, "SELECT run_id, status FROM runs") == [(run_id, "completed")]
    assert table(home, "SELECT count(*), count(DISTINCT (key, step)) FROM metrics") == [(expected, expected)]
    events = (home / "runs" / run_id / "events.jsonl").read_text()
    assert "registry ingest" not in events
