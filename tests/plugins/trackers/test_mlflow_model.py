"""The mlflow tracker's ``log_model``: the distilled student logged as an MLflow pyfunc model that
loads back and generates (a tiny real transformers student in a fake-plugin run)."""

from __future__ import annotations

import shutil

import pytest

from stillhouse.kernel.config import load_config
from stillhouse.kernel.pipeline import Pipeline
from stillhouse.kernel.runs import Run
from stillhouse.plugins.trackers.mlflow_tracker import MODEL_PATH


@pytest.mark.slow  # ~25 s: the tiny student is saved, logged, loaded back and generates
def test_the_student_is_logged_as_a_pyfunc_model_that_generates(tracker_host, tracked_config, tmp_path, tiny_model_dir, monkeypatch):
    import mlflow.pyfunc
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = tracked_config(f'trackers = ["mlflow"]\n[report.options.mlflow]\ntracking_uri = "{store}"\nlog_model = true\n')
    pipeline = Pipeline.create(load_config(config, tracker_host), tracker_host)
    assert pipeline.execute() == "completed"
    client = MlflowClient(tracking_uri=store)
    [logged] = client.search_runs([client.get_experiment_by_name("stillhouse").experiment_id])
    assert MODEL_PATH not in [a.path for a in client.list_artifacts(logged.info.run_id)], (
        "the fake student is no transformers folder: no model is logged"
    )

    student = pipeline.run.path("student")  # what the hf trainer leaves: a transformers folder
    shutil.rmtree(student)
    shutil.copytree(tiny_model_dir, student)
    Pipeline(load_config(config, tracker_host), tracker_host, Run.open(pipeline.run.id)).execute(["report"])
    assert MODEL_PATH in [a.path for a in client.list_artifacts(logged.info.run_id)]

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    model = mlflow.pyfunc.load_model(f"runs:/{logged.info.run_id}/{MODEL_PATH}")
    answers = model.predict(["is milk white?", "hello"], params={"max_new_tokens": 4})
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    assert answers[0] == model.predict(["is milk white?"], params={"max_new_tokens": 4})[0], "greedy: the same answer"
