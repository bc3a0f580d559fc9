"""Terminal progress for ``still run``: follows the pipeline's events and prints stage lines,
progress bars and summaries with rich."""

from __future__ import annotations

from typing import Any

from stillhouse.kernel.runs import Run


class ProgressPrinter:
    """An ``on_event`` callback for Pipeline that renders events as they happen."""

    def __init__(self, *, quiet: bool = False) -> None:
        from rich.console import Console

        self.console = Console(stderr=False, highlight=False)
        self.quiet = quiet
        self._progress: Any = None
        self._task_id: Any = None

    def started(self, run: Run) -> None:
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
        elif kind == "progress":
            self._update_bar(event)
        elif kind == "stage_finished":
            self._close_bar()
            self.console.print(f"  [green]done[/green] {event['stage']} in {event.get('seconds', 0):.1f}s  {_summary_line(event.get('summary') or {})}")
        elif kind == "stage_failed":
            self._close_bar()
            self.console.print(f"  [red]stopped[/red] {event['stage']}: {event.get('error')}")
        elif kind == "log" and event.get("level") == "warning":
            self.console.print(f"  [yellow]warning:[/yellow] {event.get('message')}")
        elif kind == "log" and event.get("level") == "info":
            self.console.print(f"  [dim]{event.get('message')}[/dim]")
        elif kind == "metric" and event.get("key") == "eval/loss":
            self.console.print(f"  validation loss {event['value']:.4f} at step {event.get('step')}")

    def _update_bar(self, event: dict[str, Any]) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        if self._progress is None:
            self._progress = Progress(
                TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                console=self.console, transient=True,
            )
            self._progress.start()
            self._task_id = self._progress.add_task(event.get("stage", ""), total=event.get("total") or None)
        self._progress.update(self._task_id, completed=event.get("done", 0), total=event.get("total") or None)

    def _close_bar(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _print_dry_run(self, event: dict[str, Any]) -> None:
        cost = event.get("cost_usd")
        self.console.print(
            f"dry run: {event['requests']} prompts, {event['already_answered']} already answered, "
            f"{event['calls']} calls ({event['cached']} cached), ~{event['prompt_tokens']} prompt + "
            f"<= {event['completion_tokens']} completion tokens, cost "
            + (f"<= ${cost:.4f}" if cost is not None else "unknown (no price for this model)")
        )
        if event.get("note"):
            self.console.print(f"  [dim]{event['note']}[/dim]")
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
        if isinstance(value, (dict, list)) or key == "incomplete":
            continue
        parts.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts[:8])
