"""The ``still`` command line.

The kernel defines run, config and plugins; plugins add the rest through ``register_commands``
(sql and runs from the registry, tui, serve, eval, export ...). Errors are rendered once here: a
short message and exit code 2 for user errors, no traceback unless ``--debug``. Nothing heavy is
imported until a command needs it, so ``still --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import click

from stillhouse.kernel import __version__
from stillhouse.kernel.errors import StillhouseError, UserError

# `still run` exit codes: 0 completed, 1 internal error, 2 user error, 3 incomplete (some work
# failed and `--resume` retries it), 130 interrupted; the run's lifecycle classifies them.
from stillhouse.kernel.lifecycle import EXIT_INCOMPLETE, EXIT_INTERRUPTED
from stillhouse.kernel.plugins import PluginHost, get_host
from stillhouse.kernel.runs import STAGES, Run
from stillhouse.kernel.secrets import redact_text
from stillhouse.kernel.text import visible


def _print_traceback() -> None:
    """The current exception's traceback on stderr, secrets redacted (a provider's error may hold the key)."""
    click.echo(redact_text(traceback.format_exc()), err=True, nl=False)


class StillGroup(click.Group):
    """Renders StillhouseErrors raised by any command (kernel or plugin) without a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StillhouseError as exc:
            if (ctx.obj or {}).get("debug"):
                _print_traceback()
            click.echo(redact_text(exc.render()), err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(EXIT_INTERRUPTED)


@click.group(cls=StillGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="still")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Stillhouse: distil large language models into small, fast ones."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


# -- still run ----------------------------------------------------------------------------------


@cli.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--stage", "stages", multiple=True, type=click.Choice(STAGES), help="Run only these stages (repeatable).")
@click.option("--resume", "resume_id", metavar="RUN_ID", help="Continue a stopped or failed run where it stopped.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value, e.g. train.num_epochs=1.")
@click.option("--dry-run", is_flag=True, help="Estimate teacher calls, tokens and cost; call nothing.")
@click.option("--quiet", is_flag=True, help="Print only the run id and the final status.")
@click.option(
    "--json", "as_json", is_flag=True,
    help="JSON lines on stdout: every run event as it happens, then one {\"type\": \"result\"} line (progress goes to stderr).",
)
def run(
    config: str | None, stages: tuple[str, ...], resume_id: str | None, overrides: tuple[str, ...], dry_run: bool, quiet: bool, as_json: bool
) -> None:
    """Run a distillation pipeline from CONFIG (TOML or YAML).

    Exit status: 0 completed, 1 crashed, 2 bad input, 3 incomplete (resume retries), 130 interrupted."""
    from stillhouse.kernel.config import load_config, validate_config
    from stillhouse.kernel.lifecycle import install_sigint
    from stillhouse.kernel.pipeline import Pipeline
    from stillhouse.kernel.progress import ProgressPrinter, quiet_third_party_progress

    quiet_third_party_progress()  # before any model library is imported: our bars only
    host = get_host()
    printer: Callable[[dict[str, Any]], None] = ProgressPrinter(quiet=quiet, stderr=as_json)
    progress = printer
    if as_json:
        printer = JsonLines(sys.stdout, then=progress)
    if resume_id is not None:  # "" (an unset shell variable) must be refused, not ignored
        run_ = Run.open(resume_id)
        if config:
            loaded = load_config(config, host, list(overrides))
        elif overrides:  # applied where still safe, refused by name where not: never ignored
            from stillhouse.kernel.resume import apply_resume_overrides, save_config

            updated = apply_resume_overrides(run_, list(overrides))
            loaded = validate_config(updated, host, source="--set", base_dir=run_.dir)
            save_config(run_, loaded.to_dict())
            click.echo(f"applied to run {run_.id}: " + ", ".join(overrides), err=as_json)
        else:
            loaded = validate_config(dict(run_.config), host, source=str(run_.path("config.json")), base_dir=run_.dir)
        pipeline = Pipeline(loaded, host, run_, on_event=printer)
    else:
        if not config:
            raise UserError("give a CONFIG file, or --resume RUN_ID", hint="e.g. still run examples/nli.toml")
        loaded = load_config(config, host, list(overrides))
        if dry_run:
            estimates: list[dict[str, Any]] = []

            def on_event(event: dict[str, Any]) -> None:
                estimates.append(event)
                progress(event)

            Pipeline(loaded, host, Run("dry-run", Path("."), loaded.to_dict()), on_event=on_event).dry_run()
            if as_json:  # the estimate: prompts, calls, tokens, cost_usd (null: no price known)
                estimate = next((e for e in estimates if e.get("type") == "dry_run"), {})
                click.echo(json.dumps({k: v for k, v in estimate.items() if k != "type"}))
            return
        pipeline = Pipeline.create(loaded, host, on_event=printer)
    assert isinstance(progress, ProgressPrinter)
    progress.started(pipeline.run)
    restore = install_sigint(pipeline)
    try:
        # --json: stdout carries the result alone; what plugins print meanwhile (the terminal
        # reporter's table, a library's chatter) goes to stderr with the progress.
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            status = pipeline.execute(list(stages) or None, resume=bool(resume_id))
    except BaseException:
        if isinstance(printer, JsonLines) and pipeline.life.ending is not None:  # failed: scripts still get the result
            printer.result(run_result(pipeline.run, pipeline.life.ending.exit_code, pipeline.life.ending.error))
        raise
    finally:
        restore()
    progress.finished(pipeline.run, status)
    if isinstance(printer, JsonLines):
        ending = pipeline.life.ending
        printer.result(run_result(pipeline.run, ending.exit_code if ending else 0, ending.error if ending else None))
    if status == "interrupted":
        sys.exit(EXIT_INTERRUPTED)
    if status == "incomplete":
        # Not a success: scripts and CI must see that work is left (exit 3, documented in the README).
        why = "; ".join(f"{stage}: {reason}" for stage, reason in pipeline.incomplete.items())
        click.echo(f"incomplete: {why}\n  resume with: still run --resume {pipeline.run.id}", err=True)
        sys.exit(EXIT_INCOMPLETE)


class JsonLines:
    """``still run --json``: each run event as one JSON line on ``out`` (the real stdout, kept before
    plugins' prints are sent to stderr), then the human progress callback ``then``; ``result``
    writes the closing ``{"type": "result", ...}`` line. Events come from worker threads too: one
    lock keeps lines whole."""

    def __init__(self, out: TextIO, *, then: Callable[[dict[str, Any]], None]) -> None:
        self.out = out
        self.then = then
        self._lock = threading.Lock()

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=str)
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()

    def __call__(self, event: dict[str, Any]) -> None:
        self._write(event)
        self.then(event)

    def result(self, result: dict[str, Any]) -> None:
        self._write({"type": "result", **result})


