"""``student.init = "teacher-layers"``: a student made of a subset of a source model's decoder layers
(DistilBERT-style initialisation), keeping its embeddings, final norm and LM head.

Works for any decoder whose layers live in one ``nn.ModuleList`` (``model.layers`` in Llama, Qwen,
Mistral, Gemma..., ``transformer.h`` in GPT-2): the new config has ``num_hidden_layers =
len(layers)`` (and per-layer lists such as ``layer_types`` subset alike), and layer ``j`` of the
student is a copy of source layer ``layers[j]``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from stillhouse.kernel.errors import ConfigError, Location, ModelError


def decoder_layer_list(model: Any) -> tuple[str, Any]:
    """(dotted name, ModuleList) of the model's decoder layers: the longest ModuleList of blocks."""
    from torch import nn

    best: tuple[str, Any] | None = None
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and name.split(".")[-1] in ("layers", "h", "blocks", "layer"):
            if best is None or len(module) > len(best[1]):
                best = (name, module)
    if best is None:
        raise ModelError(
            f"cannot find the decoder layers of {type(model).__name__}",
            hint='student.init = "teacher-layers" needs a model whose blocks are one ModuleList; use init = "pretrained"',
        )
    return best


def check_layers(layers: Sequence[int] | None, available: int, source: str) -> list[int]:
    where = Location(field="student.layers")
    if not layers:
        raise ConfigError(
            'student.init = "teacher-layers" needs student.layers, the source layers to keep',
            where=where,
            hint=f"e.g. layers = [0, 2, 4] ('{source}' has {available} layers, numbered from 0)",
        )
    bad = [i for i in layers if not 0 <= i < available]
    if bad:
        raise ConfigError(
            f"student.layers {bad} out of range: '{source}' has {available} layers (0..{available - 1})",
            where=where,
        )
    if len(set(layers)) != len(layers):
        raise ConfigError("student.layers lists a layer twice", where=where, hint="each source layer can be kept once")
    return list(layers)


def build_from_layers(source_model: Any, layers: Sequence[int], source_name: str = "source") -> Any:
    """A new model of the same architecture with only ``layers`` (copied weights)."""
    import torch
    from transformers import AutoModelForCausalLM

    prefix, module_list = decoder_layer_list(source_model)
    keep = check_layers(layers, len(module_list), source_name)
    config = copy.deepcopy(source_model.config)
    config.num_hidden_layers = len(keep)
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = [config.layer_types[i] for i in keep]
    dtype = next(source_model.parameters()).dtype
    student = AutoModelForCausalLM.from_config(config, dtype=dtype)
    new_index = {old: new for new, old in enumerate(keep)}
    pattern = re.compile(r"^" + re.escape(prefix) + r"\.(\d+)\.(.*)$")
    state = {}
    for key, value in source_model.state_dict().items():
        match = pattern.match(key)
        if match is None:
            state[key] = value
        elif int(match.group(1)) in new_index:
            state[f"{prefix}.{new_index[int(match.group(1))]}.{match.group(2)}"] = value
    with torch.no_grad():
        missing, unexpected = student.load_state_dict(state, strict=False)
    # Tied LM heads appear as missing keys in some architectures; anything else is a real mismatch.
    real_missing = [m for m in missing if not (m.endswith("lm_head.weight") and config.tie_word_embeddings)]
    if real_missing or unexpected:
        raise ModelError(
            f"copying layers {keep} from '{source_name}' left weights unmatched "
            f"(missing {real_missing[:3]}, unexpected {unexpected[:3]})",
            hint='use student.init = "pretrained" for this architecture',
        )
    student.generation_config = copy.deepcopy(source_model.generation_config)
    return student
