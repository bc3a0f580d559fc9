"""The ``still eval`` command: evaluate one model alone on a task's data and record it as an
evaluation run (the work is in ``evaluate.py``; rich, torch and the model are imported on call)."""

from __future__ import annotations

from pathlib import Path

import click

from stillhouse.kernel import hookimpl


def _field_mapping(values: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for value in values:
        if "=" not in value:
            raise click.BadParameter(f"expected TASK_FIELD=COLUMN, got '{value}'", param_hint="--field")
        key, column = value.split("=", 1)
        mapping[key.strip()] = column.strip()
    return mapping


@click.command("eval")
@click.option("--model", "model", required=True, help='litellm model string, or "hf/<hub id | folder | file.gguf>".')
@click.option("--task", "task", required=True, help="Task type: nli, qa, math, summarization, conversation ...")
@click.option(
    "--data",
    "data",
    required=True,
    help="JSONL, CSV or Parquet file; a save_to_disk folder; or hf:owner/name[?split=test&subset=C&revision=R].",
)
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N rows.")
@click.option("--api-base", help="OpenAI-compatible endpoint for an API model.")
@click.option("--api-key-env", help="NAME of the environment variable holding the API key.")
@click.option("--field", "fields", multiple=True, metavar="TASK_FIELD=COLUMN", help="Map a task field to a column.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--usd-per-hour", type=click.FloatRange(min=0), help="Price local compute to report its cost.")
@click.option("--name", help="A name for the evaluation run.")
def eval_command(
    model: str,
    task: str,
    data: str,
    limit: int | None,
    api_base: str | None,
    api_key_env: str | None,
    fields: tuple[str, ...],
    batch_size: int,
    max_new_tokens: int,
    usd_per_hour: float | None,
    name: str | None,
) -> None:
    """Evaluate one model on a task's data and record it in the registry as an evaluation run."""
    from rich.console import Console

    from stillhouse.kernel.data_hf import HF_PREFIX, resolve_source
    from stillhouse.kernel.interfaces import EvaluateConfig
    from stillhouse.kernel.plugins import get_host
    from stillhouse.plugins.eval_command.evaluate import evaluate_model
    from stillhouse.plugins.reports.terminal import measurements_table

    evaluate = EvaluateConfig(
        limit=limit, batch_size=batch_size, max_new_tokens=max_new_tokens, usd_per_hour=usd_per_hour
    )
    run, metrics, primary = evaluate_model(
        get_host(),
        model=model,
        task_name=task,
        # hf: values as in a pipeline's [data]: a local folder named after hf: is made absolute
        data=resolve_source(data, Path.cwd()) if data.startswith(HF_PREFIX) else Path(data),
        limit=limit,
        api_base=api_base,
        api_key_env=api_key_env,
        fields=_field_mapping(fields),
        evaluate=evaluate,
        name=name,
    )
    console = Console()
    console.print(measurements_table(metrics, title=f"{model} on {task} (primary metric: {primary})"))
    console.print(f"Run {run.id}")
    console.print(f"Report: {run.path('report.md')}", soft_wrap=True)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(eval_command)
