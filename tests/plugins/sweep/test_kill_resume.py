"""kill -9 in the middle of a sweep's second trial, then `still sweep --resume`: the sweep ends
with the requested number of complete trials, the finished trial is not run again, and the killed
trial is recorded FAIL (its run folder stays, its run marked dead by the registry as usual)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stillhouse.kernel.run_folder import RunFolder
from stillhouse.plugins.sweep.study import SweepFolder, import_optuna, load_study
from stillhouse.testing.oracle import Oracle

from .helpers import FIXTURE, KEY_ENV, write_pipeline, write_sweep

STILL = [sys.executable, "-c", "from stillhouse.kernel.cli import main; main()"]


def _trial_runs(home: Path) -> dict[str, int]:
    runs = home / "runs"
    if not runs.is_dir():
        return {}
    out = {}
    for run_dir in runs.iterdir():
        config = RunFolder(run_dir).read_config() if (run_dir / "config.json").exists() else {}
        if "tags" in config:
            out[run_dir.name] = int(config["tags"]["trial"])
    return out


def _training(home: Path, trial: int) -> bool:
    for run_dir, number in _trial_runs(home).items():
        if number == trial:
            events = list(RunFolder(home / "runs" / run_dir).events())
            return any(e["type"] == "stage_started" and e["stage"] == "train" for e in events)
    return False


@pytest.mark.slow  # two `still` processes (torch imports) and four tiny trainings
def test_kill_9_mid_trial_then_resume_finishes_without_repeating(tmp_path: Path, fake_server, tiny_model_dir: Path) -> None:
    optuna = import_optuna()
    server = fake_server(oracle=Oracle(FIXTURE, "nli", p=1.0))
    write_pipeline(tmp_path, server.url, tiny_model_dir)
    sweep = write_sweep(tmp_path, body='n_trials = 3\npruner = "none"\nsampler = "random"\n')
    home = tmp_path / "home"
    env = {**os.environ, **KEY_ENV, "STILLHOUSE_HOME": str(home)}

    process = subprocess.Popen([*STILL, "sweep", str(sweep), "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not _training(home, 1):
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        assert time.monotonic() < deadline, "trial 1 never started training"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    (sweep_dir,) = (home / "sweeps").iterdir()
    before = {t.number: (t.state, t.user_attrs.get("run_id")) for t in load_study(SweepFolder(sweep_dir.name, sweep_dir)).get_trials()}
    assert before[0][0] == optuna.trial.TrialState.COMPLETE and before[1][0] == optuna.trial.TrialState.RUNNING

    resumed = subprocess.run([*STILL, "sweep", "--resume", sweep_dir.name, "--quiet"], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "marked failed (their process died): trials 1" in resumed.stdout

    trials = load_study(SweepFolder(sweep_dir.name, sweep_dir)).get_trials()
    states = [t.state for t in trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 3
    assert trials[1].state == optuna.trial.TrialState.FAIL
    assert trials[0].user_attrs["run_id"] == before[0][1]  # the finished trial was kept, not run again
    complete_runs = [t.user_attrs["run_id"] for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(set(complete_runs)) == 3
    assert sorted(_trial_runs(home).values()) == [0, 1, 2, 3]  # one run per trial, none repeated
    assert server.stats.answered_total == 12  # one generation for the whole sweep, the resume included
