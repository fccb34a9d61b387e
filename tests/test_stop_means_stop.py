"""Stop means stop, end to end: nothing arrives after the bot confirmed /stop, /deletedata,
/pause, "Turn this off" or a block — not even a reminder already claimed for sending.

The real Application talks to the fake Bot API over HTTP. A burst is made deterministic with
the fake's ``hold``: 20 other people's reminders, due with Ada's, are held at Telegram's door,
so all 16 send slots are busy and Ada's reminder sits claimed (``sending``) but unsent while
she acts. Then the held requests are released and the burst finishes. No sleeps: the test
waits on conditions (held requests arrived, update handled) with bounds.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest

from bot.dispatch import TickReport
from bot.fake_telegram import ApiCall, FakeBotApi, Hold
from tests.conftest import TEST_TOKEN
from tests.harness import BotHarness, bot_harness
from tests.test_reminders_e2e import ADA, MEAL_UTC, _membership, onboard, reminder_sends

CROWD = tuple(range(7001, 7021))  # 20 people whose meal idea is due with Ada's
SEND_SLOTS = 16  # the dispatcher's default max_concurrency
DEAD = "crashed-process"


@pytest.fixture(params=[False, True], ids=["no-limiter", "paced-limiter"])
async def bot(
    request: pytest.FixtureRequest, fake_api: FakeBotApi, tmp_path: Path
) -> AsyncIterator[BotHarness]:
    """Both send paths: the check right before the call, and inside the production rate
    limiter right after its wait for a slot (``LastMoment``)."""
    async with bot_harness(fake_api, tmp_path, TEST_TOKEN, rate_limit=request.param) as harness:
        await sign_up_crowd(harness)
        await onboard(harness)  # after the crowd: Ada's reminder is claimed after theirs
        yield harness


async def sign_up_crowd(bot: BotHarness) -> None:
    store, now = bot.services.store, bot.clock.now()
    for chat_id in CROWD:
        bot.api.add_chat(chat_id)
        await store.set_timezone(chat_id, "Europe/Berlin", now)
        await store.set_bedtime(chat_id, time(22, 30), now)
        await store.subscribe(chat_id, now)


async def ada_statuses(bot: BotHarness) -> list[str]:
    exported = await bot.services.store.export_person(ADA)
    return [] if exported is None else [d["status"] for d in exported["deliveries"]]


@dataclass
class Burst:
    hold: Hold
    tick: asyncio.Task[TickReport]

    async def finish(self) -> TickReport:
        self.hold.release()
        async with asyncio.timeout(30):
            return await self.tick


async def burst_at(bot: BotHarness, due: datetime) -> Burst:
    """Start the tick for ``due`` with the crowd's sends held; return once every send slot
    is taken and Ada's reminder is claimed but not sent."""
    hold = bot.api.hold("sendMessage", chat_ids=CROWD)
    before = len(bot.api.calls)
    bot.clock.set(due)
    tick = asyncio.create_task(bot.tick())
    await bot.api.wait_for(lambda: hold.arrived >= SEND_SLOTS, timeout=10, what="busy slots")
    assert (await ada_statuses(bot))[-1] == "sending"
    assert reminder_sends(bot.api.calls[before:]) == []
    return Burst(hold, tick)


def after(calls: list[ApiCall], confirmation: ApiCall) -> list[ApiCall]:
    return calls[calls.index(confirmation) + 1 :]


def confirmation(calls: list[ApiCall], method: str, words: str) -> ApiCall:
    [call] = [c for c in calls if c.method == method and words in str(c.params.get("text"))]
    return call


async def test_stop_mid_burst(bot: BotHarness) -> None:
    burst = await burst_at(bot, MEAL_UTC)
    confirmed = confirmation(await bot.send(ADA, "/stop"), "sendMessage", "Reminders stopped")
    report = await burst.finish()
    assert reminder_sends(after(bot.api.calls, confirmed)) == []
    assert reminder_sends(bot.api.calls) == []
    assert report.dropped == Counter({"unsubscribed": 1})
    assert report.sent == len(CROWD)
    assert await ada_statuses(bot) == ["cancelled"]
    # Nor later that night, nor the next days.
    assert reminder_sends(await bot.advance(timedelta(days=1), step=timedelta(minutes=10))) == []


