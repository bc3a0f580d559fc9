"""``still export``: a run's distilled student, loadable with plain transformers."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import stillhouse.plugins.exporters as exporters_plugin
import stillhouse.plugins.reports as reports_plugin
from tests.plugins.reports.conftest import CONFIG, RUN_ID, write_run


@pytest.fixture
def still(make_host):
    """Invoke the real `still` CLI with only this plugin's commands added."""
    from stillhouse.kernel.cli import build_cli

    group = build_cli(make_host(reports_plugin, exporters_plugin, entry_points=False))
    return lambda *args: CliRunner().invoke(group, list(args))


def logits(model, tokenizer, text="Premise: A man plays. Hypothesis: A person plays music."):
    import torch

    with torch.inference_mode():
        return model(**tokenizer(text, return_tensors="pt")).logits


def test_export_copies_the_student_with_tokenizer_and_card(still, stillhouse_home, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_dir = write_run(
        stillhouse_home / "runs" / RUN_ID, tiny_model_dir, {**CONFIG, "student": {"model": str(tiny_model_dir)}}
    )
    (run_dir / "student" / "optimizer.pt").write_bytes(b"training state")
    dest = tmp_path / "exported"
    result = still("export", "nli-demo", str(dest))  # a unique part of the run id is enough
    assert result.exit_code == 0, result.output
    assert str(dest) in result.output
    assert not (dest / "optimizer.pt").exists()
    model, tokenizer = AutoModelForCausalLM.from_pretrained(dest), AutoTokenizer.from_pretrained(dest)
    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert logits(model, tokenizer).equal(logits(original, tokenizer))
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    card = (dest / "README.md").read_text()
    assert "90.0% retained" in card and RUN_ID in card


def _adapter_student(tiny_model_dir, out):
    """A LoRA adapter with non-zero B matrices (so merging changes the weights), saved as a trainer would."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(0)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return model.eval()


@pytest.mark.parametrize("flag", ["--merge-lora", None])
def test_export_merges_a_lora_adapter(still, stillhouse_home, tiny_model_dir, tmp_path, flag):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir = tmp_path / "adapter"
    reference = _adapter_student(tiny_model_dir, adapter_dir)
    config = {**CONFIG, "student": {"model": str(tiny_model_dir), "lora": {"r": 4, "merge": True}}}
    write_run(stillhouse_home / "runs" / RUN_ID, adapter_dir, config)
    dest = tmp_path / "merged"
    result = still("export", RUN_ID, str(dest), *([flag] if flag else []))
    assert result.exit_code == 0, result.output
    assert not (dest / "adapter_config.json").exists() and (dest / "README.md").exists()
    tokenizer = AutoTokenizer.from_pretrained(dest)
    merged = AutoModelForCausalLM.from_pretrained(dest)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert logits(merged, tokenizer).allclose(logits(reference, tokenizer), atol=1e-4)
    assert not logits(merged, tokenizer).allclose(logits(base, tokenizer), atol=1e-3)


def test_export_keeps_the_adapter_when_asked(still, stillhouse_home, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir = tmp_path / "adapter"
    reference = _adapter_student(tiny_model_dir, adapter_dir)
    write_run(stillhouse_home / "runs" / RUN_ID, adapter_dir, {**CONFIG, "student": {"model": str(tiny_model_dir)}})
    dest = tmp_path / "adapter-only"
    result = still("export", RUN_ID, str(dest), "--keep-adapter")
    assert result.exit_code == 0, result.output
    assert json.loads((dest / "adapter_config.json").read_text())["r"] == 4
    # transformers loads an adapter folder through peft, base model included.
    loaded = AutoModelForCausalLM.from_pretrained(dest)
    tokenizer = AutoTokenizer.from_pretrained(dest)
    assert logits(loaded, tokenizer).allclose(logits(reference, tokenizer), atol=1e-4)


def test_export_without_a_student_is_a_user_error(still, stillhouse_home, tmp_path):
    write_run(stillhouse_home / "runs" / RUN_ID, None, CONFIG)
    result = still("export", RUN_ID, str(tmp_path / "out"))
    assert result.exit_code == 2
    assert f"run {RUN_ID} has no distilled student" in result.output and "still run --resume" in result.output


def test_export_refuses_a_non_empty_folder(still, stillhouse_home, tiny_model_dir, tmp_path):
    write_run(stillhouse_home / "runs" / RUN_ID, tiny_model_dir, CONFIG)
    dest = tmp_path / "taken"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    result = still("export", RUN_ID, str(dest))
    assert result.exit_code == 2 and "not empty" in result.output
    assert (dest / "keep.txt").read_text() == "mine"


def test_export_of_an_unknown_run(still, stillhouse_home, tmp_path):
    result = still("export", "no-such-run", str(tmp_path / "out"))
    assert result.exit_code == 2 and "no run 'no-such-run'" in result.output
