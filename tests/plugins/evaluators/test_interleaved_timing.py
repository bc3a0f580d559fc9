"""The interleaved timer against injected background load, and the sequential method it replaces.

A fast (1 layer) and a slow (4 layers) tiny model are timed while busy subprocesses load the CPU
during the first half of the requests — in the sequential method that is the fast model's whole
pass. Interleaved timing spreads the load over both models and keeps the true order; sequential
timing is fooled into calling the fast model the slower one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stillhouse.kernel.interfaces import TimingConfig
from stillhouse.kernel.stats import summarize
from stillhouse.kernel.timing import interleaved_timing, sequential_timing, timing_metrics

PROMPTS = [
    [{"role": "user", "content": "Premise: A man plays a guitar. Hypothesis: A person plays music."}],
    [{"role": "user", "content": "Two dogs run in a field. Are the animals sleeping?"}],
]
NEW_TOKENS = 4
ROUNDS = 4
BUSY = 32  # busy processes while the load is on: several times slower even on a loaded 2-core box


def _chat_model(path: Path):  # type: ignore[no-untyped-def]
    from stillhouse.plugins.hf_models import load_causal_lm
    from stillhouse.plugins.students.chat_model import HfChatModel

    model, tokenizer = load_causal_lm(str(path), dtype="float32", device="cpu")
    return HfChatModel(model, tokenizer, name=path.name, disk_path=str(path))


@pytest.fixture(scope="module")
def fast_and_slow(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer_dir: Path) -> dict:
    from stillhouse.testing.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("speed")
    fast = build_tiny_model(root / "fast", layers=1, hidden=64, tokenizer_dir=tiny_tokenizer_dir)
    slow = build_tiny_model(root / "slow", layers=4, hidden=64, tokenizer_dir=tiny_tokenizer_dir)
    return {"fast": _chat_model(fast), "slow": _chat_model(slow)}


class Load:
    """Busy subprocesses, started once and paused; ``on()``/``off()`` resume and pause them at once."""

    def __init__(self, count: int) -> None:
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
        self.running = True
        self.off()

    def _signal(self, sig: int) -> None:
        for proc in self.procs:
            os.kill(proc.pid, sig)

    def on(self) -> None:
        if not self.running:
            self._signal(signal.SIGCONT)
            self.running = True

    def off(self) -> None:
        if self.running:
            self._signal(signal.SIGSTOP)
            self.running = False

    def first_half(self, done: int, total: int, role: str) -> None:
        """``on_request`` hook: load on for the first half of the timed requests."""
        self.on() if done < total // 2 else self.off()

    def close(self) -> None:
        self._signal(signal.SIGCONT)
        for proc in self.procs:
            proc.kill()
            proc.wait()


@pytest.fixture
def load() -> Iterator[Load]:
    injected = Load(BUSY)
    yield injected
    injected.close()


def _medians(records: dict) -> dict[str, float]:
    return {role: summarize(r.per_token_ms()).median for role, r in records.items()}


@pytest.mark.slow
def test_interleaved_timing_keeps_the_true_order_under_injected_load(fast_and_slow: dict, load: Load) -> None:
    config = TimingConfig(new_tokens=NEW_TOKENS, prompts=len(PROMPTS), warmup=0, min_rounds=ROUNDS, max_rounds=ROUNDS)
    models = fast_and_slow
    for model in models.values():  # warm up outside the measurement, as the stage's warm-up round does
        model.time_request(PROMPTS[0], new_tokens=NEW_TOKENS)
    records = interleaved_timing(models, PROMPTS, config, on_request=load.first_half)
    load.off()
    assert all(len(r.timings) == ROUNDS * len(PROMPTS) for r in records.values())
    assert all(t.forced and t.new_tokens == NEW_TOKENS for r in records.values() for t in r.timings)
    medians = _medians(records)
    assert medians["fast"] < medians["slow"], medians
    metrics = {m.name: m for m in timing_metrics(records["fast"], NEW_TOKENS)}
    decode = metrics["decode_ms_per_token"]
    assert decode.n == ROUNDS * len(PROMPTS) and decode.low <= decode.value <= decode.high
    assert metrics["ttft_ms"].value is not None and "interleaved" in decode.unit


@pytest.mark.slow
def test_sequential_timing_gets_the_order_wrong_under_the_same_load(fast_and_slow: dict, load: Load) -> None:
    """Why interleaving exists: the load falls on the fast model's pass only, and it looks slower."""
    models = fast_and_slow
    for model in models.values():
        model.time_request(PROMPTS[0], new_tokens=NEW_TOKENS)
    records = sequential_timing(models, PROMPTS, new_tokens=NEW_TOKENS, repeats=ROUNDS, on_request=load.first_half)
    load.off()
    medians = _medians(records)
    assert medians["fast"] > medians["slow"], medians
