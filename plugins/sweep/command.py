"""``still sweep``: start, resume or join a sweep; ``still sweep show`` and ``still sweep list``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from stillhouse.kernel.errors import ConfigError, Location, StageError, UserError


class SweepGroup(click.Group):
    """``still sweep FILE ...`` runs ``still sweep start FILE ...``: the group's subcommands (show,
    list) are names, anything else is the start command's arguments."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


@click.group("sweep", cls=SweepGroup, invoke_without_command=False)
def sweep_group() -> None:
    """Search a pipeline's settings with Optuna: each trial is an ordinary run.

    \b
    still sweep SWEEP.toml [--trials N] [--timeout 2h]   start a sweep
    still sweep --resume SWEEP_ID                        continue it, or join it from another process
    still sweep show SWEEP_ID                            best trial, importances, best.toml
    """


def _timeout_seconds(value: str | None, fallback: str | None) -> float | None:
    from stillhouse.plugins.sweep.spec import parse_duration

    if value is None:
        return parse_duration(fallback) if fallback else None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(str(exc), where=Location("--timeout", None, "timeout"), hint="e.g. --timeout 30m") from None


@sweep_group.command("start")
@click.argument("sweep_file", required=False, type=click.Path(dir_okay=False))
@click.option("--trials", "n_trials", type=click.IntRange(min=1), help="Trials to finish (overrides sweep.n_trials).")
@click.option("--timeout", "timeout", metavar="DURATION", help="Wall-clock budget of this process: 90s, 30m, 2h, 1h30m.")
@click.option("--resume", "resume_id", metavar="SWEEP_ID", help="Continue a stopped sweep, or join a running one.")
@click.option("--quiet", is_flag=True, help="One line per trial, no stage progress.")
def start(sweep_file: str | None, n_trials: int | None, timeout: str | None, resume_id: str | None, quiet: bool) -> None:
    """Run trials of a sweep until it has N finished trials (complete or pruned)."""
    from stillhouse.kernel.lifecycle import EXIT_INTERRUPTED, install_sigint
    from stillhouse.kernel.plugins import get_host
    from stillhouse.kernel.progress import ProgressPrinter, quiet_third_party_progress
    from stillhouse.plugins.sweep.spec import load_sweep
    from stillhouse.plugins.sweep.study import SweepFolder, import_optuna, open_study, work
    from stillhouse.plugins.sweep.trial import TrialRunner, check_trial_config, encode_params

    quiet_third_party_progress()
    host = get_host()
    if resume_id is not None:
        folder = SweepFolder.open(resume_id)
        sweep = load_sweep(sweep_file, host) if sweep_file else load_sweep(folder.source, host, text=folder.text)
    else:
        if not sweep_file:
            raise UserError("give a SWEEP file, or --resume SWEEP_ID", hint="e.g. still sweep examples/sweep.toml")
        sweep = load_sweep(sweep_file, host)
        folder = None
    check_trial_config(sweep, host)
    section = sweep.section
    budget = _timeout_seconds(timeout, section.timeout)
    import_optuna()  # a missing Optuna is reported before a folder is made
    created = folder is None
    if folder is None:
        folder = SweepFolder.create(section.name or Path(sweep.source).stem, Path(sweep.source), sweep.text)
    study = open_study(
        folder,
        sweep.directions,
        sampler=section.sampler,
        seed=section.seed,
        pruner=section.pruner,
        startup_trials=section.pruner_startup_trials,
    )
    if created:
        for params in section.enqueue:
            study.enqueue_trial(encode_params(sweep, params))
    target = n_trials or section.n_trials
    # what `still sweep list` and the TUI count towards, and the objective's names
    study.set_user_attr("n_trials", target)
    study.set_user_attr("objectives", [sweep.metric] + ([section.objective.second] if section.objective.second else []))
    click.echo(f"sweep {folder.id}  ({folder.dir})")
    click.echo(f"  objective: {sweep.metric} ({section.objective.direction}) on {section.objective.split}"
               + (f", {section.objective.second} (minimize)" if section.objective.second else "")
               + f"; {target} trials; pruner {section.pruner}")
    printer = ProgressPrinter(quiet=quiet)
    runner = TrialRunner(sweep, folder.id, host, on_event=printer)

    class _Stop:
        requested = False

        def stop(self) -> None:
            self.requested = True
            if runner.pipeline is not None:
                runner.pipeline.stop()

        def should_stop(self) -> bool:
            return self.requested

    stopper = _Stop()

    def report(number: int, outcome: Any) -> None:
        values = ", ".join(f"{v:.4g}" for v in outcome.values or [])
        line = f"trial {number:<3} {outcome.state:<11} {values:<16} run {outcome.run_id or '-'}"
        click.echo(line + (f"  ({outcome.error})" if outcome.error else ""))

    restore = install_sigint(stopper)
    try:
        summary = work(
            study,
            runner,
            n_trials=target,
            timeout_s=budget,
            should_stop=stopper.should_stop,
            on_trial=report,
            after_tell=lambda trial, outcome: runner.record(trial, outcome, target),
        )
    finally:
        restore()
    if summary.stale_failed:
        click.echo(f"marked failed (their process died): trials {', '.join(map(str, summary.stale_failed))}")
    click.echo(f"stopped: {summary.stopped_because}")
    click.echo(f"  see: still sweep show {folder.id}")
    if summary.stopped_because.endswith("failed in a row"):
        last = summary.trials[-1][1]
        raise StageError(
            f"the sweep stopped: {summary.stopped_because}; the last one: {last.error}",
            hint=(f"see the trial's run (still runs show {last.run_id}); " if last.run_id else "")
            + f"fix the config, then still sweep --resume {folder.id}",
        )
    if summary.stopped_because == "stopped":
        click.echo(f"  continue: still sweep --resume {folder.id}", err=True)
        sys.exit(EXIT_INTERRUPTED)


