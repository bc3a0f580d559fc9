"""A real sweep: tiny student, the fake OpenAI server as teacher. Every trial is an ordinary run
tagged with the sweep; the teacher is asked once per prompt for the whole sweep (later trials read
the content-addressed cache); `still sweep show` writes a best.toml that `still config check`
accepts; a trial that is worse than the median at its first validation is pruned early."""

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


@pytest.mark.slow  # three tiny trainings and evaluations, in process: ~20-40 s on a shared CPU
def test_sweep_runs_tagged_trials_with_one_generation_and_writes_best_toml(
    tmp_path: Path, run_still, stillhouse_home: Path, fake_server, tiny_model_dir: Path
) -> None:
    server = fake_server(oracle=Oracle(FIXTURE, "nli", p=1.0))
    write_pipeline(tmp_path, server.url, tiny_model_dir)
    sweep = write_sweep(tmp_path, body='n_trials = 3\npruner = "none"\nsampler = "random"\n')

    result = run_still("sweep", str(sweep), "--quiet", env=KEY_ENV)
    assert result.exit_code == 0, result.output
    (sweep_dir,) = (stillhouse_home / "sweeps").iterdir()
    sweep_id = sweep_dir.name
    assert (sweep_dir / "journal.log").exists()

    runs = _runs(stillhouse_home)
    assert sorted(runs) == [0, 1, 2]
    for number, run_dir in runs.items():
        config = RunFolder(run_dir).read_config()
        assert config["tags"] == {"sweep": sweep_id, "trial": str(number)}
        assert run_dir.name.split("-")[2:4] == ["nli", "tiny"] and config["name"] == f"nli-tiny-t{number}"
        finished = [e for e in _events(run_dir) if e["type"] == "run_finished"]
        assert finished[-1]["status"] == "completed"

    # The teacher answered each of the 12 prompts (8 train + 4 validation) once, for the whole sweep.
    assert server.stats.answered_total == 12 and set(server.stats.answered.values()) == {1}
    for number in (1, 2):
        generate = next(e for e in _events(runs[number]) if e["type"] == "stage_finished" and e["stage"] == "generate")
        assert generate["summary"]["cache_hits"] == generate["summary"]["requests"] == 12

    shown = run_still("sweep", "show", sweep_id, "--json", env=KEY_ENV)
    assert shown.exit_code == 0, shown.output
    summary = json.loads(shown.output)
    assert [t["state"] for t in summary["trials"]] == ["complete"] * 3
    assert {t["run_id"] for t in summary["trials"]} == {p.name for p in runs.values()}
    assert summary["best"]["number"] in (0, 1, 2) and summary["importances"] is not None
    best_toml = Path(summary["best_toml"])
    text = best_toml.read_text()
    assert repr(summary["best"]["params"]["train.learning_rate"]) in text and "tags" not in text
    checked = run_still("config", "check", str(best_toml), env=KEY_ENV)
    assert checked.exit_code == 0, checked.output

    table = run_still("sql", f"select count(*) as n from params where key = 'tags.sweep' and value = '{sweep_id}'", "--format", "csv")
    assert table.exit_code == 0 and table.output.split()[-1] == "3", table.output


@pytest.mark.slow  # two tiny trainings
def test_a_trial_worse_than_the_median_is_pruned_at_its_first_validation(
    tmp_path: Path, run_still, stillhouse_home: Path, fake_server, tiny_model_dir: Path
) -> None:
    server = fake_server(oracle=Oracle(FIXTURE, "nli", p=1.0))
    write_pipeline(tmp_path, server.url, tiny_model_dir)
    # Trial 0 learns (lr 1e-2); trial 1 barely moves (lr 1e-8): its validation loss after the first
    # epoch is above the median of trial 0's at the same step, so the median pruner stops it.
    body = (
        'n_trials = 2\npruner = "median"\npruner_startup_trials = 1\n'
        'enqueue = [{ "train.learning_rate" = 1e-2 }, { "train.learning_rate" = 1e-8 }]\n'
    )
    space = '[sweep.space]\n"train.learning_rate" = { type = "float", low = 1e-8, high = 1e-2, log = true }\n'
    sweep = write_sweep(tmp_path, body=body, space=space)
    result = run_still("sweep", str(sweep), "--quiet", env=KEY_ENV)
    assert result.exit_code == 0, result.output
    runs = _runs(stillhouse_home)

    def validation_points(run_dir: Path) -> list[int]:
        return [e["step"] for e in _events(run_dir) if e["type"] == "metric" and e["key"] == "eval/loss"]

    full, pruned = validation_points(runs[0]), validation_points(runs[1])
    assert len(full) == 2 and pruned == full[:1]  # stopped after its first validation, not its second
    events = _events(runs[1])
    assert any(e["type"] == "log" and "pruned" in e["message"] for e in events)
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "interrupted"
    assert not any(e["type"] == "stage_started" and e["stage"] == "evaluate" for e in events)
    assert "trial 1   pruned" in result.output
