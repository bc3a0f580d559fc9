"""A `still sweep` worker whose trials train nothing: ``python worker_driver.py HOME SWEEP_ID N``.

It runs the real worker loop (plugins.sweep.study.work) on the sweep's journal storage; each
trial sleeps a moment and scores a quadratic, so two of these processes contend for one study."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from stillhouse.plugins.sweep.study import SweepFolder, TrialOutcome, open_study, work


def objective(trial) -> TrialOutcome:  # type: ignore[no-untyped-def]
    x = trial.suggest_float("x", -1.0, 1.0)
    time.sleep(0.05)
    return TrialOutcome("complete", values=[x * x], run_id=f"fake-run-{trial.number}")


def main() -> None:
    home, sweep_id, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    folder = SweepFolder.open(sweep_id, home)
    study = open_study(folder, ["minimize"], sampler="random", seed=None)
    summary = work(study, objective, n_trials=n)
    print(" ".join(str(number) for number, _ in summary.trials))


if __name__ == "__main__":
    main()
