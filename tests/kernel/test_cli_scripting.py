"""`still run --json` for scripts and CI, the exit-code contract and shell completion."""

from __future__ import annotations

import json

from click.testing import CliRunner

from stillhouse.kernel.cli import build_cli


def run_cli(host, *args):
    return CliRunner().invoke(build_cli(host), list(args), catch_exceptions=False)


def json_lines(stdout: str) -> tuple[list[dict], dict]:
    """Every stdout line is one JSON object: the run's events, then the result line."""
    records = [json.loads(line) for line in stdout.splitlines()]
    assert records and records[-1]["type"] == "result" and all(r["type"] != "result" for r in records[:-1])
    return records[:-1], records[-1]


def test_run_json_prints_events_then_the_result_on_stdout_and_progress_on_stderr(fake_host, pipeline_config):
    result = run_cli(fake_host, "run", str(pipeline_config()), "--json")
    assert result.exit_code == 0, result.output
    events, out = json_lines(result.stdout)
    started = [e["stage"] for e in events if e["type"] == "stage_started"]
    assert started == ["generate", "filter", "train", "evaluate", "report"]
    assert any(e["type"] == "eval" for e in events) and events[-1]["type"] == "run_finished"
    assert out["status"] == "completed" and out["exit_code"] == 0 and out["error"] is None
    assert out["run_id"] in result.stderr and "done" in result.stderr  # human progress on stderr
    assert out["stages"] == {s: "finished" for s in ("generate", "filter", "train", "evaluate", "report")}
    assert set(out["metrics"]) >= {"teacher", "student"} and out["primary_metric"] in out["metrics"]["student"]
    student, teacher = out["metrics"]["student"][out["primary_metric"]], out["metrics"]["teacher"][out["primary_metric"]]
    assert out["retention_pct"] == round(100 * student / teacher, 2)
    assert out["artifacts"] and all(a["path"] for a in out["artifacts"].values())


def test_run_json_keeps_what_reporters_print_off_stdout(make_host, pipeline_config):
    import stillhouse.plugins.reports as reports
    from tests.kernel import fakes

    fakes.reset()
    host = make_host(fakes, reports, entry_points=False)
    config = pipeline_config()
    config.write_text(config.read_text().replace('reporters = ["text"]', 'reporters = ["text", "terminal"]'))
    result = run_cli(host, "run", str(config), "--json")
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout)[1]["status"] == "completed"
    assert "Teacher vs" in result.stderr  # the terminal reporter's comparison table


def test_run_json_reports_a_failed_run_with_its_exit_code(fake_host, pipeline_config):
    result = run_cli(fake_host, "run", str(pipeline_config()), "--stage", "train", "--json")
    assert result.exit_code == 1
    events, out = json_lines(result.stdout)
    assert any(e["type"] == "stage_failed" and e["stage"] == "train" for e in events)
    assert out["status"] == "failed" and out["exit_code"] == 1 and "no filtered samples" in out["error"]
    assert out["stages"]["train"] == "failed"


def test_completion_script_and_the_env_var_protocol(tmp_path):
    import os
    import subprocess
    import sys

    script = run_cli(None, "completion", "bash")
    assert script.exit_code == 0 and "_STILL_COMPLETE=bash_complete" in script.output and "complete -o nosort -F" in script.output
    assert "compdef" in run_cli(None, "completion", "zsh").output and "complete --no-files --command still" in run_cli(None, "completion", "fish").output
    # What the bash script does on <TAB>: call `still` with the protocol's variables set.
    env = {**os.environ, "STILLHOUSE_HOME": str(tmp_path), "_STILL_COMPLETE": "bash_complete", "COMP_WORDS": "still ru", "COMP_CWORD": "1"}
    argv = [sys.executable, "-c", "from stillhouse.kernel.cli import main; main()"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "plain,run" in done.stdout.splitlines() and "plain,runs" in done.stdout.splitlines()  # `runs` comes from the registry plugin
    env.update(COMP_WORDS="still run x --stage ev", COMP_CWORD="4")
    assert subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120).stdout.splitlines() == ["plain,evaluate"]


def test_dry_run_json_prints_the_estimate(fake_host, pipeline_config, stillhouse_home):
    result = run_cli(fake_host, "run", str(pipeline_config(teacher_extra="price_per_call = 0.5")), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    estimate = json.loads(result.stdout)
    assert estimate["requests"] == 7 and estimate["cost_usd"] == 3.5 and "dry run" in result.stderr
    assert not (stillhouse_home / "runs").exists()
