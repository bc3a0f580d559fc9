"""The mlflow and tensorboard trackers, read back from a real MLflow file store and real
TensorBoard event files after a whole (fake-plugin) pipeline run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stillhouse.kernel import hookimpl
from stillhouse.kernel.config import load_config
from stillhouse.kernel.errors import ConfigError
from stillhouse.kernel.pipeline import Pipeline
from stillhouse.kernel.runs import Run
from stillhouse.kernel.tracking import TrackedRun, Tracker
from stillhouse.plugins import reports, trackers
from tests.kernel import fakes


def run_pipeline(config_path, host):
    pipeline = Pipeline.create(load_config(config_path, host), host)
    assert pipeline.execute() == "completed"
    return pipeline.run


def test_mlflow_gets_params_curves_teacher_numbers_evaluation_and_report(tracker_host, tracked_config, tmp_path):
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = run_pipeline(
        tracked_config(f'trackers = ["mlflow"]\n[report.options.mlflow]\ntracking_uri = "{store}"\nexperiment = "nli"\n'),
        tracker_host,
    )
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("nli")
    [logged] = client.search_runs([experiment.experiment_id])
    assert logged.info.run_name == run.id and logged.info.status == "FINISHED"
    assert logged.data.tags["stillhouse.run_id"] == run.id
    assert logged.data.params["task"] == "echo" and logged.data.params["train.loss"] == "sft"
    curve = [(m.step, m.value) for m in client.get_metric_history(logged.info.run_id, "train/loss")]
    assert curve == sorted(curve) and len(curve) >= 2 and curve[0] == (1, 1.0)
    metrics = logged.data.metrics
    assert metrics["eval/student/accuracy"] == 1.0 and metrics["eval/baseline/accuracy"] == 0.0
    assert metrics["teacher/calls"] == 7 and metrics["filter/accepted"] == 5
    assert metrics["filter/acceptance_rate"] == pytest.approx(5 / 7)
    assert [a.path for a in client.list_artifacts(logged.info.run_id)] == ["report.md"]
    assert list((tmp_path / "mlartifacts").rglob("report.md")), "artifacts beside a local database, not in ./mlruns"


def test_mlflow_defaults_to_a_sqlite_store_in_the_stillhouse_home_and_a_resume_reuses_the_run(
    tracker_host, tracked_config, stillhouse_home
):
    from mlflow.tracking import MlflowClient

    config = tracked_config('trackers = ["mlflow"]\n')
    run = run_pipeline(config, tracker_host)
    store = f"sqlite:///{stillhouse_home / 'mlflow.db'}"
    Pipeline(load_config(config, tracker_host), tracker_host, Run.open(run.id)).execute(["report"])
    client = MlflowClient(tracking_uri=store)
    [logged] = client.search_runs([client.get_experiment_by_name("stillhouse").experiment_id])
    assert logged.data.tags["stillhouse.run_id"] == run.id
    assert [a.path for a in client.list_artifacts(logged.info.run_id)] == ["report.md"]
    assert list((stillhouse_home / "mlartifacts").rglob("report.md"))
    assert [a.path for a in client.list_artifacts(logged.info.run_id)] == ["report.md"]
    assert (stillhouse_home / "mlartifacts").is_dir()


def test_tensorboard_event_files_hold_curves_and_evaluation_scalars(tracker_host, tracked_config):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = run_pipeline(tracked_config('trackers = ["tensorboard"]\n'), tracker_host)
    events = EventAccumulator(str(run.path("tensorboard")))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"train/loss", "eval/student/accuracy", "teacher/cost_usd", "filter/acceptance_rate"} <= set(tags)
    curve = [(e.step, e.value) for e in events.Scalars("train/loss")]
    assert curve[0] == (1, 1.0) and len(curve) >= 2
    assert events.Scalars("eval/student/accuracy")[0].value == 1.0
    report_files = run.finished_stages()["report"]["files"]
    assert any("events.out.tfevents" in f for f in report_files), "the report stage lists the event file"


def test_a_failing_tracker_warns_once_and_the_run_goes_on(tracker_host, tracked_config, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where MLflow wants the folder of its database")
    run = run_pipeline(
        tracked_config(f'trackers = ["mlflow", "tensorboard"]\n[report.options.mlflow]\ntracking_uri = "sqlite:///{blocked}/mlflow.db"\n'),
        tracker_host,
    )
    warnings = [e["message"] for e in run.events() if e["type"] == "log" and e.get("level") == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith("tracker mlflow failed, the run goes on")
    assert list(run.path("tensorboard").glob("events.out.tfevents.*")), "the other tracker still ran"


class NeedsAPackage(Tracker):
    name = "needs_pkg"
    requires = {"stillhouse_no_such_module": "stillhouse-no-such-package>=1"}

    def track(self, run: TrackedRun) -> list:
        raise AssertionError("never reached: refused at config check")


class ExtraTrackers:
    @staticmethod
    @hookimpl
    def register_reporters(register):
        register(NeedsAPackage)


@pytest.mark.parametrize(
    ("report_toml", "message", "hint"),
    [
        ('trackers = ["mlfow"]\n', "no tracker named 'mlfow'", "did you mean 'mlflow'?"),
        ('trackers = ["comet"]\n', "no tracker named 'comet'", "trackers: mlflow, needs_pkg, tensorboard, wandb"),
        ('trackers = ["markdown"]\n', "'markdown' is a reporter, not a tracker", "report.reporters"),
        ('trackers = ["needs_pkg"]\n', "needs stillhouse-no-such-package>=1, which is not installed", "pip install 'stillhouse-no-such-package>=1'"),
        ('trackers = ["tensorboard"]\n[report.options.mlflow]\nexperiment = "x"\n', "options for tracker 'mlflow'", 'add "mlflow"'),
        ('trackers = ["mlflow"]\n[report.options.mlflow]\nexperimnt = "x"\n', "invalid options for tracker 'mlflow'", None),
    ],
)
def test_bad_tracker_config_exits_2_at_config_check(make_host, tracked_config, report_toml, message, hint):
    fakes.reset()
    host = make_host(fakes, reports, trackers, ExtraTrackers, entry_points=False)
    with pytest.raises(ConfigError) as caught:
        load_config(tracked_config(report_toml), host)
    error = caught.value
    assert error.exit_code == 2 and message in error.what
    assert error.where is not None and error.where.line is not None  # points at the config line
    if hint:
        assert hint in (error.hint or "") + " ".join(error.details or [])
    assert not fakes.CALLS, "no teacher call before the config is checked"


def test_the_readme_tracker_config_is_valid(tracker_host, tracked_config):
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    block = next(b for b in re.findall(r"```toml\n(.*?)```", readme, flags=re.S) if "trackers = [" in b)
    loaded = load_config(tracked_config(block.removeprefix("[report]\n")), tracker_host)
    assert loaded.pipeline.report.trackers == ["mlflow", "tensorboard"]
    assert loaded.pipeline.report.options["mlflow"]["experiment"] == "snli-smollm"


def test_the_registry_records_which_tracker_plugins_a_run_used(tracker_host, tracked_config):
    loaded = load_config(tracked_config('trackers = ["tensorboard"]\n'), tracker_host)
    used = Pipeline.create(loaded, tracker_host).plugins_used()
    assert {"kind": "reporter", "name": "tensorboard"} in [{"kind": p["kind"], "name": p["name"]} for p in used]
