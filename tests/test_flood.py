"""Incoming flood control on a FakeClock, and the update processor that applies it."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from telegram import Bot, Update

from bot.clock import FakeClock
from bot.flood import FloodGate, Verdict
from bot.updates import ChatUpdateProcessor, button_of, update_text

START = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
SPAMMER = 666
PERSON = 4242


def gate(**options: Any) -> FloodGate:
    return FloodGate(FakeClock(START), **options)


def verdicts(flood: FloodGate, source: int, count: int, **arrival: Any) -> list[Verdict]:
    return [flood.arrive(source, **arrival) for _ in range(count)]


def test_a_person_typing_fast_but_humanly_is_never_dropped() -> None:
    flood = gate()
    assert isinstance(flood.clock, FakeClock)
    for _ in range(200):  # one message every half second, for 100 s
        assert flood.arrive(PERSON) is Verdict.ADMIT
        flood.finished(PERSON)
        flood.clock.advance(timedelta(seconds=0.5))
    assert flood.counters.dropped == 0


def test_300_at_once_admit_20_then_one_notice_then_drops(caplog: pytest.LogCaptureFixture) -> None:
    flood = gate()
    with caplog.at_level(logging.INFO, logger="bot.flood"):
        seen = verdicts(flood, SPAMMER, 300)
    assert seen[:20] == [Verdict.ADMIT] * 20
    assert seen[20] is Verdict.NOTIFY
    assert seen[21:] == [Verdict.DROP] * 279
    counters = flood.counters
    assert (counters.admitted, counters.dropped, counters.floods) == (20, 280, 1)
    assert len([r for r in caplog.records if "dropping its excess" in r.getMessage()]) == 1
    assert flood.arrive(PERSON) is Verdict.ADMIT  # nobody else is affected


def test_a_continuous_flood_gets_one_notice_and_stays_dropped_until_it_slows() -> None:
    flood = gate()
    assert isinstance(flood.clock, FakeClock)
    seen = []
    for _ in range(180):  # three a second for a minute
        seen.append(flood.arrive(SPAMMER))
        flood.clock.advance(timedelta(seconds=1 / 3))
    assert seen.count(Verdict.NOTIFY) == 1
    assert seen[-60:] == [Verdict.DROP] * 60


def test_after_a_quiet_window_the_chat_is_heard_and_the_burst_is_summed_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flood = gate()
    assert isinstance(flood.clock, FakeClock)
    verdicts(flood, SPAMMER, 300)
    for _ in range(20):  # the admitted ones were handled meanwhile
        flood.finished(SPAMMER)
    flood.clock.advance(timedelta(seconds=10))
    with caplog.at_level(logging.INFO, logger="bot.flood"):
        assert flood.arrive(SPAMMER) is Verdict.ADMIT
    assert "flood over: 280 updates dropped" in caplog.text
    # A new burst later is a new flood: one more notice.
    flood.finished(SPAMMER)
    flood.clock.advance(timedelta(seconds=10))
    assert verdicts(flood, SPAMMER, 25).count(Verdict.NOTIFY) == 1
    assert flood.counters.floods == 2


def test_admitted_updates_waiting_per_chat_are_bounded() -> None:
    flood = gate(max_updates=5)
    assert isinstance(flood.clock, FakeClock)
    seen = []
    for _ in range(8):  # slow enough for the rate rule, but none of them finishes
        seen.append(flood.arrive(SPAMMER))
        flood.clock.advance(timedelta(seconds=3))
    assert seen[:5] == [Verdict.ADMIT] * 5 and Verdict.ADMIT not in seen[5:]
    flood.finished(SPAMMER)
    assert flood.arrive(SPAMMER) is Verdict.ADMIT


def test_a_button_pressed_again_while_in_hand_is_coalesced() -> None:
    flood = gate()
    press = ("button", 17, "mech:3")
    assert flood.arrive(PERSON, button=press) is Verdict.ADMIT
    assert verdicts(flood, PERSON, 3, button=press) == [Verdict.COALESCE] * 3
    assert flood.arrive(PERSON, button=("button", 17, "mech:4")) is Verdict.ADMIT
    flood.finished(PERSON, button=press)
    assert flood.arrive(PERSON, button=press) is Verdict.ADMIT
    assert flood.counters.coalesced == 3


def test_exempt_updates_always_pass_even_mid_flood() -> None:
    flood = gate()
    verdicts(flood, SPAMMER, 50)
    assert flood.arrive(SPAMMER, exempt=True) is Verdict.ADMIT
    assert flood.counters.exempted == 1


def test_exempt_updates_do_not_count_towards_the_rate() -> None:
    """Someone who writes many crisis messages still gets their next ordinary one answered."""
    flood = gate(max_updates=5)
    for _ in range(30):
        assert flood.arrive(PERSON, exempt=True) is Verdict.ADMIT
        flood.finished(PERSON)
    assert flood.arrive(PERSON) is Verdict.ADMIT
    assert flood.counters.dropped == 0


# --- the update processor ---------------------------------------------------------------------


def message_update(update_id: int, chat: int, text: str, *, sender: int | None = None) -> Update:
    """A text message; a negative `chat` is a group, where `sender` says who wrote it."""
    kind = {"type": "group", "title": "G"} if chat < 0 else {"type": "private", "first_name": "A"}
    return Update.de_json(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 0,
                "chat": {"id": chat, **kind},
                "from": {"id": sender or chat, "is_bot": False, "first_name": "A"},
                "text": text,
            },
        },
        None,
    )


async def test_chats_run_concurrently_and_each_chat_in_order() -> None:
    processor = ChatUpdateProcessor(gate(), lambda update: "slow down")
    order: list[str] = []
    release_first = asyncio.Event()

    async def handle(label: str, wait: asyncio.Event | None = None) -> None:
        order.append(f"start {label}")
        if wait is not None:
            await wait.wait()
        order.append(f"end {label}")

    first = asyncio.create_task(
        processor.process_update(message_update(1, PERSON, "a"), handle("a1", release_first))
    )
    second = asyncio.create_task(
        processor.process_update(message_update(2, PERSON, "b"), handle("a2"))
    )
    other = asyncio.create_task(
        processor.process_update(message_update(3, SPAMMER, "c"), handle("b1"))
    )
    await asyncio.wait_for(other, 5)  # another chat is not stuck behind the slow one
    assert order == ["start a1", "start b1", "end b1"]
    release_first.set()
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert order[3:] == ["end a1", "start a2", "end a2"]  # the same chat, in order


async def test_a_broken_exemption_rule_lets_the_update_through() -> None:
    def broken(update: Update) -> bool:
        raise RuntimeError("bug")

    flood = gate(max_updates=1)
    processor = ChatUpdateProcessor(flood, lambda update: "slow down", exempt=broken)
    handled: list[int] = []

    async def handle(n: int) -> None:
        handled.append(n)

    for n in range(5):
        await processor.process_update(message_update(n, SPAMMER, "help"), handle(n))
    assert handled == [0, 1, 2, 3, 4]


class NoticeRecorder:
    """Stands in for the Bot a dropped update would use to send the one notice."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    async def send_message(self, chat_id: int, text: str) -> None:
        self.sent.append((chat_id, text))


