"""Synchronous predictions: a bounded number run, a bounded number wait, the rest get 503."""

import asyncio

import pytest

from medsight.serve.api_errors import ApiError
from medsight.serve.sync_slots import SyncSlots


def test_slots_run_wait_then_refuse() -> None:
    async def scenario() -> tuple[int, list[str]]:
        slots = SyncSlots(running=2, waiting=1)
        release = asyncio.Event()
        peak, inside, outcomes = 0, 0, []

        async def request() -> None:
            nonlocal peak, inside
            try:
                async with slots:
                    inside += 1
                    peak = max(peak, inside)
                    await release.wait()
                    inside -= 1
                outcomes.append("done")
            except ApiError as exc:
                assert exc.status == 503 and exc.headers["Retry-After"]
                outcomes.append(exc.code)

        tasks = [asyncio.create_task(request()) for _ in range(5)]
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(*tasks)
        return peak, sorted(outcomes)

    peak, outcomes = asyncio.run(scenario())
    assert peak == 2
    assert outcomes == ["busy", "busy", "done", "done", "done"]


def test_unknown_error_code_is_a_bug() -> None:
    with pytest.raises(ValueError):
        ApiError("teapot", "no")
