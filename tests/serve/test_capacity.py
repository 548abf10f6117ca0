"""Capacity guards: sync prediction slots (run, wait, then 503) and the per-key rate limiter."""

import asyncio

import pytest

from medsight.serve.api.errors import ApiError
from medsight.serve.api.sync_slots import SyncSlots


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


def test_rate_limiter_forgets_refilled_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    from medsight.serve.api import rate_limit

    clock = [1000.0]
    monkeypatch.setattr(rate_limit, "MAX_KEYS", 10)
    monkeypatch.setattr(rate_limit.time, "monotonic", lambda: clock[0])
    limiter = rate_limit.RateLimiter(per_minute=60)
    for i in range(11):
        limiter.check(f"client{i}")
    clock[0] += 61  # every bucket has refilled
    limiter.check("late")
    assert list(limiter._buckets) == ["late"]
