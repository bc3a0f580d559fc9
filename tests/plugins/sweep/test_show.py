"""`still sweep show` on a study whose trials were told by hand (no training): the Pareto front of a
two-objective sweep, the best trial's config as a valid best.toml (a list choice decoded back to a
list), and parameter importances once two trials are complete."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from stillhouse.kernel.plugins import get_host
from stillhouse.plugins.sweep.spec import load_sweep
from stillhouse.plugins.sweep.study import SweepFolder, open_study
from stillhouse.plugins.sweep.trial import suggest

from .helpers import write_pipeline, write_sweep

SPACE = """
[sweep.space]
"train.learning_rate" = { type = "float", low = 1e-4, high = 1e-2, log = true }
"student.layers" = { type = "categorical", choices = [[0, 1], [0, 2, 3]] }
"""


def test_show_gives_the_pareto_front_and_a_runnable_best_toml(tmp_path: Path, run_still, stillhouse_home: Path) -> None:
    write_pipeline(tmp_path, "http://127.0.0.1:9/v1", Path("unused-student"))
    path = write_sweep(tmp_path, body='pruner = "none"\n[sweep.objective]\nsecond = "latency"\n', space=SPACE)
    sweep = load_sweep(path, get_host())
    folder = SweepFolder.create("pareto", path, sweep.text, stillhouse_home)
    study = open_study(folder, sweep.directions, sampler="random", seed=3)
    told = {}
    for values in ([0.8, 30.0], [0.6, 10.0], [0.5, 40.0]):  # trial 2 is dominated by both others
        trial = study.ask()
        told[trial.number] = suggest(trial, sweep)
        trial.set_user_attr("run_id", f"run-{trial.number}")
        study.tell(trial, values)

    result = run_still("sweep", "show", folder.id, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["objectives"] == ["accuracy", "latency"] and summary["directions"] == ["maximize", "minimize"]
    assert [row["number"] for row in summary["pareto_front"]] == [0, 1]
    assert summary["best"]["number"] == 0 and summary["best"]["run_id"] == "run-0"
    assert summary["importances"] is not None and set(summary["importances"]) == {"train.learning_rate", "student.layers"}
    assert summary["importances_note"].startswith("weak:") and "3 complete trials" in summary["importances_note"]  # 3 trials rank nothing
    assert isinstance(summary["best"]["params"]["student.layers"], list)

    best = tomllib.loads(Path(summary["best_toml"]).read_text())
    assert best["train"]["learning_rate"] == told[0]["train.learning_rate"]
    assert best["student"]["layers"] == told[0]["student.layers"]
    assert Path(best["data"]["train"]).is_absolute() and "tags" not in best

    text = run_still("sweep", "show", folder.id)
    assert text.exit_code == 0 and "Pareto front (accuracy vs latency)" in text.output, text.output
    listed = run_still("sweep", "list")
    assert f"{folder.id}  3 finished, 0 running, 3 trials" in listed.output