def run_result(run_: Run, exit_code: int, error: str | None) -> dict[str, Any]:
    """What ``still run --json`` prints: the run's id, how it ended, its metrics per role
    (teacher, baseline, student = the distilled model), retention and artifact paths."""
    state = run_.state()
    artifacts = {str(a["name"]): {"path": a.get("path"), "bytes": a.get("bytes")} for a in state.artifacts}
    return {
        "run_id": run_.id,
        "status": state.status,
        "exit_code": exit_code,
        "error": error,
        "folder": str(run_.dir),
        "primary_metric": state.primary_metric,
        "metrics": state.evals,
        "retention_pct": None if state.retention is None else round(100 * state.retention, 2),
        "cost_usd": state.cost_usd,
        "stages": {name: stage.status for name, stage in state.stages.items()},
        "artifacts": artifacts,
    }


# -- still config -------------------------------------------------------------------------------


@cli.group()
def config() -> None:
    """Check pipeline configs and print their schema."""


@config.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")
def config_check(paths: tuple[str, ...], overrides: tuple[str, ...]) -> None:
    """Validate one or more configs (plugins' options included) without running anything."""
    from stillhouse.kernel.config import load_config

    host = get_host()
    failed: list[StillhouseError] = []
    for path in paths:
        try:
            loaded = load_config(path, host, list(overrides))
        except StillhouseError as exc:
            failed.append(exc)
            click.echo(exc.render(), err=True)
            continue
        p = loaded.pipeline
        click.echo(f"ok  {path}: task={p.task} teacher={p.teacher.model} student={p.student.model} loss={p.train.loss}")
    if failed:
        sys.exit(max(e.exit_code for e in failed))


@config.command("schema")
def config_schema_cmd() -> None:
    """Print the JSON Schema of pipeline configs and of every installed plugin's options."""
    from stillhouse.kernel.config import config_schema

    click.echo(json.dumps(config_schema(get_host()), indent=2))


# -- still plugins ------------------------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List installed plugins: package, version, what they provide, the hooks they implement."""
    host = get_host()
    rows = host.describe()
    failures = [vars(f) for f in host.failures]
    if as_json:
        click.echo(json.dumps({"plugins": rows, "failures": failures}, indent=2))
        return
    if rows:
        click.echo(click.style(f"{'PLUGIN':<14} {'FROM':<24} PROVIDES", bold=True))
    for row in rows:
        origin = "built-in" if row["builtin"] else f"{row['package']} {row['version']}"
        provides = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in row["provides"].items()) or "-"
        click.echo(f"{visible(row['name']):<14} {visible(origin):<24} {visible(provides)}")
        click.echo(f"{'':<14} hooks: {', '.join(row['hooks']) or '-'}")
    for failure in failures:
        click.echo(f"BROKEN {visible(failure['name'])} ({failure['package']}): {visible(failure['error'])}", err=True)


# -- still completion ---------------------------------------------------------------------------


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    \b
    bash:  eval "$(still completion bash)"      (in ~/.bashrc)
    zsh:   eval "$(still completion zsh)"       (in ~/.zshrc)
    fish:  still completion fish > ~/.config/fish/completions/still.fish
    """
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None  # click ships bash, zsh and fish
    root = ctx.find_root().command
    click.echo(completer(root, {}, "still", "_STILL_COMPLETE").source())


# -- entry point --------------------------------------------------------------------------------


def build_cli(host: PluginHost | None = None) -> click.Group:
    """The CLI with every plugin's commands added (each plugin isolated: one failing is reported)."""
    host = host or get_host()
    host.add_commands(cli)
    return cli


def main(argv: list[str] | None = None) -> None:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        group = build_cli()
        group.main(args=argv, prog_name="still", standalone_mode=True)
    except StillhouseError as exc:  # raised while building the CLI
        click.echo(exc.render(), err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        if debug:
            _print_traceback()
            sys.exit(1)
        message = redact_text(f"{type(exc).__name__}: {exc}")
        click.echo(f"Error: internal error: {message}\n  (run with --debug for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
