"""kill -9 in the middle of a generation, then a rerun: nothing lost, nothing paid for twice.

The generation runs in a separate process (``gen_driver.py``) against a server in this process,
so the server's counters see both runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .gen_driver import latest, requests_for
from .helpers import by_id, collect

DRIVER = Path(__file__).with_name("gen_driver.py")
N, CONCURRENCY = 120, 4


def _driver(server_url: str, tmp_path: Path) -> list[str]:
    return [
        sys.executable,
        str(DRIVER),
        server_url,
        str(tmp_path / "cache"),
        str(tmp_path / "outputs.jsonl"),
        str(N),
        str(CONCURRENCY),
    ]


@pytest.mark.slow  # three processes import litellm
def test_kill_9_then_rerun_equals_a_clean_run(fake_server, make_teacher, tmp_path):
    # 120 calls, 4 at a time, 0.1 s each: ~3 s of work, so the kill lands mid-run even on a busy machine.
    server = fake_server(latency_s=0.1)
    out = tmp_path / "outputs.jsonl"

    process = subprocess.Popen(_driver(server.url, tmp_path))
    deadline = time.monotonic() + 180
    while len(latest(out)) < N // 4:
        assert process.poll() is None, "the driver finished or died before it could be killed"
        assert time.monotonic() < deadline, "the driver produced no results"
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    before = latest(out)
    assert N // 4 <= len(before) < N, "killed halfway"
    subprocess.run(_driver(server.url, tmp_path), check=True, timeout=180)
    final = latest(out)

    clean_server = fake_server(latency_s=0.0)
    clean = by_id(collect(make_teacher(api_base=clean_server.url), requests_for(N), tmp_path / "clean-cache"))
    assert {sid: r["completions"][0]["text"] for sid, r in final.items() if r["error"] is None} == {
        sid: r.completions[0].text for sid, r in clean.items()
    }
    # Counted at the server: what was answered before the kill was never paid for again, and only
    # the calls in flight at the kill (at most `concurrency`) could have been answered twice.
    for sample_id in before:
        assert server.stats.answered[f"question {sample_id[1:]}"] == 1
    assert set(server.stats.answered) == {f"question {i}" for i in range(N)}
    assert server.stats.answered_total <= N + CONCURRENCY
