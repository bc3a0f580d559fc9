"""Tiny real transformers models, built from a config and a freshly trained BPE tokenizer.

Nothing is downloaded: tests and plugin authors get a genuine ``LlamaForCausalLM`` (2 layers,
hidden size 64 by default) with a byte-level BPE tokenizer and a chat template, saved in Hugging
Face format so every code path that loads a hub model loads it too.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

SPECIAL_TOKENS = ["<pad>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]

_CORPUS = [
    "Premise: A man is playing a guitar on stage. Hypothesis: A person plays music. Answer: entailment",
    "Premise: Two dogs run in a field. Hypothesis: The animals are sleeping. Answer: contradiction",
    "Premise: A woman reads a book. Hypothesis: She is reading a novel for school. Answer: neutral",
    "Question: Natalia sold 48 clips in April and half as many in May. How many in total? 48 / 2 = 24. 48 + 24 = 72. #### 72",
    "Context: The Broncos won Super Bowl 50. Question: Who won Super Bowl 50? Answer: the Broncos",
    "#Person1#: Hello, how are you today? #Person2#: I am fine, thank you. Summary: Two people greet each other.",
    "Do you like movies? Yes, I watched a great film about space last week. What did you think of it?",
    "Reason step by step, then give the final answer on the last line.",
    "The quick brown fox jumps over the lazy dog. 0 1 2 3 4 5 6 7 8 9 $ % , . ? ! : ; ' \" ( ) - + = * /",
]


def build_tiny_tokenizer(path: str | Path, *, vocab_size: int = 512, corpus: list[str] | None = None) -> Path:
    """Train a byte-level BPE tokenizer (covers any text) and save it with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    path = Path(path)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator((corpus or []) + _CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="<|end|>",
        bos_token=None,
        unk_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)
    return path


def build_tiny_model(
    path: str | Path,
    *,
    layers: int = 2,
    hidden: int = 64,
    heads: int = 4,
    vocab_size: int = 512,
    seed: int = 0,
    tokenizer_dir: str | Path | None = None,
    corpus: list[str] | None = None,
) -> Path:
    """Build a tiny LlamaForCausalLM with random weights and save it (with tokenizer) to ``path``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if tokenizer_dir is None:
        build_tiny_tokenizer(path, vocab_size=vocab_size, corpus=corpus)
        tokenizer_dir = path
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if Path(tokenizer_dir) != path:
        tokenizer.save_pretrained(path)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(path)
    return path
