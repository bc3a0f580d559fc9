"""Terminal progress for ``still run``: follows the pipeline's events and prints stage lines,
progress bars and summaries with rich."""

from __future__ import annotations

import os
import sys
from typing import Any

from stillhouse.kernel.runs import Run
from stillhouse.kernel.text import visible

# Third-party progress bars ("Loading weights", "Converting and de-quantizing GGUF tensors",
# "Writing model shards") would interleave with ours; the libraries read these when imported.
QUIET_LIBRARIES = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # huggingface_hub, and transformers' own tqdm follows it
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",  # datasets' map/load bars (hf: data sources)
    "TQDM_DISABLE": "1",  # every other tqdm bar (tqdm reads TQDM_* defaults from the environment)
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}


def quiet_third_party_progress() -> None:
    """Switch off other libraries' progress bars and chatter in this process (a variable the user
    set wins); libraries already imported are told directly."""
    for name, value in QUIET_LIBRARIES.items():
        os.environ.setdefault(name, value)
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
    if "transformers" in sys.modules:
        logging = sys.modules["transformers"].utils.logging
        logging.disable_progress_bar()
        logging.set_verbosity_error()


class ProgressPrinter:
    """An ``on_event`` callback for Pipeline that renders events as they happen."""

    def __init__(self, *, quiet: bool = False, stderr: bool = False) -> None:
        from rich.console import Console

        # stderr: stdout carries a machine-readable result (`still run --json`)
        self.console = Console(stderr=stderr, highlight=False)
        self.quiet = quiet
        self._progress: Any = None
        self._task_id: Any = None
        self._config: dict[str, Any] = {}

    def started(self, run: Run) -> None:
        self._config = dict(run.config or {})
        self.console.print(f"run [bold]{run.id}[/bold]  ({run.dir})")

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "dry_run":
            self._print_dry_run(event)
            return
        if self.quiet:
            return
        if kind == "stage_started":
            self._close_bar()
            self.console.print(f"[bold cyan]>[/bold cyan] {event['stage']}")
            loading = self._loading_line(event["stage"])
            if loading:
                self.console.print(f"  [dim]{loading}[/dim]")
        elif kind == "progress":
            self._update_bar(event)
        elif kind == "teacher_call" and self._progress is not None:
            # one answer = one step of the bar, between the pipeline's (rarer) progress events
            self._progress.advance(self._task_id, 1)
        elif kind == "stage_finished":
            self._close_bar()
            self.console.print(f"  [green]done[/green] {event['stage']} in {event.get('seconds', 0):.1f}s  {_summary_line(event.get('summary') or {})}")
        elif kind == "stage_failed":
            self._close_bar()
            # The error itself is printed once, by the command line, with its hint.
            what = "stopped" if event.get("error") == "interrupted" else "failed"
            self.console.print(f"  [red]{what}[/red] {event['stage']}" + (" (interrupted)" if what == "stopped" else ""))
        elif kind == "log" and event.get("level") == "warning":
            from rich.markup import escape

            self.console.print(f"  [yellow]warning:[/yellow] {escape(visible(str(event.get('message'))))}")
        elif kind == "log" and event.get("level") == "info":
            from rich.markup import escape

            self.console.print(f"  [dim]{escape(visible(str(event.get('message'))))}[/dim]")
        elif kind == "curation":
            from rich.markup import escape

            from stillhouse.kernel.curation import describe

            self.console.print(f"  [dim]curation:[/dim] {escape(visible(describe(event)))}")
        elif kind == "metric" and event.get("key") == "eval/loss":
            self.console.print(f"  validation loss {event['value']:.4f} at step {event.get('step')}")

    def _update_bar(self, event: dict[str, Any]) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        # The evaluate stage reports each role and phase (answers, an evaluator, timing) apart:
        # a new one gets its own bar, so its count, rate and ETA start afresh.
        label = " ".join(str(event[k]) for k in ("stage", "role", "phase") if event.get(k))
        if self._progress is not None and label != getattr(self, "_label", label):
            self._close_bar()
        self._label = label
        if self._progress is None:
            self._progress = Progress(
                TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), _rate_column(),
                TextColumn("ETA"), TimeRemainingColumn(),
                console=self.console, transient=True,
            )
            self._progress.start()
            self._task_id = self._progress.add_task(label, total=event.get("total") or None)
        self._progress.update(self._task_id, completed=event.get("done", 0), total=event.get("total") or None)

    def _loading_line(self, stage: str) -> str | None:
        """The one line shown while a stage loads a local model (their own bars are off)."""
        teacher = self._config.get("teacher") or {}
        student = self._config.get("student") or {}
        model = str(teacher.get("model") or "")
        if stage == "generate" and (model.startswith("hf/") or teacher.get("backend") not in (None, "litellm")):
            return f"loading teacher model {visible(model)} …"
        if stage == "train" and student.get("model"):
            return f"loading student model {visible(str(student['model']))} …"
        return None

    def _close_bar(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _print_dry_run(self, event: dict[str, Any]) -> None:
        from rich.markup import escape

        cost = event.get("cost_usd")
        self.console.print(
            f"dry run: {event['requests']} prompts, {event['already_answered']} already answered, "
            f"{event['calls']} calls ({event['cached']} cached), ~{event['prompt_tokens']} prompt + "
            f"<= {event['completion_tokens']} completion tokens, cost "
            + (f"<= ${cost:.4f}" if cost is not None else "unknown (no price for this model)")
        )
        if event.get("note"):
            self.console.print(f"  [dim]{event['note']}[/dim]")
        for line in event.get("curation") or []:
            self.console.print(f"  [dim]curation:[/dim] {escape(visible(line))}")
        for warning in event.get("warnings") or []:
            self.console.print(f"  [yellow]warning:[/yellow] {warning}")

    def finished(self, run: Run, status: str) -> None:
        self._close_bar()
        colour = {"completed": "green", "interrupted": "yellow"}.get(status, "red")
        self.console.print(f"[{colour}]{status}[/{colour}]  run {run.id}")
        if status == "interrupted":
            self.console.print(f"  resume with: still run --resume {run.id}")
        elif status == "completed" and not self.quiet:
            self.console.print(f"  folder: {run.dir}")
            self.console.print('  next: still tui   |   still sql "select * from run_summary"   |   still runs show ' + run.id)


def _summary_line(summary: dict[str, Any]) -> str:
    parts = []
    for key, value in summary.items():
        if isinstance(value, (dict, list)) or key == "incomplete" or value is None:
            continue  # None: not measured; "best_eval_loss=None" says nothing
        parts.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts[:8])


def _rate_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class _Rate(ProgressColumn):
        """Items per second (per minute when slow), from rich's running speed estimate."""

        def render(self, task: Any) -> Text:
            speed = task.speed
            if not speed:
                return Text("", style="progress.data.speed")
            shown = f"{speed:.3g}/s" if speed >= 0.5 else f"{speed * 60:.3g}/min"
            return Text(shown, style="progress.data.speed")

    return _Rate()