async def test_deletedata_mid_burst(bot: BotHarness) -> None:
    await bot.send(ADA, "/deletedata")  # the question; the answer comes mid-burst
    burst = await burst_at(bot, MEAL_UTC)
    calls = await bot.press_label(ADA, "Yes, erase it")
    confirmed = confirmation(calls, "editMessageText", "Erased")
    report = await burst.finish()
    assert reminder_sends(after(bot.api.calls, confirmed)) == []
    assert reminder_sends(bot.api.calls) == []
    assert report.dropped == Counter({"erased": 1})
    assert await bot.services.store.get_person(ADA) is None


async def test_pause_mid_burst(bot: BotHarness) -> None:
    burst = await burst_at(bot, MEAL_UTC)
    confirmed = confirmation(await bot.send(ADA, "/pause 1"), "sendMessage", "paused until")
    report = await burst.finish()
    assert reminder_sends(after(bot.api.calls, confirmed)) == []
    assert report.dropped == Counter({"paused": 1})
    # The rest of the paused night stays silent; the night after, reminders come again.
    tonight = await bot.advance(timedelta(hours=12), step=timedelta(minutes=5))
    assert reminder_sends(tonight) == []
    tomorrow = await bot.advance(timedelta(hours=24), step=timedelta(minutes=5))
    assert len(reminder_sends(tomorrow)) == 3


async def test_turn_this_off_mid_burst(bot: BotHarness) -> None:
    bot.clock.set(MEAL_UTC)
    await bot.tick()  # yesterday's meal idea arrives, with its buttons
    [yesterday] = reminder_sends(bot.api.calls)
    burst = await burst_at(bot, MEAL_UTC + timedelta(days=1))
    calls = await bot.press_label(ADA, "Turn this off")
    confirmed = confirmation(calls, "answerCallbackQuery", "Turned off")
    report = await burst.finish()
    assert reminder_sends(after(bot.api.calls, confirmed)) == []
    assert reminder_sends(bot.api.calls) == [yesterday]
    assert report.dropped == Counter({"turned off": 1})
    # Only meal ideas are off: exercise and wind-down still come.
    later = reminder_sends(await bot.advance(timedelta(hours=3)))
    assert ["meal" not in str(c.params["text"]).lower() for c in later] == [True, True]


async def test_block_mid_burst(bot: BotHarness) -> None:
    burst = await burst_at(bot, MEAL_UTC)
    kicked = await bot._handled(bot.api.push_update(_membership(ADA, "member", "kicked")))
    assert kicked == []  # nothing to confirm to someone who blocked us
    mark = len(bot.api.calls)
    report = await burst.finish()
    assert reminder_sends(bot.api.calls[mark:]) == []
    assert reminder_sends(bot.api.calls) == []
    assert report.dropped == Counter({"blocked": 1})


async def test_a_403_cancels_the_persons_other_unsent_reminders(bot: BotHarness) -> None:
    # Ada blocked the bot without Telegram telling us; two of her reminders are due at once.
    await bot.services.store.set_reminder(ADA, "exercise", bot.clock.now(), offset_minutes=240)
    bot.api.block_chat(ADA)
    mark = len(bot.api.calls)
    bot.clock.set(MEAL_UTC)
    report = await bot.tick()
    assert report.deactivated == 1
    await bot.advance(timedelta(days=1), step=timedelta(minutes=10))
    attempts = [c for c in bot.api.calls[mark:] if c.method == "sendMessage" and c.chat_id == ADA]
    assert [c.status for c in attempts] == [403]  # the other one was never attempted
    assert sorted(await ada_statuses(bot)) == ["cancelled", "failed"]


async def test_a_retry_scheduled_before_stop_is_not_sent(bot: BotHarness) -> None:
    bot.api.drop_connection_next("sendMessage", chat_id=ADA)
    bot.clock.set(MEAL_UTC)
    assert (await bot.tick()).retried == 1  # back to pending, due again in 5 s
    confirmed = confirmation(await bot.send(ADA, "/stop"), "sendMessage", "Reminders stopped")
    later = await bot.advance(timedelta(minutes=10), step=timedelta(seconds=5))
    assert reminder_sends(after(bot.api.calls, confirmed)) == []
    assert reminder_sends(later) == []
    assert await ada_statuses(bot) == ["cancelled"]


