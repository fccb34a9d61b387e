"""The send limiter on simulated time: per-chat pace, global spacing, turns, 429 scopes."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from telegram.error import RetryAfter

from bot.ratelimit import (
    FairRateLimiter,
    FloodScope,
    LocalSendBudget,
    Pace,
    SendOptions,
    Withdrawn,
    paced_chat,
)
from bot.ratelimit import (
    retry_after_seconds as retry_seconds,
)
from tests.virtual_time import VirtualTime

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

Send = Callable[..., Coroutine[Any, Any, bool]]


def limiter(clock: VirtualTime, per_second: float = 30, **budget: Any) -> FairRateLimiter:
    return FairRateLimiter(
        per_second,
        budget=LocalSendBudget(monotonic=clock.monotonic, **budget) if budget else None,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )


class Recorder:
    """A fake `_do_post`: records (chat, label, time); may answer 429 for chosen labels."""

    def __init__(self, clock: VirtualTime) -> None:
        self.clock = clock
        self.sent: list[tuple[int, str, float]] = []
        self.refuse: dict[str, float] = {}  # label -> retry_after, answered once

    async def __call__(self, chat: int, label: str) -> bool:
        if label in self.refuse:
            raise RetryAfter(int(self.refuse.pop(label)))
        self.sent.append((chat, label, self.clock.now))
        return True

    def times(self, chat: int) -> list[float]:
        return [at for c, _, at in self.sent if c == chat]


def request(
    pacer: FairRateLimiter,
    send: Recorder,
    chat: int,
    label: str,
    *,
    endpoint: str = "sendMessage",
    options: SendOptions | None = None,
) -> Coroutine[Any, Any, Any]:
    return pacer.process_request(send, (chat, label), {}, endpoint, {"chat_id": chat}, options)


def max_in_window(times: list[float], seconds: float) -> int:
    """The most sends in any closed window of `seconds`."""
    ordered = sorted(times)
    return max(len([t for t in ordered if start <= t <= start + seconds]) for start in ordered)


async def test_one_chat_gets_a_burst_of_three_then_one_message_per_1_1_s_in_order() -> None:
    clock = VirtualTime()
    pacer, send = limiter(clock), Recorder(clock)

    async def burst() -> None:
        await asyncio.gather(*(request(pacer, send, 7, f"m{i}") for i in range(10)))

    await clock.run(burst())
    assert [label for _, label, _ in send.sent] == [f"m{i}" for i in range(10)]  # FIFO
    times = send.times(7)
    assert times[2] - times[0] < 0.1  # the burst of three
    assert times[3] - times[0] == pytest.approx(1.1)  # then the bucket's refill
    gaps = [b - a for a, b in itertools.pairwise(times[3:])]
    assert min(gaps) == pytest.approx(1.1)
    assert max_in_window(times, 1.0) <= 3
    # Never more than the bucket allows over any stretch: n sends need (n - 3) refills.
    for i, first in enumerate(times):
        for j in range(i + 3, len(times)):
            assert times[j] - first >= (j - i + 1 - 3) * 1.1 - 1e-9


async def test_global_sends_are_spaced_evenly_without_a_burst() -> None:
    clock = VirtualTime()
    pacer, send = limiter(clock), Recorder(clock)

    async def ninety_chats() -> None:
        await asyncio.gather(*(request(pacer, send, chat, "x") for chat in range(1, 91)))

    await clock.run(ninety_chats())
    times = sorted(at for _, _, at in send.sent)
    assert len(times) == 90
    assert min(b - a for a, b in itertools.pairwise(times)) == pytest.approx(1.01 / 30)
    assert max_in_window(times, 1.0) <= 30


async def test_a_chat_with_300_queued_does_not_make_others_wait_behind_it() -> None:
    """Global budget short (2/s) and the busy chat allowed to send fast: chats take turns."""
    clock = VirtualTime()
    fast = Pace(burst=1000, interval=0.001)
    pacer = limiter(clock, per_second=2, private=fast)
    send = Recorder(clock)
    start = clock.now

    async def scene() -> None:
        busy = [asyncio.create_task(request(pacer, send, 1, f"busy{i}")) for i in range(300)]
        await asyncio.sleep(0)
        newcomers = [request(pacer, send, chat, "start") for chat in (2, 3)]
        await asyncio.gather(*newcomers)
        for task in busy:
            task.cancel()
        await asyncio.gather(*busy, return_exceptions=True)

    await clock.run(scene())
    newcomer_times = send.times(2) + send.times(3)
    assert len(newcomer_times) == 2
    # Each got its turn within two rounds of the three waiting chats at 2 msg/s.
    assert max(newcomer_times) - start <= 3 * 1.01 / 2
    assert len(send.times(1)) <= 3


async def test_a_429_holds_back_only_that_chat_and_its_retry_goes_first() -> None:
    clock = VirtualTime()
    pacer, send = limiter(clock), Recorder(clock)
    send.refuse["3-first"] = 30
    start = clock.now

    async def scene() -> None:
        await asyncio.gather(
            request(pacer, send, 3, "3-first"),  # refused first, before the others went
            request(pacer, send, 3, "3-second"),
            *(request(pacer, send, chat, "only") for chat in (1, 2, 4, 5, 6)),
        )

    await clock.run(scene())
    others = [at for chat, _, at in send.sent if chat != 3]
    assert max(others) - start < 1.0  # nobody else waited out the 30 s
    assert [label for chat, label, _ in send.sent if chat == 3] == ["3-first", "3-second"]
    assert min(send.times(3)) - start >= 30
    assert (pacer.stats.held_chats, pacer.stats.slowdowns, pacer.stats.pauses) == (1, 0, 0)


async def test_429s_from_three_chats_halve_the_rate_which_then_climbs_back() -> None:
    clock = VirtualTime()
    pacer, send = limiter(clock), Recorder(clock)
    for chat in (1, 2, 3):
        send.refuse[f"c{chat}"] = 1
    start = clock.now

    async def scene() -> None:
        await asyncio.gather(*(request(pacer, send, chat, f"c{chat}") for chat in (1, 2, 3)))
        await asyncio.gather(*(request(pacer, send, chat, "after") for chat in range(10, 40)))

    await clock.run(scene())
    assert pacer.stats.slowdowns == 1 and pacer.stats.pauses == 0
    after = sorted(at for _, label, at in send.sent if label == "after")
    early_gaps = [b - a for a, b in itertools.pairwise(after[:6])]
    assert min(early_gaps) > 1.01 / 30 * 1.5  # well below 30/s right after the evidence
    assert pacer.scope.rate(start + 60) == 30  # and back to full rate later


def test_flood_scope_one_chat_is_local_three_chats_slow_down_at_the_floor_pause() -> None:
    scope = FloodScope(max_rate=4, min_rate=1)
    assert scope.observe(1, 5, now=0).action == "chat"
    assert scope.observe(1, 5, now=0.1).action == "chat"  # the same chat again: still local
    assert scope.observe(2, 5, now=0.2).action == "chat"
    first = scope.observe(3, 7, now=0.3)
    assert (first.action, first.rate) == ("slow_down", 2)
    assert scope.rate(1.3) == 3 and scope.rate(100) == 4  # +1 msg/s each second, capped
    for chat in (4, 5):
        scope.observe(chat, 1, now=0.3)
    assert scope.observe(6, 1, now=0.3).rate == 1  # fresh evidence: halved again, to the floor
    for chat in (7, 8):
        scope.observe(chat, 2, now=0.3)
    paused = scope.observe(9, 9, now=0.3)
    assert (paused.action, paused.pause, paused.chats) == ("pause_all", 9, 3)


async def test_a_long_hold_fails_fast_with_retry_after_and_sends_nothing() -> None:
    clock = VirtualTime()
    pacer, send = limiter(clock), Recorder(clock)
    await pacer.budget.hold(5, 30)
    bounded = SendOptions(max_retries=0, max_wait=2)

    async def scene() -> None:
        with pytest.raises(RetryAfter) as caught:
            await request(pacer, send, 5, "reminder", options=bounded)
        assert retry_seconds(caught.value) >= 30
        await request(pacer, send, 6, "other", options=bounded)

    await clock.run(scene())
    assert [label for _, label, _ in send.sent] == ["other"]
    assert pacer.stats.deferred == 1


async def test_no_retries_means_a_429_surfaces_at_once_and_the_chat_is_held() -> None:
    clock = VirtualTime()
    pacer, send = limiter(clock), Recorder(clock)
    send.refuse["once"] = 10

    async def scene() -> None:
        with pytest.raises(RetryAfter):
            await request(pacer, send, 5, "once", options=SendOptions(max_retries=0))

    await clock.run(scene())
    assert await pacer.budget.wait_hint(5) == pytest.approx(10.1)
    assert await pacer.budget.wait_hint(6) == 0


async def test_retries_run_out_and_the_error_surfaces() -> None:
    clock = VirtualTime()
    pacer = limiter(clock)

    async def always_flooded(*_: Any) -> bool:
        raise RetryAfter(1)

    async def scene() -> None:
        with pytest.raises(RetryAfter):
            await pacer.process_request(
                always_flooded, (), {}, "sendMessage", {"chat_id": 1}, SendOptions(max_retries=2)
            )

    await clock.run(scene())
    assert pacer.stats.held_chats == 3


async def test_groups_get_at_most_twenty_messages_a_minute() -> None:
    clock = VirtualTime()
    pacer, send = limiter(clock), Recorder(clock)

    async def scene() -> None:
        await asyncio.gather(*(request(pacer, send, -100123, f"g{i}") for i in range(40)))

    await clock.run(scene())
    assert max_in_window(send.times(-100123), 60.0) <= 20


async def test_a_cancelled_request_does_not_block_its_chat() -> None:
    clock = VirtualTime()
    pacer, send = limiter(clock), Recorder(clock)

    async def scene() -> None:
        await asyncio.gather(*(request(pacer, send, 9, f"early{i}") for i in range(3)))
        doomed = asyncio.create_task(request(pacer, send, 9, "doomed"))
        await asyncio.sleep(0)
        doomed.cancel()
        await request(pacer, send, 9, "later")

    await clock.run(scene())
    assert [label for _, label, _ in send.sent][-1] == "later"
    assert "doomed" not in [label for _, label, _ in send.sent]


@pytest.mark.parametrize(
    ("endpoint", "data", "chat"),
    [
        ("sendMessage", {"chat_id": 5}, 5),
        ("editMessageText", {"chat_id": 5, "message_id": 1}, 5),
        ("copyMessage", {"chat_id": "-100"}, -100),
        ("sendMessage", {"chat_id": "@channel"}, "@channel"),
        ("answerCallbackQuery", {"callback_query_id": "1"}, None),
        ("sendChatAction", {"chat_id": 5}, None),
        ("deleteMessage", {"chat_id": 5, "message_id": 1}, None),
        ("editMessageText", {"inline_message_id": "x"}, None),
        ("getUpdates", {"timeout": 10}, None),
    ],
)
def test_which_requests_are_paced(
    endpoint: str, data: dict[str, Any], chat: int | str | None
) -> None:
    assert paced_chat(endpoint, data) == chat


async def test_requests_that_are_not_chat_messages_go_straight_through() -> None:
    clock = VirtualTime()
    pacer = limiter(clock, per_second=1)
    calls = 0

    async def answer(*_: Any) -> bool:
        nonlocal calls
        calls += 1
        return True

    for _ in range(5):
        await pacer.process_request(answer, (), {}, "answerCallbackQuery", {}, None)
        await pacer.process_request(answer, (), {}, "sendChatAction", {"chat_id": 1}, None)
    assert calls == 10 and clock.now == 1000.0


async def test_a_last_moment_check_runs_when_the_turn_comes_and_can_withdraw() -> None:
    clock = VirtualTime()
    pacer, send = limiter(clock), Recorder(clock)
    asked_at: dict[int, float] = {}

    def wanted_unless_five(chat: int) -> SendOptions:
        async def still_wanted() -> bool:
            asked_at[chat] = clock.now
            await clock.sleep(0.005 * (chat % 3))  # a database check takes a while
            return chat != 5

        return SendOptions(still_wanted=still_wanted)

    async def everyone() -> list[Any]:
        return await asyncio.gather(
            *(
                request(pacer, send, chat, "r", options=wanted_unless_five(chat))
                for chat in range(10)
            ),
            return_exceptions=True,
        )

    started = clock.now
    results = await clock.run(everyone())
    assert sorted(chat for chat, _, _ in send.sent) == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert isinstance(results[5], Withdrawn)
    # Asked when its turn came, not when it joined the queue: the 10th after 9 spacings.
    assert asked_at[9] - started == pytest.approx(9 * 1.01 / 30)
    # However long a check takes, requests still leave at least one spacing apart.
    times = sorted(at for _, _, at in send.sent)
    assert min(b - a for a, b in itertools.pairwise(times)) >= 1.01 / 30 - 1e-9
