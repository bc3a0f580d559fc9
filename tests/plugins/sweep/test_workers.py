"""Several workers on one sweep's journal storage share the study: unique trial numbers, the
requested count reached; a worker killed mid-trial leaves a trial the next worker marks failed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from stillhouse.plugins.sweep.study import (
    SweepFolder,
    TrialOutcome,
    finished_count,
    import_optuna,
    load_study,
    open_study,
    work,
)

DRIVER = Path(__file__).with_name("worker_driver.py")


def test_two_processes_fill_one_study_without_duplicate_trial_numbers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    folder = SweepFolder.create("shared", tmp_path / "sweep.toml", "[sweep]\n", home)
    n = 12
    workers = [
        subprocess.Popen([sys.executable, str(DRIVER), str(home), folder.id, str(n)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers)
    ran = [[int(x) for x in out.split()] for out in outputs]
    assert all(ran), f"each worker ran trials: {ran}"  # both took part
    numbers = ran[0] + ran[1]
    assert len(numbers) == len(set(numbers))  # no trial number handed out twice
    study = load_study(folder)
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert sorted(numbers) == sorted(t.number for t in trials)
    done, running = finished_count(study)
    # each worker asks while fewer than n are finished or running: at most one in flight per worker beyond n
    assert running == 0 and n <= done <= n + 1
    assert {t.user_attrs["worker"]["pid"] for t in trials} == {w.pid for w in workers}


def test_a_trial_left_running_by_a_dead_worker_is_failed_and_not_counted(tmp_path: Path) -> None:
    optuna = import_optuna()
    home = tmp_path / "home"
    folder = SweepFolder.create("stale", tmp_path / "sweep.toml", "[sweep]\n", home)
    study = open_study(folder, ["minimize"], sampler="random", seed=1)
    dead = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    os.kill(dead.pid, signal.SIGKILL)
    dead.wait()
    orphan = study.ask()
    orphan.set_user_attr("worker", {"host": socket.gethostname(), "pid": dead.pid, "pid_start": time.time() - 5})

    def objective(trial) -> TrialOutcome:  # type: ignore[no-untyped-def]
        return TrialOutcome("complete", values=[trial.suggest_float("x", 0, 1)])

    summary = work(load_study(folder), objective, n_trials=3)
    assert summary.stale_failed == [orphan.number]
    states = {t.number: t.state for t in load_study(folder).get_trials()}
    assert states[orphan.number] == optuna.trial.TrialState.FAIL
    assert sum(s == optuna.trial.TrialState.COMPLETE for s in states.values()) == 3
