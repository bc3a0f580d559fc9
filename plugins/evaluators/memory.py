"""Memory while one model answers: the process's resident set size sampled in a thread, and on a
GPU the allocator's peak after a reset.

Why not ``ru_maxrss`` or ``torch.cuda.max_memory_allocated()`` as they stand: both are the
process's high-water mark since it started, so when the teacher, the baseline and the distilled
student are evaluated one after another in one process, every later model inherits the earlier
models' peak, and the comparison would show a 185× smaller student using "0.0% less" memory (seen
on CPU and on an H200). Watching one answering pass gives each model its own numbers.
"""

from __future__ import annotations

import resource
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_STATM = Path("/proc/self/statm")


def current_rss_bytes() -> int | None:
    """This process's resident set size now (Linux); None where /proc is not available."""
    try:
        pages = int(_STATM.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * resource.getpagesize()


@dataclass
class Watched:
    rss_peak_bytes: int | None
    gpu_peak_bytes: int | None


def watch_memory(fn: Callable[[], T], *, gpu: bool = False, interval_s: float = 0.002) -> tuple[T, Watched]:
    """Run ``fn`` and return its result with the peak RSS seen while it ran and, with ``gpu``, the
    peak CUDA allocation (live tensors: this model's weights plus its activations)."""
    torch = sys.modules.get("torch") if gpu else None
    use_gpu = torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized()
    if use_gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    peak = current_rss_bytes()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(interval_s):
            now = current_rss_bytes()
            if now is not None and (peak is None or now > peak):
                peak = now

    sampler = threading.Thread(target=sample, name="stillhouse-rss", daemon=True)
    sampler.start()
    try:
        result = fn()
    finally:
        done.set()
        sampler.join()
    last = current_rss_bytes()
    if last is not None and (peak is None or last > peak):
        peak = last
    gpu_peak = None
    if use_gpu:
        torch.cuda.synchronize()
        gpu_peak = int(torch.cuda.max_memory_allocated())
    return result, Watched(peak, gpu_peak)
