"""ALLOW_PAID_BROADCAST pays only for the overflow: a reminder is flagged allow_paid_broadcast
only when the free lane cannot send it before it would leave its send window; replies never.

The lane rule on simulated time (bot/ratelimit.py), the dispatcher's limit for each delivery
(bot/dispatch.py), and one burst through the real dispatcher, limiter and fake Bot API.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from datetime import time, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from telegram.ext import ExtBot

from bot.capacity import Window
from bot.capacity_plan import windows_from
from bot.config import Settings
from bot.dispatch import Dispatcher, run_simulated
from bot.metrics import Metrics
from bot.ratelimit import SAFETY, FairRateLimiter, SendOptions, SendStats, may_go_paid
from bot.storage import ClaimedDelivery
from tests.conftest import TEST_TOKEN
from tests.test_dispatch import Harness, berlin, content, h, sign_up
from tests.virtual_time import VirtualTime

__all__ = ["content", "h"]  # the dispatcher harness fixtures, shared with test_dispatch

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

FREE = 10.0  # msg/s in these tests: the free lane's spacing is 0.101 s
PAID = 100.0


class Sends:
    """A fake `_do_post` that records (label, time, flagged) as the request data says."""

    def __init__(self, clock: VirtualTime) -> None:
        self.clock = clock
        self.sent: list[tuple[str, float, bool]] = []

    def request(
        self, pacer: FairRateLimiter, chat: int, label: str, options: SendOptions | None = None
    ) -> Coroutine[Any, Any, Any]:
        data: dict[str, Any] = {"chat_id": chat, "text": label}

        async def post() -> bool:  # as ExtBot's callback: serialises `data` when called
            self.sent.append((label, self.clock.now, bool(data.get("allow_paid_broadcast"))))
            return True

        return pacer.process_request(post, (), {}, "sendMessage", data, options)

    def paid(self) -> list[str]:
        return [label for label, _, flagged in self.sent if flagged]


def limiter(clock: VirtualTime, paid: float = PAID) -> FairRateLimiter:
    return FairRateLimiter(FREE, paid_per_second=paid, monotonic=clock.monotonic, sleep=clock.sleep)


def test_the_rule_pays_only_when_the_free_slot_is_taken_and_the_limit_has_come() -> None:
    assert not may_go_paid(10.0, None, 0.5)  # no limit (a reply): never
    assert not may_go_paid(10.0, 11.0, 0.5)  # still in time to wait for the free slot
    assert not may_go_paid(10.0, 9.0, 0.0)  # the free slot is there: take it
    assert may_go_paid(10.0, 9.0, 0.5)
    assert may_go_paid(10.0, 10.0, 0.01)


async def test_in_time_goes_free_and_only_what_would_miss_its_limit_goes_paid() -> None:
    """50 reminders at once, each allowed to go paid 2 s from now: the free lane carries what
    it can in those 2 s (20 at 10 msg/s), then the rest goes paid at 100 msg/s, except the
    free lane's own slots, which stay free."""
    clock = VirtualTime()
    pacer, sends = limiter(clock), Sends(clock)
    start = clock.now
    options = SendOptions(paid_after=2.0)

    async def burst() -> None:
        await asyncio.gather(*(sends.request(pacer, i, f"r{i}", options) for i in range(1, 51)))

    await clock.run(burst())
    assert len(sends.sent) == 50
    free = [at - start for _, at, flagged in sends.sent if not flagged]
    paid = [at - start for _, at, flagged in sends.sent if flagged]
    assert len([at for at in free if at < 2.0]) == 20  # everything the free lane could carry
    assert min(paid) >= 2.0 - 1e-9  # nothing paid before its limit
    assert max(paid) < 2.0 + 30 * SAFETY / PAID + 1e-6  # then the paid lane's own pace
    assert len(paid) == pacer.stats.paid and 25 <= len(paid) <= 30
    # The free lane never went above its rate, paid sends in between or not.
    assert min(b - a for a, b in itertools.pairwise(free)) >= SAFETY / FREE - 1e-9


async def test_a_burst_the_free_lane_carries_in_time_pays_nothing() -> None:
    clock = VirtualTime()
    pacer, sends = limiter(clock), Sends(clock)
    options = SendOptions(paid_after=5.0)
    await clock.run(asyncio.gather(*(sends.request(pacer, i, "r", options) for i in range(40))))
    assert len(sends.sent) == 40 and sends.paid() == [] and pacer.stats.paid == 0


async def test_replies_are_never_flagged_even_behind_an_overflowing_burst() -> None:
    """Requests without a limit (every reply) wait for the free lane, however long."""
    clock = VirtualTime()
    pacer, sends = limiter(clock), Sends(clock)
    late = SendOptions(paid_after=0.0)

    async def scene() -> None:
        await asyncio.gather(
            *(sends.request(pacer, i, f"reminder{i}", late) for i in range(1, 41)),
            *(sends.request(pacer, 100 + i, f"reply{i}") for i in range(10)),
        )

    await clock.run(scene())
    assert len(sends.sent) == 50
    assert all(label.startswith("reminder") for label in sends.paid())
    assert len(sends.paid()) > 0


