"""Greedy text generation with onnxruntime on a ``still export --format onnx`` graph, and that
graph as a :class:`ChatModel` (so ``evaluate.export = ["onnx:int8"]`` measures it like the student).

Two graphs are understood, told apart by their inputs:

- with a KV cache (``past_key_values.{i}.key`` / ``.value`` in, ``present.{i}.key`` / ``.value``
  out, optimum's names): the prompt is run once with an empty cache, then one token a step with
  the cache the previous step returned;
- without one (``input_ids``, ``attention_mask`` -> ``logits``): every step recomputes the whole
  sequence.

One prompt at a time (batch 1, no padding): simple, and what a single user of an exported model
sees. numpy and onnxruntime are imported on call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stillhouse.kernel.errors import ModelError
from stillhouse.kernel.interfaces import Answer, ChatModel, Message

PAST = "past_key_values."
PRESENT = "present."


def has_kv_cache(session: Any) -> bool:
    return any(i.name.startswith(PAST) for i in session.get_inputs())


def empty_cache(session: Any, batch: int = 1) -> dict[str, Any]:
    """Zero-length past keys and values for every cache input: (batch, kv_heads, 0, head_dim)."""
    import numpy as np

    cache = {}
    for spec in session.get_inputs():
        if spec.name.startswith(PAST):
            _, heads, _, head_dim = spec.shape
            cache[spec.name] = np.zeros((batch, int(heads), 0, int(head_dim)), dtype=np.float32)
    return cache


def greedy_generate(
    session: Any,
    prompt_ids: Sequence[int],
    *,
    max_new_tokens: int,
    eos_ids: Sequence[int] = (),
    on_token: Callable[[int], None] | None = None,
) -> list[int]:
    """The greedy continuation of ``prompt_ids`` (stops after an EOS token, which is kept)."""
    import numpy as np

    cached = has_kv_cache(session)
    outputs = [o.name for o in session.get_outputs()]
    past = empty_cache(session) if cached else {}
    sequence = list(prompt_ids)
    step = list(prompt_ids)
    new: list[int] = []
    for _ in range(max_new_tokens):
        fed = step if cached else sequence
        feed = {
            "input_ids": np.asarray([fed], dtype=np.int64),
            "attention_mask": np.ones((1, len(sequence)), dtype=np.int64),
            **past,
        }
        result = session.run(outputs, feed)
        token = int(result[0][0, -1].argmax())
        if cached:
            past = {PAST + name[len(PRESENT) :]: value for name, value in zip(outputs[1:], result[1:], strict=True)}
        new.append(token)
        if on_token is not None:
            on_token(token)
        if token in eos_ids:
            break
        sequence.append(token)
        step = [token]
    return new


class OnnxChatModel(ChatModel):
    """An exported ONNX graph (``model.onnx`` beside its tokenizer) answering chat prompts greedily."""

    def __init__(self, session: Any, tokenizer: Any, folder: Path) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.folder = folder

    @classmethod
    def load(cls, folder: Path) -> OnnxChatModel:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        graph = Path(folder) / "model.onnx"
        if not graph.is_file():
            raise ModelError(f"no model.onnx in {folder}", hint="export it with still export --format onnx")
        session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
        return cls(session, AutoTokenizer.from_pretrained(folder), Path(folder))

    @property
    def runtime(self) -> str:
        return "onnxruntime (CPU, " + ("KV cache" if has_kv_cache(self.session) else "no KV cache") + ")"

    def eos_ids(self) -> list[int]:
        ids = [self.tokenizer.eos_token_id]
        try:
            from transformers import GenerationConfig

            configured = GenerationConfig.from_pretrained(self.folder).eos_token_id
            ids += configured if isinstance(configured, list) else [configured]
        except OSError:
            pass
        return [i for i in ids if i is not None]

    def answer(self, prompts: Sequence[list[Message]], *, max_new_tokens: int, batch_size: int) -> list[Answer]:
        eos = self.eos_ids()
        answers = []
        for prompt in prompts:
            start = time.perf_counter()
            ids = self.tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True)
            ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
            new = greedy_generate(self.session, ids, max_new_tokens=max_new_tokens, eos_ids=eos)
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            answers.append(Answer(text, (time.perf_counter() - start) * 1000, len(ids), len(new)))
        return answers

    def footprint(self) -> dict[str, Any]:
        disk = sum(p.stat().st_size for p in self.folder.iterdir() if p.name.startswith("model.onnx"))
        return {"bytes_on_disk": disk}

    def close(self) -> None:
        self.session = None
