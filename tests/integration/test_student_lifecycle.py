"""The README's "serving and evaluating a distilled student" flow, as a user types it: export a
run's student, serve it over HTTP, and evaluate it both in process and through the server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.plugins.reports.conftest import CONFIG, write_run

ROOT = Path(__file__).resolve().parents[2]
STILL = [sys.executable, "-c", "from stillhouse.kernel.cli import main; main()"]


def still(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([*STILL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_export_serve_and_eval_a_student(tmp_path: Path, tiny_model_dir: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "STILLHOUSE_HOME": str(home), "OPENAI_API_KEY": "unused-by-a-local-server"}
    run = write_run(home / "runs" / "20261130-000000-readme-0001", tiny_model_dir, CONFIG)
    data = ROOT / "examples" / "data" / "dialogsum_test.jsonl"

    exported = still("export", run.name, "./my-student", cwd=tmp_path, env=env)
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "my-student" / "README.md").exists() and (tmp_path / "my-student" / "config.json").exists()

    local = still("eval", "--model", "hf/./my-student", "--task", "summarization", "--data", str(data), "--limit", "10", cwd=tmp_path, env=env)
    assert local.returncode == 0, local.stderr
    assert "rouge_l" in local.stdout

    server = subprocess.Popen([*STILL, "serve", "./my-student", "--port", "0"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
        deadline = time.monotonic() + 120
        while httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        remote = still(
            "eval", "--model", "openai/my-student", "--api-base", f"http://127.0.0.1:{port}/v1", "--api-key-env", "OPENAI_API_KEY",
            "--task", "summarization", "--data", str(data), "--limit", "10", cwd=tmp_path, env=env,
        )
        assert remote.returncode == 0, remote.stderr
        assert "rouge_l" in remote.stdout
    finally:
        server.terminate()
        server.wait(timeout=30)

    runs = still("sql", "select kind, count(*) as n from runs group by kind order by kind", "--format", "csv", cwd=tmp_path, env=env)
    assert "eval,2" in runs.stdout.replace(" ", "")
