"""The model card: ``README.md`` next to the distilled student's weights, with the same numbers as
the run report and the training config, in the Hugging Face model-card layout."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from stillhouse.kernel.interfaces import Reporter, ReportInput
from stillhouse.plugins.reports.content import build_view, training_facts
from stillhouse.plugins.reports.markdown import comparison_markdown, config_markdown, measurements_markdown, table

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


# How the hub and readers should name each built-in loss's kind of distillation.
_METHODS = {"sft": "sequence-level (SFT on teacher answers)", "hidden_mse": "hidden-state matching"}


def _hub_id(value: str) -> bool:
    """Only a hub id names a model or dataset on the hub; a local path would mislead its model tree."""
    return bool(_HUB_ID.match(value)) and not Path(value).exists()


def _base_license(base_model: str) -> str | None:
    """The license a local base model's own card declares (hub ids: not looked up, no network)."""
    card = Path(base_model) / "README.md" if base_model else None
    if card is None or not card.is_file():
        return None
    match = re.search(r"^license:\s*(\S+)\s*$", card.read_text(encoding="utf-8").split("\n---", 1)[0], flags=re.M)
    return match.group(1) if match else None


def _front_matter(config: dict[str, Any], task: str) -> str:
    """Hugging Face card metadata: base_model, datasets, license, tags, pipeline_tag, and how the
    model was distilled (method and teacher), which the hub keeps as plain metadata."""
    student = config.get("student") or {}
    teacher = config.get("teacher") or {}
    base_model = str(student.get("model", ""))
    loss = str((config.get("train") or {}).get("loss") or "sft")
    lines = ["---", "library_name: transformers", "pipeline_tag: text-generation", "tags:", "- stillhouse", "- distillation"]
    if task:
        lines.append(f"- {task}")
    if _hub_id(base_model):
        lines.append(f"base_model: {base_model}")
    license_ = _base_license(base_model)
    if license_:
        lines.append(f"license: {license_}")
    datasets = [str(v) for k, v in (config.get("data") or {}).items() if k in ("train", "validation") and isinstance(v, str)]
    datasets = [d for d in datasets if _hub_id(d)]
    if datasets:
        lines += ["datasets:", *(f"- {d}" for d in datasets)]
    lines += [
        "distillation:",
        f"  method: {json.dumps(_METHODS.get(loss, f'logit-level ({loss})'))}",
        f"  loss: {json.dumps(loss)}",
        f"  teacher: {json.dumps(str(teacher.get('model', '?')))}",
    ]
    return "\n".join([*lines, "---"])


def render_model_card(report: ReportInput, model_path: str = "path/to/this/folder") -> str:
    view = build_view(report)
    student = view.config.get("student") or {}
    teacher = view.config.get("teacher") or {}
    base = str(student.get("model", ""))
    train = view.config.get("train") or {}
    parts = [
        _front_matter(view.config, view.task),
        f"# {Path(base).name or 'Student'} distilled for {view.task or 'a task'}",
        f"This model was distilled by Stillhouse (run `{view.run_id}`) from the teacher "
        f"`{teacher.get('model', '?')}` into the student `{base or '?'}`. {view.headline}.",
        "## Evaluation",
        "Measured on held-out examples only, never on training samples.",
        comparison_markdown(view.comparison),
        "### All measurements",
        measurements_markdown(view),
        "## Training",
        training_facts(view.curve),
    ]
    if train:
        parts.append(table(["hyperparameter", "value"], [(k, json.dumps(v, default=str)) for k, v in train.items()]))
    parts += [
        "### Full configuration",
        config_markdown(view),
        "## Usage",
        "```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        f'tokenizer = AutoTokenizer.from_pretrained("{model_path}")\n'
        f'model = AutoModelForCausalLM.from_pretrained("{model_path}")\n'
        'messages = [{"role": "user", "content": "..."}]\n'
        'inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)\n'
        "print(tokenizer.decode(model.generate(**inputs, max_new_tokens=128)[0][inputs['input_ids'].shape[1]:]))\n```",
        "Prompts should be formatted as during training: the task's student prompt (see the run's samples).",
    ]
    return "\n\n".join(parts) + "\n"


def write_model_card(student_dir: Path, report_input: ReportInput) -> Path:
    """Write ``student_dir/README.md`` and return its path."""
    path = Path(student_dir) / "README.md"
    path.write_text(render_model_card(report_input, str(Path(student_dir))), encoding="utf-8")
    return path


class ModelCardReporter(Reporter):
    """Writes the model card (README.md) into the run's distilled student folder, when there is one."""

    name = "model_card"
    description = "README.md model card next to the distilled student's weights."

    def write(self, report: ReportInput) -> list[Path]:
        student_dir = report.run_dir / "student"
        if not (student_dir / "config.json").exists() and not (student_dir / "adapter_config.json").exists():
            return []
        return [write_model_card(student_dir, report)]