async def test_a_flood_is_told_once_and_crisis_text_still_gets_through() -> None:
    flood = gate(max_updates=2)
    processor = ChatUpdateProcessor(
        flood, lambda update: "slow down", exempt=lambda update: "urgent" in update_text(update)
    )
    notices = NoticeRecorder()
    handled: list[str] = []

    async def handle(text: str) -> None:
        handled.append(text)

    for n, text in enumerate(["a", "b", "c", "urgent: please read", "d", "e"]):
        update = message_update(n, SPAMMER, text)
        update.set_bot(cast(Bot, notices))
        await processor.process_update(update, handle(text))
    assert handled == ["a", "b", "urgent: please read"]
    assert notices.sent == [(SPAMMER, "slow down")]
    assert button_of(message_update(9, PERSON, "x")) is None


async def test_in_a_group_one_person_flooding_does_not_silence_the_others() -> None:
    group = -100
    processor = ChatUpdateProcessor(gate(max_updates=3), lambda update: "slow down")
    notices = NoticeRecorder()
    handled: list[int] = []

    async def handle(sender: int) -> None:
        handled.append(sender)

    for n in range(6):
        update = message_update(n, group, "/help", sender=SPAMMER)
        update.set_bot(cast(Bot, notices))
        await processor.process_update(update, handle(SPAMMER))
    await processor.process_update(message_update(9, group, "/help", sender=PERSON), handle(PERSON))
    assert handled == [SPAMMER] * 3 + [PERSON]
    assert notices.sent == [(group, "slow down")]
