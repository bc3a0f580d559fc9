"""Built-in exporters (``hf``, ``gguf``, ``onnx``, ``dataset``) and the ``still export`` command.

A third-party exporter (CoreML, MLC, ExecuTorch ...) subclasses ``kernel.interfaces.Exporter`` and
registers through ``register_exporters``; ``still export --format <name>`` then finds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from stillhouse.kernel import hookimpl
from stillhouse.kernel.interfaces import Exporter, Register
from stillhouse.kernel.runs import Run


@hookimpl
def register_exporters(register: Register[Exporter[Any]]) -> None:
    from stillhouse.plugins.exporters.dataset import DatasetExporter
    from stillhouse.plugins.exporters.gguf_format import GgufExporter
    from stillhouse.plugins.exporters.hf import HfExporter
    from stillhouse.plugins.exporters.onnx_format import OnnxExporter

    register(HfExporter)
    register(GgufExporter)
    register(DatasetExporter)
    register(OnnxExporter)


@hookimpl
def stage_finished(run: Run, stage: str, summary: dict[str, Any]) -> None:
    """``evaluate.export``: export the distilled student, record each export's size and evaluate it."""
    specs = (run.config.get("evaluate") or {}).get("export") or []
    if stage == "evaluate" and specs:
        from stillhouse.kernel.plugins import get_host
        from stillhouse.plugins.exporters.after_evaluate import record_exports

        record_exports(get_host(), run, list(specs))


@click.command("export")
@click.argument("run_id")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", default="hf", show_default=True, help="hf, gguf, or an exporter plugin's name.")
@click.option("--quantize", help="gguf: f16 (default), q8_0, q4_0, q4_1; onnx: fp32 (default), int8.")
@click.option("--dtype", help="hf: bf16, fp16 or fp32 (default: the dtype the student was trained in).")
@click.option("--force", is_flag=True, help="Replace DEST if it exists and is not empty.")
@click.option(
    "--merge-lora/--keep-adapter",
    default=None,
    help="A LoRA student: merge the adapter into the base weights, or export the adapter alone "
    "(default: the run's student.lora.merge, which defaults to merge).",
)
@click.option("--push-to-hub", "push_to", metavar="OWNER/NAME", help="Then upload DEST to this Hugging Face model repo.")
@click.option(
    "--token-env", metavar="NAME", help="The variable holding the Hub token for --push-to-hub (default: HF_TOKEN)."
)
@click.option("--private", is_flag=True, help="--push-to-hub: create the repo private.")
def export_command(
    run_id: str,
    dest: Path,
    fmt: str,
    quantize: str | None,
    dtype: str | None,
    force: bool,
    merge_lora: bool | None,
    push_to: str | None,
    token_env: str | None,
    private: bool,
) -> None:
    """Export the distilled student of RUN_ID, with tokenizer and model card, to DEST."""
    from stillhouse.kernel.plugins import get_host
    from stillhouse.plugins.exporters.run_export import export_run, exporter_for

    exporter = exporter_for(get_host(), fmt, {"quantize": quantize, "dtype": dtype})
    token = None
    if push_to:  # checked before exporting: a missing token costs nothing
        from stillhouse.plugins.exporters.hub import check_repo_id, hub_token

        check_repo_id(push_to)
        token = hub_token(token_env)
    elif token_env or private:
        raise click.UsageError("--token-env and --private apply to --push-to-hub only")
    run = Run.open(run_id)
    files = export_run(run.dir, dest, exporter, force=force, merge_lora=merge_lora)
    what = "the teacher's samples" if getattr(exporter, "reads_run_folder", False) else "the distilled student"
    click.echo(f"Exported {what} of {run.id} as {fmt} to {dest}")
    if push_to and token:
        from stillhouse.plugins.exporters.hub import push_folder

        kind = "dataset" if fmt == "dataset" else "model"
        url = push_folder(dest, push_to, token, repo_type=kind, private=private, message=f"{what} of {run.id} ({fmt})")
        click.echo(f"Pushed {dest} to the Hub: {url}")
    gguf = [f for f in files if f.suffix == ".gguf"]
    if gguf:
        click.echo(f"Run it with llama.cpp (llama-cli -m {gguf[0]}), or evaluate it: still eval --model {gguf[0]} ...")
    elif fmt == "dataset":
        click.echo(f'Load it with datasets.load_from_disk("{dest}"); its train split has the messages TRL trainers read')
    elif fmt == "onnx":
        click.echo(f"Run it with onnxruntime: InferenceSession(\"{dest / 'model.onnx'}\") (see its README.md)")
    elif fmt == "hf":
        click.echo(f'Load it with AutoModelForCausalLM.from_pretrained("{dest}")')


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(export_command)
