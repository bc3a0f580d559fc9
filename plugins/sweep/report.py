"""What ``still sweep show`` says: the trials, the best one (or the Pareto front), Optuna's
parameter importances, and the best trial's config written as a runnable ``best.toml``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from stillhouse.kernel.config import to_toml, validate_config
from stillhouse.kernel.errors import StillhouseError
from stillhouse.kernel.plugins import PluginHost
from stillhouse.plugins.sweep.spec import Sweep
from stillhouse.plugins.sweep.study import SweepFolder, import_optuna, load_study
from stillhouse.plugins.sweep.trial import decode_params, with_params

# fewer complete trials than this: the importances are printed as weak
FEW_TRIALS = 10


def trial_row(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    """One trial as ``still sweep show`` (and the TUI) shows it; ``space`` decodes its params."""
    duration = trial.duration.total_seconds() if trial.duration is not None else None
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        # A pruned trial's stored value is its last intermediate value (the negated validation
        # loss), not the objective: shown as where it was pruned instead.
        "values": list(trial.values) if trial.values is not None and trial.state.name == "COMPLETE" else None,
        "pruned_at_step": max(trial.intermediate_values) if trial.state.name == "PRUNED" and trial.intermediate_values else None,
        "params": decode_params(space, trial.params),
        "run_id": trial.user_attrs.get("run_id"),
        "seconds": round(duration, 3) if duration is not None else None,
        "error": trial.user_attrs.get("error"),
    }


def summarise(folder: SweepFolder, sweep: Sweep) -> dict[str, Any]:
    """The sweep as a dict: trials, best trial or Pareto front, importances (or why none)."""
    optuna = import_optuna()
    study = load_study(folder)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    objectives = [sweep.metric] + ([sweep.section.objective.second] if sweep.section.objective.second else [])
    result: dict[str, Any] = {
        "sweep_id": folder.id,
        "objectives": objectives,
        "directions": sweep.directions,
        "trials": [trial_row(t, sweep.section.space) for t in trials],
        "best": None,
        "pareto_front": [],
        "importances": None,
        "importances_note": None,
    }
    if complete:
        if sweep.multi_objective:
            front = sorted(study.best_trials, key=lambda t: t.values[0], reverse=sweep.directions[0] == "maximize")
            result["pareto_front"] = [trial_row(t, sweep.section.space) for t in front]
            result["best"] = result["pareto_front"][0]
        else:
            result["best"] = trial_row(study.best_trial, sweep.section.space)
    if len(complete) >= 2:
        try:
            target = (lambda t: t.values[0]) if sweep.multi_objective else None
            with warnings.catch_warnings(record=True) as caught:  # Optuna warns when trials are too few to tell
                warnings.simplefilter("always")
                importances = optuna.importance.get_param_importances(study, target=target)
            result["importances"] = {k: round(float(v), 4) for k, v in importances.items()}
            if caught:
                result["importances_note"] = f"weak: {caught[0].message} ({len(complete)} complete trials)"
            elif len(complete) < FEW_TRIALS:
                # a handful of trials gives every parameter some share: say so rather than rank them
                result["importances_note"] = f"weak: only {len(complete)} complete trials; importances settle after ~{FEW_TRIALS}"
        except (RuntimeError, ValueError) as exc:  # e.g. every trial had the same values
            result["importances_note"] = f"not computed: {exc}"
    else:
        result["importances_note"] = f"needs 2 complete trials ({len(complete)} so far)"
    return result


def write_best(folder: SweepFolder, sweep: Sweep, result: dict[str, Any], host: PluginHost) -> Path | None:
    """The best trial's parameters applied to the pipeline config, data paths made absolute,
    validated, written as ``best.toml`` in the sweep folder; None when no trial completed."""
    best = result.get("best")
    if not best:
        return None
    raw = with_params(sweep, best["params"])
    data = raw.get("data")
    if isinstance(data, dict):
        base = sweep.pipeline_path.parent
        for split in ("train", "validation", "test"):
            value = data.get(split)
            if isinstance(value, str) and not value.startswith("hf:") and not Path(value).expanduser().is_absolute():
                data[split] = str((base / value).resolve())
    path = folder.dir / "best.toml"
    header = (
        f"# The best trial ({best['number']}) of sweep {folder.id}: {sweep.pipeline_path} with\n"
        + "".join(f"#   {k} = {v!r}\n" for k, v in best["params"].items())
        + f"# run it: still run {path}\n"
    )
    try:
        validate_config(dict(raw), host, source=str(path), base_dir=folder.dir)
    except StillhouseError as exc:
        result["best_toml_error"] = exc.what
        return None
    path.write_text(header + to_toml(raw), encoding="utf-8")
    return path


def _fmt(values: list[float] | None) -> str:
    return ", ".join(f"{v:.4g}" for v in values) if values else "-"


def print_summary(result: dict[str, Any], best_path: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    objectives = " / ".join(f"{o} ({d})" for o, d in zip(result["objectives"], result["directions"], strict=True))
    table = Table(title=f"sweep {result['sweep_id']}: {objectives}")
    for column in ("trial", "state", "objective", "params", "seconds", "run"):
        table.add_column(column)
    for row in result["trials"]:
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row["params"].items())
        seconds = f"{row['seconds']:.1f}" if row["seconds"] is not None else "-"
        state = row["state"] + (f" (step {row['pruned_at_step']})" if row["pruned_at_step"] is not None else "")
        table.add_row(str(row["number"]), state, _fmt(row["values"]), params, seconds, row["run_id"] or "-")
    console.print(table)
    best = result["best"]
    if best is None:
        console.print("no complete trial yet")
    elif result["pareto_front"]:
        console.print("Pareto front (" + " vs ".join(result["objectives"]) + "):")
        for row in result["pareto_front"]:
            console.print(f"  trial {row['number']}: {_fmt(row['values'])}  {row['params']}  run {row['run_id']}")
    else:
        console.print(f"best: trial {best['number']}  {result['objectives'][0]} = {_fmt(best['values'])}  run {best['run_id']}")
        console.print(f"  params: {best['params']}")
    if result["importances"]:
        console.print("parameter importances (Optuna's PED-ANOVA):")
        for name, value in result["importances"].items():
            console.print(f"  {name:<32} {value:.3f}")
    if result["importances_note"]:
        console.print(f"parameter importances: {result['importances_note']}")
    if best_path is not None:
        console.print(f"best config: {best_path}\n  run it: still run {best_path}")
    elif result.get("best_toml_error"):
        console.print(f"best config not written: {result['best_toml_error']}")