async def test_without_a_paid_lane_a_limit_changes_nothing() -> None:
    clock = VirtualTime()
    pacer, sends = limiter(clock, paid=0.0), Sends(clock)
    options = SendOptions(paid_after=0.0)
    await clock.run(asyncio.gather(*(sends.request(pacer, i, "r", options) for i in range(30))))
    assert len(sends.sent) == 30 and sends.paid() == []


def delivery(kind: str, due_minute: int) -> ClaimedDelivery:
    return ClaimedDelivery(
        id=1,
        chat_id=1,
        kind=kind,
        due_at=berlin(10, 21, due_minute),
        meal_id=None,
        attempts=0,
        locale=None,
    )


async def test_the_dispatcher_limit_is_a_minute_before_the_tightest_window_closes(
    h: Harness,
) -> None:
    """Content's windows: meal +10, exercise +10, wind-down +5 minutes. Every kind may go paid
    from 4 minutes after its time (a wind-down due as early may wait behind a meal idea),
    never before its time, never for a kind without a window, never when not allowed."""
    windows = windows_from(h.content)
    paid = h.new_dispatcher(allow_paid_broadcast=True, windows=windows)
    h.clock.set(berlin(10, 21, 30, 5))
    for kind in ("wind_down", "meal", "exercise"):
        assert paid.paid_after(delivery(kind, 30)) == pytest.approx(4 * 60 - 5)
    assert paid.paid_after(delivery("diary_checkin", 30)) is None  # no window
    tight = h.new_dispatcher(allow_paid_broadcast=True, windows={"tight": Window(0, 30)})
    assert tight.paid_after(delivery("tight", 30)) == pytest.approx(-5)  # its time: now
    h.clock.set(berlin(10, 21, 0))  # released early (levelling): not before its time
    assert tight.paid_after(delivery("tight", 30)) == pytest.approx(30 * 60)
    free = h.new_dispatcher(allow_paid_broadcast=False, windows=windows)
    assert free.paid_after(delivery("wind_down", 30)) is None


async def test_without_the_rate_limiter_nothing_is_flagged(h: Harness) -> None:
    """A plain Bot has no lanes (production always paces through FairRateLimiter)."""
    await sign_up(h, only=["wind_down"])
    h.dispatcher = h.new_dispatcher(allow_paid_broadcast=True, windows={"wind_down": Window(0, 0)})
    await h.tick_at(berlin(10, 21, 30, 5))
    [call] = h.sends()
    assert "allow_paid_broadcast" not in call.params


@contextlib.asynccontextmanager
async def burst_dispatcher(h: Harness) -> AsyncIterator[tuple[Dispatcher, FairRateLimiter]]:
    """The real dispatcher sending through ExtBot and FairRateLimiter (free 10 msg/s, paid 100)
    to the fake Bot API, all on the dispatcher's clock, one request in flight at a time (so
    the limiter's waits move the clock exactly); wind-downs have a 3-second window."""

    def monotonic() -> float:
        return h.clock.now().timestamp()

    async def sleep(seconds: float) -> None:
        h.clock.advance(timedelta(seconds=max(seconds, 0.0)))
        await asyncio.sleep(0)

    pacer = FairRateLimiter(FREE, paid_per_second=PAID, monotonic=monotonic, sleep=sleep)
    async with ExtBot(TEST_TOKEN, base_url=h.api.base_url, rate_limiter=pacer) as bot:
        yield (
            Dispatcher(
                h.store,
                bot,
                h.content,
                h.clock,
                allow_paid_broadcast=True,
                windows={"wind_down": Window(0, 3)},
                paid_lead=timedelta(0),
                max_concurrency=1,
            ),
            pacer,
        )


