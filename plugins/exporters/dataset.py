"""``still export RUN_ID DIR --format dataset``: the teacher's filtered samples as a Hugging Face
dataset (``datasets.load_from_disk(DIR)``), so a user can go on training in TRL or axolotl.

Unlike the model formats, this exporter reads the run folder itself (``samples.jsonl`` and the
``teacher_call`` events), not a staged student: a run needs only its generate and filter stages.

Splits: ``train`` and ``validation`` hold the accepted samples, one row per student target;
``rejected`` holds the rejected ones with the teacher's answer and the reason. Columns, in the
layouts TRL reads:

- ``messages``: the whole conversation (system, user, assistant): SFTTrainer's conversational
  "language modeling" layout and GKDTrainer's layout;
- ``prompt`` + ``completion``: the same conversation split before the assistant turn:
  SFTTrainer's conversational prompt-completion layout (loss on the completion only);
- teacher metadata: ``sample_id``, ``source_split``, ``teacher_model``, ``prompt_tokens``,
  ``completion_tokens``, ``cost_usd``, ``finish_reason``, ``confidence``, ``reason``, ``weight``,
  and ``reference`` / ``parsed_answer`` as JSON text (their types vary by task).

SFTTrainer picks prompt-completion when both layouts are present; drop ``prompt`` and
``completion`` (``remove_columns``) to train on the whole conversation instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from stillhouse.kernel.errors import UserError
from stillhouse.kernel.interfaces import Exporter, Message
from stillhouse.kernel.run_folder import RunFolder, SampleRecord


class DatasetExporter(Exporter):
    name = "dataset"
    description = "The teacher's accepted and rejected samples as a Hugging Face dataset (TRL SFT/GKD layouts)."
    reads_run_folder: ClassVar[bool] = True  # `still export` passes the run folder, not a staged student

    def export(self, source: Path, dest: Path) -> list[Path]:
        import datasets

        folder = RunFolder(source)
        if not folder.samples_path.is_file():
            raise UserError(
                f"run {source.name} has no filtered samples ({RunFolder.SAMPLES})",
                hint=f"run its generate and filter stages: still run --resume {source.name} --stage filter",
            )
        config = folder.read_config()
        teacher_model = str(config.get("teacher", {}).get("model", ""))
        calls = _teacher_calls(folder)
        splits: dict[str, list[dict[str, Any]]] = {}
        for sample in folder.samples():
            meta = _metadata(sample, calls.get(str(sample["sample_id"]), {}), teacher_model)
            if sample.get("accepted"):
                for target in sample.get("targets") or []:
                    row = _row(
                        target["messages"], target["target"], {**meta, "weight": float(target.get("weight", 1.0))}
                    )
                    splits.setdefault(str(sample["split"]), []).append(row)
            elif (output := sample.get("teacher_output")) is not None:
                splits.setdefault("rejected", []).append(_row(sample["prompt"], output, {**meta, "weight": 0.0}))
        if not any(name != "rejected" for name in splits):
            raise UserError(
                f"run {source.name} has no accepted samples to export", hint="see its report for the filter's reasons"
            )
        datasets.DatasetDict({name: datasets.Dataset.from_list(rows) for name, rows in splits.items()}).save_to_disk(
            str(dest)
        )
        return sorted(p for p in dest.rglob("*") if p.is_file())


def _row(prompt: list[Message], answer: str, meta: dict[str, Any]) -> dict[str, Any]:
    completion = [{"role": "assistant", "content": answer}]
    return {"messages": [*prompt, *completion], "prompt": prompt, "completion": completion, **meta}


def _metadata(sample: SampleRecord, call: dict[str, Any], teacher_model: str) -> dict[str, Any]:
    return {
        "sample_id": str(sample["sample_id"]),
        "source_split": str(sample["split"]),
        "teacher_model": str(call.get("model") or teacher_model),
        "prompt_tokens": int(call.get("prompt_tokens") or 0),
        "completion_tokens": int(call.get("completion_tokens") or 0),
        "cost_usd": call.get("cost_usd"),
        "finish_reason": sample.get("finish_reason"),
        "confidence": None if (confidence := sample.get("confidence")) is None else float(confidence),
        "reason": str(sample.get("reason") or ""),
        "reference": json.dumps(sample.get("reference"), ensure_ascii=False),
        "parsed_answer": json.dumps(sample.get("parsed_answer"), ensure_ascii=False),
    }


def _teacher_calls(folder: RunFolder) -> dict[str, dict[str, Any]]:
    """The last successful teacher call per sample (a resume may have retried a failed one)."""
    calls: dict[str, dict[str, Any]] = {}
    for event in folder.events():
        if event.get("type") == "teacher_call" and not event.get("error"):
            calls[str(event.get("sample_id"))] = dict(event)
    return calls
