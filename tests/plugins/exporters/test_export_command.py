"""`still export --format`: formats as plugins, options per format, and failures that leave
nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from stillhouse.kernel import hookimpl
from stillhouse.kernel.interfaces import Exporter
from tests.plugins.reports.conftest import CONFIG, RUN_ID, write_run


class TextExporter(Exporter):
    """A third-party format: one text file listing the source folder."""

    name = "listing"

    def export(self, source: Path, dest: Path) -> list[Path]:
        out = dest / "listing.txt"
        out.write_text("\n".join(sorted(p.name for p in source.iterdir())))
        return [out]


class FailingExporter(Exporter):
    name = "half"

    def export(self, source: Path, dest: Path) -> list[Path]:
        (dest / "part-1.bin").write_bytes(b"half of it")
        raise RuntimeError("disk full")


class ExporterPlugin:
    @hookimpl
    def register_exporters(self, register):
        register(TextExporter)
        register(FailingExporter)


def test_register_exporters_adds_a_format(still, student_run, exports):
    dest = exports / "listed"
    result = still("export", RUN_ID, str(dest), "--format", "listing", plugins=(ExporterPlugin(),))
    assert result.exit_code == 0, result.output
    listing = (dest / "listing.txt").read_text().split("\n")
    assert "model.safetensors" in listing and "README.md" in listing and "tokenizer.json" in listing


def test_built_in_formats_are_registered(make_host):
    import stillhouse.plugins.exporters as exporters_plugin

    assert make_host(exporters_plugin, entry_points=False).names("exporter") == ["dataset", "gguf", "hf", "onnx"]


def test_an_unknown_format_lists_the_known_ones(still, student_run, exports):
    result = still("export", RUN_ID, str(exports / "out"), "--format", "ggfu")
    assert result.exit_code == 2
    assert "gguf" in result.output and "hf" in result.output and not (exports / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "gguf", "--quantize", "q5_k"], "--quantize 'q5_k'"),
        (["--format", "hf", "--quantize", "q8_0"], "--quantize does not apply to --format hf"),
        (["--format", "gguf", "--dtype", "bf16"], "--dtype does not apply to --format gguf"),
        (["--format", "hf", "--dtype", "int3"], "--dtype 'int3'"),
    ],
)
def test_an_option_the_format_lacks_is_a_user_error(still, student_run, exports, args, message):
    result = still("export", RUN_ID, str(exports / "out"), *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert list(exports.iterdir()) == []


def test_a_failing_exporter_leaves_nothing_behind(still, student_run, exports):
    result = still("export", RUN_ID, str(exports / "out"), "--format", "half", plugins=(ExporterPlugin(),))
    assert result.exit_code != 0
    assert list(exports.iterdir()) == []


def test_force_replaces_a_non_empty_folder(still, student_run, exports):
    dest = exports / "taken"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    refused = still("export", RUN_ID, str(dest), "--format", "gguf")
    assert refused.exit_code == 2 and "--force" in refused.output and (dest / "old.txt").exists()
    result = still("export", RUN_ID, str(dest), "--format", "gguf", "--force")
    assert result.exit_code == 0, result.output
    assert not (dest / "old.txt").exists() and (dest / "model-f16.gguf").exists()
    assert [p.name for p in exports.iterdir()] == ["taken"]


def test_a_run_without_a_student_leaves_nothing_behind(still, stillhouse_home, exports):
    write_run(stillhouse_home / "runs" / RUN_ID, None, CONFIG)
    result = still("export", RUN_ID, str(exports / "out"), "--format", "gguf")
    assert result.exit_code == 2 and "has no distilled student" in result.output
    assert list(exports.iterdir()) == []


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_hf_export_in_another_dtype(still, student_run, tiny_model_dir, exports, dtype):
    import torch
    from transformers import AutoModelForCausalLM

    dest = exports / dtype
    result = still("export", RUN_ID, str(dest), "--dtype", dtype)
    assert result.exit_code == 0, result.output
    assert (
        (dest / "model.safetensors").exists() and (dest / "README.md").exists() and (dest / "tokenizer.json").exists()
    )
    model = AutoModelForCausalLM.from_pretrained(dest, dtype="auto")
    assert model.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    source = (tiny_model_dir / "model.safetensors").stat().st_size
    assert (dest / "model.safetensors").stat().st_size < 0.6 * source  # half the bytes per weight


def test_hf_export_keeps_the_trained_dtype_by_default(still, student_run, tiny_model_dir, exports):
    dest = exports / "plain"
    result = still("export", RUN_ID, str(dest))
    assert result.exit_code == 0, result.output
    assert (dest / "model.safetensors").read_bytes() == (tiny_model_dir / "model.safetensors").read_bytes()
