"""One trial: the pipeline config with the trial's parameters applied, run as an ordinary run.

The run has its own folder, events and registry row like any ``still run``; its config carries
``tags = { sweep = "<id>", trial = "<n>" }`` and its name ends in ``-t<n>``. Trials score the
objective's split with the roles the objective needs (the student; the teacher too for
retention), so a sweep over training settings asks the teacher nothing after the first trial: the
generate stage finds every answer in the content-addressed teacher cache.

Pruning: the trainer emits the validation loss after each evaluation (a ``metric`` event with
context ``validation``); it is reported to Optuna as the trial's intermediate value (negated when
the objective is maximised, so "better" points the same way), and when the pruner says so the run
is asked to stop at the next safe point: it ends ``interrupted`` with a ``log`` event saying it was
pruned, and the trial is recorded PRUNED.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from stillhouse.kernel.config import validate_config
from stillhouse.kernel.errors import StillhouseError
from stillhouse.kernel.interfaces import TaskType
from stillhouse.kernel.lifecycle import describe_failure
from stillhouse.kernel.plugins import PluginHost
from stillhouse.kernel.runs import Run
from stillhouse.plugins.sweep.spec import RETENTION, SECOND_METRICS, CategoricalParam, FloatParam, Sweep, set_key
from stillhouse.plugins.sweep.study import TrialOutcome

VALIDATION_LOSS = "eval/loss"


def suggest(trial: Any, sweep: Sweep) -> dict[str, Any]:
    """The trial's value for every key of the search space (lists of choices are passed to Optuna
    as their JSON text: Optuna's categorical values are scalars)."""
    params: dict[str, Any] = {}
    for key, param in sweep.section.space.items():
        if isinstance(param, FloatParam):
            params[key] = trial.suggest_float(key, param.low, param.high, log=param.log, step=param.step)
        elif isinstance(param, CategoricalParam):
            encoded = [json.dumps(c) if isinstance(c, list) else c for c in param.choices]
            value = trial.suggest_categorical(key, encoded)
            params[key] = json.loads(value) if isinstance(value, str) and value not in param.choices else value
        else:
            params[key] = trial.suggest_int(key, param.low, param.high, log=param.log, step=param.step)
    return params


def encode_params(sweep: Sweep, params: dict[str, Any]) -> dict[str, Any]:
    """Config values as Optuna stores them (a list choice as its JSON text), for enqueue_trial."""
    return {k: json.dumps(v) if isinstance(sweep.section.space.get(k), CategoricalParam) and isinstance(v, list) else v for k, v in params.items()}


