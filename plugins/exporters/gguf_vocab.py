"""The tokenizer of a transformers folder as GGUF metadata: a byte-level BPE vocabulary (the kind
SmolLM2, Llama 3 and Qwen2 use) with its merges, token types, special-token ids and chat template.

Read from ``tokenizer.json`` and ``tokenizer_config.json`` directly rather than through a loaded
tokenizer, so what lands in the file is exactly what the student was trained with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stillhouse.kernel.errors import UserError

# gguf.TokenType values (llama.cpp's): kept as ints so this module needs no gguf import.
NORMAL, CONTROL, USER_DEFINED, UNUSED = 1, 3, 4, 5


@dataclass
class GgufVocab:
    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    pre: str
    special_ids: dict[str, int] = field(default_factory=dict)  # bos / eos / unk / pad -> id
    add_bos: bool = False
    chat_template: str | None = None


def read_vocab(folder: Path, vocab_size: int) -> GgufVocab:
    """The byte-level BPE vocabulary of ``folder`` padded to the model's ``vocab_size`` rows."""
    path = folder / "tokenizer.json"
    if not path.exists():
        raise UserError(
            f"{folder} has no tokenizer.json; GGUF export needs a fast (tokenizers) BPE tokenizer",
            hint="export with --format hf",
        )
    spec = json.loads(path.read_text(encoding="utf-8"))
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or not _is_byte_level(spec.get("pre_tokenizer")):
        raise UserError(
            f"the student's tokenizer is {model.get('type', '?')} without byte-level pre-tokenization; "
            "GGUF export supports byte-level BPE tokenizers (SmolLM2, Llama 3, Qwen2)",
            hint="export with --format hf",
        )
    by_id: dict[int, tuple[str, int]] = {i: (t, NORMAL) for t, i in model["vocab"].items()}
    for added in spec.get("added_tokens") or []:
        by_id[added["id"]] = (added["content"], CONTROL if added.get("special") else USER_DEFINED)
    size = max(vocab_size, max(by_id) + 1)
    # Rows the embedding has beyond the tokenizer (padding for speed) get placeholder names, as
    # llama.cpp's converter does, so the token list and the embedding agree in length.
    tokens = [by_id.get(i, (f"[PAD{i}]", UNUSED))[0] for i in range(size)]
    types = [by_id.get(i, ("", UNUSED))[1] for i in range(size)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    config = _json(folder / "tokenizer_config.json")
    ids = {token: i for i, token in enumerate(tokens)}
    special = {}
    for key in ("bos", "eos", "unk", "pad"):
        value = config.get(f"{key}_token")
        value = value.get("content") if isinstance(value, dict) else value
        if value is not None and value in ids:
            special[key] = ids[value]
    template = config.get("chat_template")
    if template is None and (folder / "chat_template.jinja").exists():
        template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    return GgufVocab(
        tokens=tokens,
        token_types=types,
        merges=merges,
        pre=pre_tokenizer_name(spec.get("pre_tokenizer")),
        special_ids=special,
        add_bos=bool(config.get("add_bos_token", False)),
        chat_template=template if isinstance(template, str) else None,
    )


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _parts(pre: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not pre:
        return []
    return list(pre.get("pretokenizers") or []) if pre.get("type") == "Sequence" else [pre]


def _is_byte_level(pre: dict[str, Any] | None) -> bool:
    return any(p.get("type") == "ByteLevel" for p in _parts(pre))


def pre_tokenizer_name(pre: dict[str, Any] | None) -> str:
    """llama.cpp's name (``tokenizer.ggml.pre``) for how the text is split before BPE.

    Only the splits recognisable from tokenizer.json alone: GPT-2's regex (ByteLevel's own),
    SmolLM's (single digits, then GPT-2's), and Qwen2's / Llama 3's regexes. Anything else is
    ``default``, which llama.cpp treats as GPT-2's split.
    """
    parts = _parts(pre)
    kinds = [p.get("type") for p in parts]
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt2"
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits"):
        return "smollm"
    if kinds and kinds[0] == "Split":
        regex = str((parts[0].get("pattern") or {}).get("Regex", ""))
        if r"\p{N}{1,3}" in regex:
            return "llama-bpe"
        if r"\p{N}|" in regex or r"\p{N}| " in regex:
            return "qwen2"
    return "default"
