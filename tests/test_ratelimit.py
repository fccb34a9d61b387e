"""The send pacer on a simulated clock: even spacing, a 429 holds back the whole queue."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from typing import Any

import pytest
from telegram.error import RetryAfter

from bot.ratelimit import LastMoment, PacedRateLimiter, Withdrawn


class SimulatedTime:
    """sleep() advances time instantly; the order of wake-ups follows the requested times."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        target = self.now + seconds
        # Let every other task reserve its slot before time jumps forward.
        await asyncio.sleep(0)
        self.now = max(self.now, target)


def limiter(clock: SimulatedTime, per_second: float = 30) -> PacedRateLimiter:
    return PacedRateLimiter(per_second, monotonic=clock.monotonic, sleep=clock.sleep)


async def test_requests_are_spaced_evenly_without_a_burst() -> None:
    clock = SimulatedTime()
    pacer = limiter(clock)
    sent_at: list[float] = []

    async def send(*_: Any) -> bool:
        sent_at.append(clock.now)
        return True

    await asyncio.gather(
        *(
            pacer.process_request(send, (), {}, "sendMessage", {"chat_id": i}, None)
            for i in range(90)
        )
    )
    assert len(sent_at) == 90
    gaps = [b - a for a, b in zip(sorted(sent_at), sorted(sent_at)[1:], strict=False)]
    assert min(gaps) == pytest.approx(1.01 / 30)
    for start in sent_at:  # any closed one-second window holds at most 30: no burst
        assert len([t for t in sent_at if start <= t <= start + 1.0]) <= 30


async def test_a_429_pauses_every_later_send_then_retries() -> None:
    clock = SimulatedTime()
    pacer = limiter(clock)
    sent_at: dict[int, float] = {}
    refused = {3}

    async def send(chat_id: int) -> bool:
        if chat_id in refused:
            refused.discard(chat_id)
            raise RetryAfter(2)
        sent_at[chat_id] = clock.now
        return True

    await asyncio.gather(
        *(
            pacer.process_request(send, (i,), {}, "sendMessage", {"chat_id": i}, None)
            for i in range(10)
        )
    )
    assert set(sent_at) == set(range(10))  # the refused one was retried, nothing dropped
    refused_at = 3 / 30
    later = [t for chat, t in sent_at.items() if chat >= 4 or chat == 3]
    assert min(later) >= refused_at + 2.0  # nobody went out during the pause


async def test_requests_without_a_chat_are_not_paced() -> None:
    clock = SimulatedTime()
    pacer = limiter(clock, per_second=1)
    calls = 0

    async def get_updates(*_: Any) -> list[dict[str, Any]]:
        nonlocal calls
        calls += 1
        return []

    for _ in range(5):
        await pacer.process_request(get_updates, (), {}, "getUpdates", {"timeout": 10}, None)
    assert calls == 5 and clock.now == 0.0


async def test_retries_run_out_and_the_error_surfaces() -> None:
    pacer = limiter(SimulatedTime())

    async def always_flooded(*_: Any) -> bool:
        raise RetryAfter(1)

    with pytest.raises(RetryAfter):
        await pacer.process_request(always_flooded, (), {}, "sendMessage", {"chat_id": 1}, 2)


async def test_a_last_moment_check_runs_after_the_wait_and_can_withdraw() -> None:
    clock = SimulatedTime()
    pacer = limiter(clock)
    sent_at: dict[int, float] = {}
    asked_at: dict[int, float] = {}

    async def send(*args: Any) -> bool:
        sent_at[args[0]] = clock.now
        return True

    def wanted_unless(chat_id: int) -> LastMoment:
        async def still_wanted() -> bool:
            asked_at[chat_id] = clock.now
            await clock.sleep(0.005 * (chat_id % 3))  # a database check takes a while
            return chat_id != 5

        return LastMoment(still_wanted)

    results = await asyncio.gather(
        *(
            pacer.process_request(send, (i,), {}, "sendMessage", {"chat_id": i}, wanted_unless(i))
            for i in range(10)
        ),
        return_exceptions=True,
    )
    assert sorted(sent_at) == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert isinstance(results[5], Withdrawn)
    # Asked at its own turn, not when it joined the queue: the 10th waited 9 intervals.
    assert asked_at[9] == pytest.approx(9 * 1.01 / 30)
    # However long a check takes, requests still leave at least one interval apart.
    times = sorted(sent_at.values())
    assert min(b - a for a, b in pairwise(times)) >= 1.01 / 30 - 1e-9