@sweep_group.command("show")
@click.argument("sweep_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the HTML report here.")
def show(sweep_id: str, as_json: bool, html_path: Path | None) -> None:
    """Trials, the best trial (the Pareto front when multi-objective), parameter importances;
    writes the best trial's config as a runnable best.toml and the HTML report (objective per
    trial, each parameter vs the objective, importances) as report.html in the sweep folder."""
    from stillhouse.kernel.plugins import get_host
    from stillhouse.plugins.sweep.report import summarise, write_best
    from stillhouse.plugins.sweep.spec import load_sweep
    from stillhouse.plugins.sweep.study import SweepFolder

    folder = SweepFolder.open(sweep_id)
    host = get_host()
    sweep = load_sweep(folder.source, host, text=folder.text)
    result = summarise(folder, sweep)
    best_path = write_best(folder, sweep, result, host)
    from stillhouse.plugins.sweep.html import render_sweep_html

    page = render_sweep_html(result, sweep.section)
    reports = [folder.dir / "report.html", *([html_path] if html_path else [])]
    for path in reports:
        try:
            path.write_text(page, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write the HTML report to {path}: {exc.strerror or exc}") from None
    if as_json:
        extra = {"best_toml": str(best_path) if best_path else None, "report_html": [str(p) for p in reports]}
        click.echo(json.dumps({**result, **extra}, indent=2, default=str))
        return
    from stillhouse.plugins.sweep.report import print_summary

    print_summary(result, best_path)
    click.echo("report: " + ", ".join(str(p) for p in reports))


@sweep_group.command("list")
def list_cmd() -> None:
    """Sweeps under $STILLHOUSE_HOME/sweeps with their trial counts, state and best value."""
    from stillhouse.plugins.sweep.reading import overviews

    rows = overviews()
    if not rows:
        click.echo("no sweeps yet: still sweep SWEEP.toml")
        return
    for row in rows:
        if row.error:
            click.echo(f"{row.id}  unreadable: {row.error}")
            continue
        best = f"  best {row.objective} {row.best_value:.4g} (trial {row.best_trial})" if row.best_value is not None else ""
        click.echo(f"{row.id}  {row.finished} finished, {row.running} running, {row.total} trials  [{row.state}, target {row.target}]{best}")