async def test_an_attempt_failing_after_stop_is_not_retried(bot: BotHarness) -> None:
    # Ada's own request is on the wire (held) when she sends /stop; it then fails.
    wire = bot.api.hold("sendMessage", chat_ids=[ADA], limit=1)
    bot.clock.set(MEAL_UTC)
    tick = asyncio.create_task(bot.tick())
    await bot.api.wait_for(lambda: wire.arrived == 1, timeout=10, what="Ada's request")
    confirmed = confirmation(await bot.send(ADA, "/stop"), "sendMessage", "Reminders stopped")
    bot.api.drop_connection_next("sendMessage", chat_id=ADA)  # for the held request
    wire.release()
    report = await tick
    assert (report.retried, report.dropped) == (0, Counter({"unsubscribed": 1}))
    await bot.advance(timedelta(minutes=10), step=timedelta(seconds=5))
    assert [c for c in after(bot.api.calls, confirmed) if c.chat_id == ADA and c.ok] == []
    assert await ada_statuses(bot) == ["cancelled"]


async def test_a_request_already_on_the_wire_is_the_one_exception(bot: BotHarness) -> None:
    """The physics window the README states: a request that left before the person acted
    arrives; the history says so, and nothing else follows."""
    wire = bot.api.hold("sendMessage", chat_ids=[ADA], limit=1)
    bot.clock.set(MEAL_UTC)
    tick = asyncio.create_task(bot.tick())
    await bot.api.wait_for(lambda: wire.arrived == 1, timeout=10, what="Ada's request")
    await bot.send(ADA, "/stop")
    wire.release()
    report = await tick
    assert report.in_flight_when_cancelled == 1
    assert len(reminder_sends(bot.api.calls)) == 1
    assert await ada_statuses(bot) == ["sent"]
    assert reminder_sends(await bot.advance(timedelta(days=1), step=timedelta(minutes=10))) == []


async def claim_as_crashed_process(bot: BotHarness, due: datetime) -> None:
    """Another process claimed Ada's reminder, then was SIGKILLed: no release, no heartbeat."""
    store = bot.services.store
    bot.clock.set(due)
    await store.heartbeat(DEAD, due)
    await store.materialize_due(
        due, grace=timedelta(minutes=30), limit=100, choose_meal=lambda diet, recent: None
    )
    claim = await store.claim_deliveries(
        due, owner=DEAD, grace=timedelta(minutes=30), limit=100, accept=lambda c: c == ADA
    )
    assert [d.chat_id for d in claim.claimed] == [ADA]


async def test_a_crashed_processs_claim_is_not_sent_after_stop(bot: BotHarness) -> None:
    await claim_as_crashed_process(bot, MEAL_UTC)
    confirmed = confirmation(await bot.send(ADA, "/stop"), "sendMessage", "Reminders stopped")
    reports = []
    for _ in range(60):  # a simulated minute, ticking every second: well past any takeover
        bot.clock.advance(timedelta(seconds=1))
        reports.append(await bot.tick())
    assert reminder_sends(after(bot.api.calls, confirmed)) == []
    assert sum(r.taken_over for r in reports) == 0  # a cancelled row is nobody's to take
    assert await ada_statuses(bot) == ["cancelled"]


async def test_a_crashed_processs_claim_is_taken_over_within_15_seconds(
    bot: BotHarness,
) -> None:
    await claim_as_crashed_process(bot, MEAL_UTC)
    while not reminder_sends(bot.api.calls):
        assert bot.clock.now() - MEAL_UTC <= timedelta(seconds=15), "not taken over in time"
        bot.clock.advance(timedelta(seconds=1))
        await bot.tick()
    assert [c.chat_id for c in reminder_sends(bot.api.calls, ADA)] == [ADA]
    assert await ada_statuses(bot) == ["sent"]
