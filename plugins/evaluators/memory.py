"""Memory while one model answers: the process's resident set size sampled in a thread, the C
heap in use (glibc's allocator statistics, where torch's CPU tensors live) sampled the same way,
and on a GPU the allocator's peak after a reset.

The heap's rise above its level before the pass is the model's working memory (activations, KV
cache, logits), which process RSS hides under the runtime's few hundred MiB of libraries.

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
from typing import Any, TypeVar

T = TypeVar("T")

_STATM = Path("/proc/self/statm")


def current_rss_bytes() -> int | None:
    """This process's resident set size now (Linux); None where /proc is not available."""
    try:
        pages = int(_STATM.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * resource.getpagesize()


def heap_in_use_bytes() -> int | None:
    """Bytes the C allocator has handed out now (glibc ``mallinfo2``: small blocks + mmapped
    ones); None where it is not available (not glibc, or glibc older than 2.33)."""
    libc = _libc()
    if libc is None:
        return None
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


_LIBC: list = []


def _libc() -> Any:  # the loaded C library (a ctypes.CDLL), or None where it cannot be loaded
    if not _LIBC:
        import ctypes
        import ctypes.util

        class MallInfo2(ctypes.Structure):
            _fields_ = [
                (name, ctypes.c_size_t)
                for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
            ]

        found = None
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.mallinfo2.restype = MallInfo2
            found = libc
        except (OSError, AttributeError):
            found = None
        _LIBC.append(found)
    return _LIBC[0]


@dataclass
class Watched:
    rss_peak_bytes: int | None
    gpu_peak_bytes: int | None
    working_bytes: int | None = None
    """Peak rise of the memory in use during the pass above its level before: CUDA allocations on a
    GPU, else the C heap in use. The pass's activations, KV cache and logits, not the weights."""


def watch_memory(fn: Callable[[], T], *, gpu: bool = False, interval_s: float = 0.002) -> tuple[T, Watched]:
    """Run ``fn`` and return its result with the peak RSS seen while it ran and, with ``gpu``, the
    peak CUDA allocation (live tensors: this model's weights plus its activations)."""
    torch = sys.modules.get("torch") if gpu else None
    # torch.cuda where the pass runs on a GPU (torch already imported, CUDA up), else None
    cuda = torch.cuda if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized() else None
    gpu_before = 0
    if cuda is not None:
        cuda.synchronize()
        cuda.reset_peak_memory_stats()
        gpu_before = int(cuda.memory_allocated())
    peak = current_rss_bytes()
    heap_before = heap_in_use_bytes()
    heap_peak = heap_before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, heap_peak
        while not done.wait(interval_s):
            now = current_rss_bytes()
            if now is not None and (peak is None or now > peak):
                peak = now
            heap = heap_in_use_bytes()
            if heap is not None and heap_peak is not None and heap > heap_peak:
                heap_peak = heap

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
    working = heap_peak - heap_before if heap_peak is not None and heap_before is not None else None
    if cuda is not None:
        cuda.synchronize()
        gpu_peak = int(cuda.max_memory_allocated())
        working = gpu_peak - gpu_before
    return result, Watched(peak, gpu_peak, working)