def decode_params(space: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Optuna's stored params as config values (a list choice back from its JSON text);
    ``space`` is the sweep section's search space."""
    out = {}
    for key, value in params.items():
        param = space.get(key)
        if isinstance(param, CategoricalParam) and isinstance(value, str) and value not in param.choices:
            out[key] = json.loads(value)
        else:
            out[key] = value
    return out


def with_params(sweep: Sweep, params: dict[str, Any]) -> dict[str, Any]:
    """The pipeline config as read, with ``params`` applied (what best.toml holds)."""
    raw = copy.deepcopy(sweep.pipeline_raw)
    for key, value in params.items():
        set_key(raw, key, value)
    return raw


def trial_config(sweep: Sweep, sweep_id: str, number: int, params: dict[str, Any]) -> dict[str, Any]:
    """The config a trial runs: the parameters, its tags and name, and an evaluate stage that
    measures what the objective needs on the objective's split."""
    raw = with_params(sweep, params)
    base_name = raw.get("name") or raw.get("task") or "run"
    raw["name"] = f"{base_name}-t{number}"
    raw["tags"] = {**(raw.get("tags") or {}), "sweep": sweep_id, "trial": str(number)}
    evaluate = raw.setdefault("evaluate", {})
    evaluate["split"] = sweep.section.objective.split
    evaluate["roles"] = ["student", "teacher"] if sweep.metric == RETENTION else ["student"]
    second = sweep.section.objective.second
    evaluators = list(evaluate.get("evaluators") or ["task_metrics"])
    if "task_metrics" not in evaluators:
        evaluators.insert(0, "task_metrics")
    if second and SECOND_METRICS[second][1] not in evaluators:
        evaluators.append(SECOND_METRICS[second][1])
    evaluate["evaluators"] = evaluators
    # Options of evaluators the trial does not run (the config's latency settings when the trial
    # measures only task metrics) would be refused as options of an unlisted evaluator.
    if isinstance(evaluate.get("options"), dict):
        evaluate["options"] = {k: v for k, v in evaluate["options"].items() if k in evaluators}
    # The interleaved timing phase measures nothing the objective reads (latency is the latency
    # evaluator's): trials skip it. best.toml keeps the config's own [evaluate].
    evaluate["timing"] = {**(evaluate.get("timing") or {}), "enabled": False}
    return raw


def check_trial_config(sweep: Sweep, host: PluginHost) -> None:
    """Validate the config a trial runs (the first enqueued values, else the config's own) before
    any sweep folder or trial exists: what the sweep adds to [evaluate] must load like the rest."""
    params = dict(sweep.section.enqueue[0]) if sweep.section.enqueue else {}
    raw = trial_config(sweep, "check", 0, params)
    validate_config(raw, host, source=f"{sweep.pipeline_path} (as a trial of {sweep.source})", base_dir=sweep.pipeline_path.parent)


def objective_values(sweep: Sweep, run: Run) -> tuple[list[float] | None, str | None]:
    """The objective value(s) a finished run measured, or None and why not."""
    state = run.state()
    student = state.evals.get("student", {})
    if sweep.metric == RETENTION:
        value = state.retention
        first = None if value is None else value * 100.0
    else:
        first = student.get(sweep.metric)
    if first is None:
        return None, f"the run measured no {sweep.metric} for the student"
    values = [float(first)]
    second = sweep.section.objective.second
    if second:
        metric = SECOND_METRICS[second][0]
        measured = student.get(metric)
        if measured is None:
            return None, f"the run measured no {metric} for the student"
        values.append(float(measured))
    return values, None


class TrialRunner:
    """Runs trials of one sweep in this process (``still sweep`` calls it once per trial)."""

    def __init__(
        self,
        sweep: Sweep,
        sweep_id: str,
        host: PluginHost,
        *,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.sweep = sweep
        self.sweep_id = sweep_id
        self.host = host
        self.on_event = on_event
        self.should_stop = should_stop
        self.pipeline: Any = None  # the trial running now (the CLI forwards Ctrl-C to it)
        self.runs: dict[int, Run] = {}  # trial number -> its run, for record()
        self.primary = host.get(TaskType, sweep.base.pipeline.task).primary_metric

    def __call__(self, trial: Any) -> TrialOutcome:
        from stillhouse.kernel.pipeline import Pipeline

        params = suggest(trial, self.sweep)
        raw = trial_config(self.sweep, self.sweep_id, trial.number, params)
        path = self.sweep.pipeline_path
        try:
            loaded = validate_config(raw, self.host, source=f"{path} (trial {trial.number})", base_dir=path.parent)
        except StillhouseError as exc:  # checked before the first trial; a combination may still clash
            return TrialOutcome("failed", error=exc.what)
        pruned: list[int] = []
        maximize = self.sweep.section.objective.direction == "maximize"
        pipeline: Any = None

        def sink(event: dict[str, Any]) -> None:
            if self.on_event is not None:
                self.on_event(event)
            if event.get("type") == "run_started":
                trial.set_user_attr("run_id", pipeline.run.id)
            if (
                event.get("type") == "metric"
                and event.get("key") == VALIDATION_LOSS
                and not self.sweep.multi_objective
                and not pruned
            ):
                step = int(event.get("step") or 0)
                loss = float(event["value"])
                trial.report(-loss if maximize else loss, step)
                if trial.should_prune():
                    pruned.append(step)
                    pipeline.emit(
                        "log",
                        level="info",
                        message=f"sweep {self.sweep_id}: trial {trial.number} pruned at step {step} "
                        f"(validation loss {loss:.4g}); the run stops here",
                    )
                    pipeline.stop()

        pipeline = Pipeline.create(loaded, self.host, on_event=sink)
        self.pipeline = pipeline
        self.runs[trial.number] = pipeline.run
        try:
            status = pipeline.execute()
        except Exception as exc:  # noqa: BLE001 - one trial's failure is recorded; the sweep goes on
            return TrialOutcome("failed", run_id=pipeline.run.id, error=describe_failure(exc))
        finally:
            self.pipeline = None
        run_id = pipeline.run.id
        if pruned:
            return TrialOutcome("pruned", run_id=run_id, pruned_at_step=pruned[0])
        if status == "interrupted":
            return TrialOutcome("interrupted", run_id=run_id, error="stopped by the user")
        if status != "completed":
            error = pipeline.run.state().error or status
            return TrialOutcome("failed", run_id=run_id, error=error)
        values, why = objective_values(self.sweep, pipeline.run)
        if values is None:
            return TrialOutcome("failed", run_id=run_id, error=why)
        return TrialOutcome("complete", values=values, run_id=run_id)

    def record(self, trial: Any, outcome: TrialOutcome, n_trials: int) -> None:
        """Append a ``sweep_trial`` event to the trial's run, after its run_finished: what Optuna
        was told (state, objective values) with the sweep's objectives and the trial's parameters.
        The registry ingests it into ``sweep_results``; a trial without a run has nothing to write to."""
        run = self.runs.pop(trial.number, None)
        if run is None:
            return
        objectives = [self.sweep.metric] + ([self.sweep.section.objective.second] if self.sweep.multi_objective else [])
        run.emit(
            "sweep_trial",
            sweep_id=self.sweep_id,
            trial=trial.number,
            state=outcome.state,
            values=outcome.values if outcome.state == "complete" else None,
            objectives=objectives,
            directions=self.sweep.directions,
            params=decode_params(self.sweep.section.space, trial.params),
            n_trials=n_trials,
            pruned_at_step=outcome.pruned_at_step,
            error=outcome.error,
        )
