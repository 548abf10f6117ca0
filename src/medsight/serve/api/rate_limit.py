"""Per-user request rate limit: a token bucket refilled continuously, checked after auth.

In memory, per process: limits are per service instance (a deployment behind a load
balancer gets one bucket per instance). Exceeding it answers 429 with Retry-After.
"""

from __future__ import annotations

import math
import threading
import time

from medsight.serve.api.errors import ApiError

MAX_KEYS = 10_000


class RateLimiter:
    """``per_minute`` requests per minute per key, with bursts up to ``per_minute``."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        # a bucket that has refilled completely is the same as no bucket: drop those, so
        # keys seen once (client addresses) do not accumulate forever
        full_after = self.capacity / self.rate
        self._buckets = {
            k: (tokens, last)
            for k, (tokens, last) in self._buckets.items()
            if now - last < full_after
        }

    def check(self, key: str) -> None:
        """Take one token from ``key``'s bucket.

        Raises:
            ApiError: ``rate_limited`` (429) with the seconds until a token is back.
        """
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if len(self._buckets) > MAX_KEYS:
                self._prune(now)
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = math.ceil((1.0 - tokens) / self.rate)
                raise ApiError(
                    "rate_limited", "too many requests; slow down", {"Retry-After": str(wait)}
                )
            self._buckets[key] = (tokens - 1.0, now)
