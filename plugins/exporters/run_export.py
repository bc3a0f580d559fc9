"""Exporting a run's student in a format: stage the Hugging Face folder (``export_student``: copy
or LoRA merge, tokenizer, model card), let the format's exporter write from it, and move the
result into place only when everything succeeded, so a failure leaves nothing partial behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from stillhouse.kernel.errors import UserError
from stillhouse.kernel.interfaces import Exporter


def exporter_for(host: Any, fmt: str, options: dict[str, Any]) -> Exporter:
    """The ``fmt`` exporter configured with the CLI's options (those given, i.e. not None)."""
    cls = host.get("exporter", fmt)
    given = {k: v for k, v in options.items() if v is not None}
    try:
        config: BaseModel = cls.Config.model_validate(given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            option = "--" + str(error["loc"][0]).replace("_", "-") if error["loc"] else "options"
            if error["type"] == "extra_forbidden":
                problems.append(f"{option} does not apply to --format {fmt}")
            else:
                problems.append(f"{option} {error['input']!r}: {error['msg']}")
        raise UserError(f"cannot export as {fmt}: " + "; ".join(problems)) from None
    return cls(config)


def check_destination(dest: Path, force: bool) -> None:
    if dest.exists() and not dest.is_dir():
        raise UserError(f"export destination {dest} is a file", hint="give a folder")
    if dest.exists() and any(dest.iterdir()) and not force:
        raise UserError(
            f"export folder {dest} exists and is not empty", hint="give a new folder, or --force to replace it"
        )


def export_run(
    run_dir: Path, dest: Path, exporter: Exporter, *, force: bool = False, merge_lora: bool | None = None
) -> list[Path]:
    """Export ``run_dir``'s student into ``dest`` with ``exporter``; return the files in ``dest``."""
    from stillhouse.plugins.reports.export import export_student

    dest = Path(dest).absolute()
    check_destination(dest, force)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Beside dest, so the final rename stays on one filesystem (and so atomic).
    work = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.partial-"))
    try:
        # a data exporter (reads_run_folder) reads the run's samples, and needs no trained student
        reads_run = getattr(exporter, "reads_run_folder", False)
        staged = Path(run_dir) if reads_run else export_student(Path(run_dir), work / "hf", merge_lora=merge_lora)
        out = work / "out"
        out.mkdir()
        exporter.export(staged, out)
        if dest.exists():
            shutil.rmtree(dest)  # empty, or --force
        os.replace(out, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return sorted(p for p in dest.rglob("*") if p.is_file())
