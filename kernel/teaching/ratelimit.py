"""Requests-per-minute and tokens-per-minute limits as token buckets, for one event loop."""

from __future__ import annotations

import asyncio
import time


class _Bucket:
    """Holds up to ``per_minute`` units, refilled continuously; starts full (a burst is allowed)."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self, amount: float) -> float:
        """Seconds until ``amount`` is available (0: now). A request larger than the bucket only
        waits for a full bucket, else it could never run."""
        self._refill()
        amount = min(amount, self.capacity)
        return 0.0 if self.level >= amount else (amount - self.level) / self.rate

    def take(self, amount: float) -> None:
        self._refill()
        self.level -= amount


class RateLimiter:
    """Admits a call once both the request and the token budget of the last minute allow it.

    Tokens are reserved with an estimate before the call and corrected with the real count after
    (``settle``), so a limit holds even while many calls are in flight.
    """

    def __init__(self, rpm: int | None, tpm: int | None) -> None:
        self._requests = _Bucket(rpm) if rpm else None
        self._tokens = _Bucket(tpm) if tpm else None
        self._lock = asyncio.Lock()

    @property
    def active(self) -> bool:
        return self._requests is not None or self._tokens is not None

    async def acquire(self, tokens: int) -> None:
        if not self.active:
            return
        async with self._lock:  # first come, first served: no starvation of large requests
            while True:
                wait = max(
                    self._requests.wait_time(1) if self._requests else 0.0,
                    self._tokens.wait_time(tokens) if self._tokens else 0.0,
                )
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self._requests:
                self._requests.take(1)
            if self._tokens:
                self._tokens.take(tokens)

    def settle(self, estimated: int, actual: int) -> None:
        if self._tokens is not None:
            self._tokens.take(actual - estimated)
