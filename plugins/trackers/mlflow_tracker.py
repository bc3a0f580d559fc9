"""The ``mlflow`` tracker: one MLflow run per Stillhouse run, in the experiment of your choice.

Logged: the resolved config as params, per-step training metrics (``train/loss`` ...), teacher cost,
calls and the filter's acceptance, the evaluation table as ``eval/<role>/<metric>``, and the report
and model card as artifacts. A resumed run's report stage logs into the same MLflow run (found by
its ``stillhouse.run_id`` tag), so a resume does not leave a second run behind.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from stillhouse.kernel.interfaces import StrictModel
from stillhouse.kernel.runs import stillhouse_home
from stillhouse.kernel.tracking import TrackedRun, Tracker

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

RUN_TAG = "stillhouse.run_id"
PARAM_VALUE_LIMIT = 6000  # MLflow refuses longer param values (the file store's limit)
QUIET_LOGGERS = ("mlflow.store.db.utils", "alembic")  # the sqlite store's "creating tables" chatter
MODEL_PATH = "student_model"  # the student's pyfunc model inside the MLflow run's artifacts
STUDENT_MODEL_CODE = Path(__file__).with_name("mlflow_student.py")
BATCH = 900  # MLflow's log_batch takes at most 1000 metrics per call


class MlflowConfig(StrictModel):
    tracking_uri: str | None = Field(
        None,
        description="Where runs are logged: a server (http://host:5000), databricks, sqlite:///path.db ...; default: "
        "sqlite:///$STILLHOUSE_HOME/mlflow.db (`mlflow ui --backend-store-uri` it). MLflow 3 refuses folder stores "
        "unless MLFLOW_ALLOW_FILE_STORE=true.",
    )
    artifact_location: str | None = Field(
        None,
        description="Where a new experiment keeps artifacts; default: the server's choice, or "
        "$STILLHOUSE_HOME/mlartifacts with the default store.",
    )
    experiment: str = Field("stillhouse", min_length=1, description="MLflow experiment name (created if missing).")
    log_model: bool = Field(
        False,
        description="Also log the distilled student (a transformers folder) as an MLflow pyfunc model at "
        f"runs:/<id>/{MODEL_PATH}: mlflow.pyfunc.load_model(...).predict([prompt]) generates. Copies the weights "
        "into the artifact store.",
    )


class MlflowTracker(Tracker):
    name = "mlflow"
    description = "Logs params, training curves, teacher cost, evaluation metrics and the report to MLflow."
    Config = MlflowConfig
    # sqlalchemy and alembic: the sqlite store (the default); full `mlflow` brings all three
    requires = {"mlflow": "mlflow-skinny", "sqlalchemy": "sqlalchemy", "alembic": "alembic"}

    def track(self, run: TrackedRun) -> list[Path]:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient

        for chatty in QUIET_LOGGERS:  # their INFO lines would land in the middle of the run's progress display
            logging.getLogger(chatty).setLevel(logging.WARNING)

        config: MlflowConfig = self.config  # type: ignore[assignment]
        tracking_uri = config.tracking_uri or f"sqlite:///{stillhouse_home() / 'mlflow.db'}"
        client = MlflowClient(tracking_uri=tracking_uri)
        experiment = client.get_experiment_by_name(config.experiment)
        if experiment:
            experiment_id = experiment.experiment_id
        else:
            location = config.artifact_location or _beside_local_database(tracking_uri)
            experiment_id = client.create_experiment(config.experiment, artifact_location=location)
        found = client.search_runs([experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{run.run_id}'", max_results=1)
        if found:
            run_id = found[0].info.run_id
        else:
            run_id = client.create_run(experiment_id, run_name=run.run_id, tags={RUN_TAG: run.run_id, "stillhouse.name": run.name}).info.run_id
            params = [Param(key, value[:PARAM_VALUE_LIMIT]) for key, value in run.params.items()]
            for start in range(0, len(params), 100):  # log_batch takes at most 100 params per call
                client.log_batch(run_id, params=params[start : start + 100])
        metrics = [Metric(_key(m.key), m.value, 0, m.step) for m in run.steps]
        metrics += [Metric(_key(key), value, 0, 0) for key, value in run.teacher.items()]
        metrics += [
            Metric(_key(f"eval/{role}/{name}"), value, 0, 0) for role, values in run.evaluation.items() for name, value in values.items()
        ]
        if run.retention is not None:
            metrics.append(Metric("eval/retention", run.retention, 0, 0))
        for start in range(0, len(metrics), BATCH):
            client.log_batch(run_id, metrics=metrics[start : start + BATCH], tags=[RunTag("stillhouse.status", "reported")])
        for artifact in run.artifacts:
            folder = artifact.parent.relative_to(run.run_dir).as_posix()
            client.log_artifact(run_id, str(artifact), artifact_path=None if folder == "." else folder)
        student = run.run_dir / "student"
        if config.log_model and (student / "config.json").is_file():  # a transformers folder, not every trainer's output
            _log_student(client, run_id, student)
        client.set_terminated(run_id, "FINISHED")
        return []


def _log_student(client: MlflowClient, run_id: str, student: Path) -> None:
    """Save the student as a pyfunc model (the code in mlflow_student.py, the folder as its artifact)
    and log it into the run. Requirements are named, not inferred: inference loads the model again
    in a subprocess."""
    from importlib.metadata import version

    import mlflow.pyfunc

    requirements = [f"{package}=={version(package)}" for package in ("mlflow-skinny", "transformers", "torch")]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / MODEL_PATH
        mlflow.pyfunc.save_model(
            path=str(model_dir),
            python_model=str(STUDENT_MODEL_CODE),
            artifacts={"student": str(student)},  # mlflow_student.ARTIFACT
            pip_requirements=requirements,
        )
        client.log_artifacts(run_id, str(model_dir), MODEL_PATH)


def _beside_local_database(tracking_uri: str) -> str | None:
    """``mlartifacts`` next to a local sqlite database: MLflow's own default for it is ./mlruns in
    whatever folder `still` happened to run in. None (the server decides) for other stores."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return (Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()


def _key(name: str) -> str:
    """MLflow metric keys allow letters, digits, _ - . / and space; anything else becomes _."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in name)
