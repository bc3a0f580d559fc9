"""A real sweep: tiny student, the fake OpenAI server as teacher. Every trial is an ordinary run
tagged with the sweep; the teacher is asked once per prompt for the whole sweep (later trials read
the content-addressed cache); a trial worse than the median at its first validation is pruned
early; `still sweep show` writes a best.toml that `still config check` accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stillhouse.kernel.run_folder import RunFolder
from stillhouse.testing.oracle import Oracle

from .helpers import FIXTURE, KEY_ENV, write_pipeline, write_sweep


def _runs(home: Path) -> dict[int, Path]:
    """trial number -> run folder, from each run's config tags."""
    found = {}
    for run_dir in sorted((home / "runs").iterdir()):
        tags = RunFolder(run_dir).read_config().get("tags", {})
        found[int(tags["trial"])] = run_dir
    return found


def _events(run_dir: Path) -> list[dict]:
    return list(RunFolder(run_dir).events())


@pytest.mark.slow  # four tiny trainings and evaluations, in process: ~30-90 s on a shared CPU
def test_sweep_runs_tagged_trials_with_one_generation_prunes_and_writes_best_toml(
    tmp_path: Path, run_still, stillhouse_home: Path, fake_server, tiny_model_dir: Path
) -> None:
    server = fake_server(oracle=Oracle(FIXTURE, "nli", p=1.0))
    write_pipeline(tmp_path, server.url, tiny_model_dir)
    # Trials 0 and 1 learn (lr 1e-2) and cannot be pruned (2 startup trials); trial 2 barely moves
    # (lr 1e-8): its validation loss after the first epoch is above the median of theirs at the
    # same step, so the median pruner stops it; trial 3 is the sampler's.
    body = (
        'n_trials = 1\npruner = "median"\npruner_startup_trials = 2\nsampler = "random"\n'
        'enqueue = [{ "train.learning_rate" = 1e-2, "train.lr_scheduler" = "linear" },'
        ' { "train.learning_rate" = 1e-2, "train.lr_scheduler" = "constant" },'
        ' { "train.learning_rate" = 1e-8, "train.lr_scheduler" = "linear" }]\n'
    )
    space = (
        '[sweep.space]\n"train.learning_rate" = { type = "float", low = 1e-8, high = 1e-2, log = true }\n'
        '"train.lr_scheduler" = { type = "categorical", choices = ["linear", "constant"] }\n'
    )
    sweep = write_sweep(tmp_path, body=body, space=space)

    result = run_still("sweep", str(sweep), "--trials", "4", "--timeout", "2h", "--quiet", env=KEY_ENV)
    assert result.exit_code == 0, result.output
    (sweep_dir,) = (stillhouse_home / "sweeps").iterdir()
    sweep_id = sweep_dir.name
    assert (sweep_dir / "journal.log").exists()

    runs = _runs(stillhouse_home)
    assert sorted(runs) == [0, 1, 2, 3]
    for number, run_dir in runs.items():
        config = RunFolder(run_dir).read_config()
        assert config["tags"] == {"sweep": sweep_id, "trial": str(number)}
        assert run_dir.name.split("-")[2:4] == ["nli", "tiny"] and config["name"] == f"nli-tiny-t{number}"
    for number in (0, 1):
        *_, finished, told = _events(runs[number])  # the sweep_trial event follows run_finished
        assert finished["type"] == "run_finished" and finished["status"] == "completed"
        assert told["type"] == "sweep_trial" and told["state"] == "complete" and told["trial"] == number
        assert told["objectives"] == ["accuracy"] and len(told["values"]) == 1

    # The teacher answered each of the 12 prompts (8 train + 4 validation) once, for the whole sweep.
    assert server.stats.answered_total == 12 and set(server.stats.answered.values()) == {1}
    for number in (1, 2, 3):
        generate = next(e for e in _events(runs[number]) if e["type"] == "stage_finished" and e["stage"] == "generate")
        assert generate["summary"]["cache_hits"] == generate["summary"]["requests"] == 12

    # Trial 2 was pruned at its first validation; training stopped at the next step (the trainer's
    # stop request saves a checkpoint, validated once more), long before its second epoch ended.
    def validation_points(run_dir: Path) -> list[int]:
        return [e["step"] for e in _events(run_dir) if e["type"] == "metric" and e["key"] == "eval/loss"]

    full, pruned = validation_points(runs[0]), validation_points(runs[2])
    assert len(full) == 2 and pruned[0] == full[0] and max(pruned) < full[1]
    events = _events(runs[2])
    assert any(e["type"] == "log" and f"pruned at step {full[0]}" in e["message"] for e in events)
    assert not any(e["type"] == "stage_finished" and e["stage"] == "train" for e in events)
    assert not any(e["type"] == "stage_started" and e["stage"] == "evaluate" for e in events)
    assert events[-2]["type"] == "run_finished" and events[-2]["status"] == "interrupted"
    assert events[-1]["type"] == "sweep_trial" and events[-1]["state"] == "pruned" and events[-1]["pruned_at_step"] == full[0]
    assert "trial 2   pruned" in result.output

    shown = run_still("sweep", "show", sweep_id, "--json", env=KEY_ENV)
    assert shown.exit_code == 0, shown.output
    summary = json.loads(shown.output)
    states = [t["state"] for t in summary["trials"]]
    assert states[:3] == ["complete", "complete", "pruned"] and states[3] in ("complete", "pruned")
    assert {t["run_id"] for t in summary["trials"]} == {p.name for p in runs.values()}
    assert summary["best"]["state"] == "complete" and summary["importances"] is not None
    best_toml = Path(summary["best_toml"])
    text = best_toml.read_text()
    assert repr(summary["best"]["params"]["train.learning_rate"]) in text and "tags" not in text
    checked = run_still("config", "check", str(best_toml), env=KEY_ENV)
    assert checked.exit_code == 0, checked.output

    table = run_still("sql", f"select count(*) as n from params where key = 'tags.sweep' and value = '{sweep_id}'", "--format", "csv")
    assert table.exit_code == 0 and table.output.split()[-1] == "4", table.output
    # The registry holds what Optuna was told: one sweep_results row per trial, summed by `sweeps`.
    told = run_still("sql", f"select trial, state, value from sweep_results where sweep_id = '{sweep_id}' order by trial", "--format", "json")
    assert told.exit_code == 0, told.output
    rows = json.loads(told.output)
    assert [(r["trial"], r["state"]) for r in rows][:3] == [(0, "complete"), (1, "complete"), (2, "pruned")]
    by_number = {t["number"]: t for t in summary["trials"]}
    assert all(r["value"] == (by_number[r["trial"]]["values"] or [None])[0] for r in rows)
    best = run_still("sql", f"select best_trial, n_trials from sweeps where sweep_id = '{sweep_id}'", "--format", "json")
    assert json.loads(best.output) == [{"best_trial": summary["best"]["number"], "n_trials": 4}]
