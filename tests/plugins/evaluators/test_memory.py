"""Memory watched over one call: the peak inside the call, not the process's history."""

from __future__ import annotations

import resource
import time

import pytest

from stillhouse.plugins.evaluators.memory import current_rss_bytes, watch_memory

MIB = 2**20


def hold(megabytes: int) -> int:
    """Allocate and touch ``megabytes`` (so they are resident), keep them a moment, free them."""
    block = b"\x01" * (megabytes * MIB)
    time.sleep(0.3)  # long enough for the 2 ms sampler to see it, even on a busy machine
    return len(block)


@pytest.mark.skipif(current_rss_bytes() is None, reason="needs /proc/self/statm (Linux)")
def test_watch_sees_memory_used_during_the_call_and_not_before():
    before = current_rss_bytes()
    size, big = watch_memory(lambda: hold(256))
    assert size == 256 * MIB
    assert big.rss_peak_bytes >= before + 200 * MIB
    assert big.gpu_peak_bytes is None
    # A later, small call does not inherit the earlier peak, unlike ru_maxrss.
    _, small = watch_memory(lambda: hold(1))
    assert small.rss_peak_bytes < big.rss_peak_bytes - 200 * MIB
    lifetime_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert lifetime_peak >= big.rss_peak_bytes - 8 * MIB  # ru_maxrss keeps the big peak forever


def test_watch_returns_the_result_and_reraises():
    result, _ = watch_memory(lambda: "answered")
    assert result == "answered"
    with pytest.raises(ZeroDivisionError):
        watch_memory(lambda: 1 / 0)