async def test_a_burst_through_the_real_dispatcher_flags_only_the_overflow(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """40 wind-downs due at once, a 3-second window, the free lane at 10 msg/s, sent through
    ExtBot, FairRateLimiter and the fake Bot API on the dispatcher's clock: the first 30 (all
    the free lane carries in 3 s) go unflagged, then the overflow goes flagged, the free
    lane's own slots still unflagged."""
    chats = list(range(9001, 9041))
    for chat in chats:
        await sign_up(h, chat, only=["wind_down"])

    async with burst_dispatcher(h) as (dispatcher, pacer):
        due = berlin(10, 21, 30)
        h.clock.set(due)
        with caplog.at_level(logging.INFO, logger="bot.dispatch"):
            await dispatcher.tick_and_log()
    calls = h.sends()
    assert sorted(int(call.chat_id or 0) for call in calls) == chats  # each once
    flagged = [call for call in calls if call.params.get("allow_paid_broadcast") is True]
    unflagged = [call for call in calls if "allow_paid_broadcast" not in call.params]
    assert len(flagged) + len(unflagged) == 40
    assert [call.chat_id for call in unflagged[:30]] == chats[:30]  # in time: free, in order
    # The last 10 would leave the window: 9 go paid at 100 msg/s, and one still meets a slot
    # of the free lane (every 0.101 s) on its way.
    assert len(flagged) == 9 and {call.chat_id for call in flagged} < set(chats[30:])
    lines = [r.getMessage() for r in caplog.records]
    [summary] = [line for line in lines if line.startswith("dispatcher tick: ")]
    assert "sent=40," in summary and "paid=9 (wind_down=9)" in summary
    [why] = [line for line in lines if "paid broadcasts" in line]
    assert why.startswith("9 reminders went as paid broadcasts") and "window" in why
    assert pacer.stats.paid == len(flagged)


async def test_a_paid_broadcast_refused_for_want_of_stars_costs_no_reminder(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """The burst above, with Telegram refusing the first paid broadcast ("BALANCE_TOO_LOW"):
    that reminder is tried again on the free lane instead of being recorded failed, no other
    reminder is flagged for the next hour, and the operator is told once, at ERROR."""
    chats = list(range(9101, 9141))
    for chat in chats:
        await sign_up(h, chat, only=["wind_down"])
    h.api.fail_next(
        "sendMessage",
        error_code=400,
        description="Bad Request: BALANCE_TOO_LOW",
        when=lambda params: params.get("allow_paid_broadcast") is True,
    )

    async with burst_dispatcher(h) as (dispatcher, _):
        h.clock.set(berlin(10, 21, 30))
        with caplog.at_level(logging.INFO, logger="bot.dispatch"):
            await dispatcher.tick_and_log()
            assert not dispatcher.paid_now()
            h.clock.advance(timedelta(seconds=10))  # past the refused one's 5 s retry
            await dispatcher.tick_and_log()
    assert sorted(int(call.chat_id or 0) for call in h.sends()) == chats  # each once, none lost
    every = h.api.calls_to("sendMessage", ok_only=False)
    flagged = [call for call in every if call.params.get("allow_paid_broadcast") is True]
    assert [call.status for call in flagged] == [400]  # the refused one, and no other
    statuses: Counter[str] = Counter()
    for chat in chats:
        statuses.update(d["status"] for d in await h.deliveries(chat))
    assert statuses == {"sent": 40}
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "Stars" in errors[0] and "balance_too_low" in errors[0].lower()


async def test_with_paid_broadcast_the_overload_policy_drops_nothing(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """test_dispatch's overload (8 meal ideas dropped at 0.02 msg/s) with paid allowed: the
    plan still says the hour cannot carry them, but the overflow goes paid instead."""
    winders, eaters = range(7200, 7240), range(7300, 7340)
    for chat_id in winders:
        await sign_up(h, chat_id, only=["wind_down"])
    for chat_id in eaters:
        await sign_up(h, chat_id, bedtime=time(1, 30), only=["meal"])
    dispatcher = h.new_dispatcher(
        windows=windows_from(h.content),
        send_rate=0.02,
        tick_every=timedelta(minutes=1),
        allow_paid_broadcast=True,
    )
    h.clock.set(berlin(10, 20, 40))
    with caplog.at_level(logging.WARNING, logger="bot.dispatch"):
        await run_simulated(dispatcher, h.clock, timedelta(hours=1))
    statuses: Counter[str] = Counter()
    for chat_id in [*winders, *eaters]:
        statuses.update(d["status"] for d in await h.deliveries(chat_id))
    assert statuses == {"sent": 80}
    assert not [r for r in caplog.records if "overload policy c" in r.getMessage()]


def test_paid_sends_are_a_prometheus_counter() -> None:
    metrics = Metrics()
    metrics.observe(limiter=lambda: SendStats(paid=7))
    assert "sleepbot_paid_broadcasts_total 7.0" in metrics.exposition().decode()


def test_a_rate_above_30_needs_paid_broadcast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEND_RATE_PER_SECOND", "200")
    with pytest.raises(ValidationError, match="ALLOW_PAID_BROADCAST=true"):
        Settings(_env_file=None)
    monkeypatch.setenv("ALLOW_PAID_BROADCAST", "true")
    settings = Settings(_env_file=None)
    assert (settings.free_send_rate, settings.paid_send_rate) == (30, 170)
    monkeypatch.setenv("SEND_RATE_PER_SECOND", "1001")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)


def test_paid_broadcast_at_the_free_rate_leaves_no_paid_lane(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALLOW_PAID_BROADCAST", "true")
    settings = Settings(_env_file=None)
    assert (settings.free_send_rate, settings.paid_send_rate) == (30, 0)
    monkeypatch.setenv("SEND_RATE_PER_SECOND", "12")
    assert Settings(_env_file=None).free_send_rate == 12
