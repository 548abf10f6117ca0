"""Bounded concurrency for synchronous (2D) predictions, with a bounded waiting line.

``running`` predictions run at once; up to ``waiting`` more wait for a slot. Past that the
service is over capacity and answers 503 with Retry-After at once, rather than letting
requests pile up until clients time out.
"""

from __future__ import annotations

import asyncio

from medsight.serve.api.errors import ApiError


class SyncSlots:
    """An async semaphore that refuses instead of queueing without bound."""

    def __init__(self, running: int, waiting: int) -> None:
        self._semaphore = asyncio.Semaphore(running)
        self._limit = running + waiting
        self._inside = 0

    async def __aenter__(self) -> SyncSlots:
        if self._inside >= self._limit:
            raise ApiError(
                "busy", "the service is at capacity; retry shortly", {"Retry-After": "2"}
            )
        self._inside += 1
        try:
            await self._semaphore.acquire()
        except BaseException:
            self._inside -= 1
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._semaphore.release()
        self._inside -= 1
