"""Fair under load (issue 12), end to end: the real Application with the production limiter
and update processor, against the fake Bot API enforcing Telegram's limits (1 msg/s per chat
after a burst of 3, 30 msg/s in all) and answering 429 above them.

These run on real monotonic time, because the limits are about real seconds: every wait is
on a condition with a bound, never a sleep. The spammer test takes ~22 s (20 replies at one
per 1.1 s); the reminder test ~4 s.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import pytest
from sqlalchemy import insert
from telegram.ext import ExtBot

from bot.clock import SystemClock
from bot.content import default_content_dir, load_content
from bot.dispatch import Dispatcher
from bot.fake_telegram import ApiCall, ChatRate, FakeBotApi
from bot.ratelimit import FairRateLimiter
from bot.storage import Store
from bot.storage.models import PEOPLE, REMINDERS
from tests.conftest import TEST_TOKEN
from tests.harness import BotHarness, bot_harness
from tests.pg import BACKENDS, fresh_database

SPAMMER = 666
PERSON = 4242
TELEGRAM_CHAT_RATE = ChatRate(per_second=1.0, burst=3)
TELEGRAM_GLOBAL_RATE = 30
MESSAGES = ("sendMessage", "editMessageText", "editMessageReplyMarkup")

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


@pytest.fixture
async def strict_api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(
        TEST_TOKEN,
        enforce_global_rate=TELEGRAM_GLOBAL_RATE,
        enforce_chat_rate=TELEGRAM_CHAT_RATE,
    ) as api:
        yield api


def to_chat(api: FakeBotApi, chat: int, *, ok_only: bool = False) -> list[ApiCall]:
    return [
        call
        for method in MESSAGES
        for call in api.calls_to(method, ok_only=ok_only)
        if call.chat_id == chat
    ]


def busiest_second(calls: list[ApiCall]) -> int:
    times = sorted(call.at for call in calls)
    return max((len([t for t in times if s <= t <= s + 1.0]) for s in times), default=0)


async def test_a_spammer_cannot_starve_a_newcomer_and_is_told_once(
    strict_api: FakeBotApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = strict_api
    async with bot_harness(api, tmp_path, TEST_TOKEN, rate_limit=True) as bot:
        slow_down = bot.services.content.render_slow_down()
        for _ in range(150):
            api.send_text(SPAMMER, "/help")
        asked = time.monotonic()
        api.send_text(PERSON, "/start", first_name="Newcomer")
        for _ in range(150):
            api.send_text(SPAMMER, "/help")

        await api.wait_for(lambda: bool(to_chat(api, PERSON, ok_only=True)), 5, what="welcome")
        welcome_after = to_chat(api, PERSON, ok_only=True)[0].at - asked

        flood = bot.services.flood
        assert flood is not None
        await api.wait_for(
            lambda: flood.counters.admitted + flood.counters.dropped == 301, 10, what="all seen"
        )
        # Every update is finished once its reply is out (or it was dropped); then nothing
        # more can come.
        await api.wait_for(lambda: bot.processed == 301, 60, what="replies sent")
        await api.wait_for(
            lambda: slow_down in api.sent_texts(SPAMMER), 10, what="the slow-down notice"
        )
        spammer_calls = to_chat(api, SPAMMER)
        spammer_texts = api.sent_texts(SPAMMER)

    refused = [call for call in spammer_calls if call.status == 429]
    accepted = [call for call in spammer_calls if call.ok]
    strict_1_per_s = [
        v
        for v in api.flood_violations(1.0, TELEGRAM_GLOBAL_RATE, methods=MESSAGES)
        if v.chat_id == SPAMMER
    ]
    with capsys.disabled():
        print(
            f"\n[spammer] newcomer's /start answered after {welcome_after:.2f} s; spammer: "
            f"{flood.counters.admitted - 1} admitted, {flood.counters.dropped} dropped, "
            f"{len(accepted)} messages sent over {accepted[-1].at - accepted[0].at:.1f} s "
            f"(busiest second {busiest_second(accepted)}, {len(refused)} × 429, "
            f"{len(strict_1_per_s)} sends inside a strict 1 s spacing: the burst)"
        )
    assert welcome_after <= 2.0
    assert spammer_texts.count(slow_down) == 1
    assert (flood.counters.admitted, flood.counters.dropped, flood.counters.floods) == (21, 280, 1)
    assert len(accepted) == 21  # 20 replies and the notice: bounded
    assert refused == []  # never above the per-chat limit Telegram enforces...
    assert [
        v
        for v in api.flood_violations(1.0, TELEGRAM_GLOBAL_RATE, per_chat_burst=3, methods=MESSAGES)
        if v.chat_id == SPAMMER
    ] == []  # ...by the fake's own check or by the after-the-fact analysis
    assert busiest_second(accepted) <= 3


async def test_a_double_tapped_button_is_handled_once_and_both_spinners_stop(
    fake_api: FakeBotApi, bot: BotHarness
) -> None:
    await bot.send(PERSON, "/mechanisms")
    index = bot.last(PERSON)
    data = index.buttons[2][1]
    first = fake_api.press_button(PERSON, index.message_id, data)
    second = fake_api.press_button(PERSON, index.message_id, data)
    await fake_api.wait_for(
        lambda: all(fake_api.answered_callback(q) for q in (first, second)), 5, what="answers"
    )
    await fake_api.wait_for(lambda: bool(fake_api.calls_to("editMessageText")), 5, what="edit")
    flood = bot.services.flood
    assert flood is not None and flood.counters.coalesced == 1
    assert len(fake_api.calls_to("editMessageText")) == 1


async def test_crisis_text_is_never_dropped_even_mid_flood(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    """The production exemption (bot.app.crisis_exempt, i.e. the safety triage) is in force."""
    async with bot_harness(fake_api, tmp_path, TEST_TOKEN, flood_max_updates=3) as bot:
        for _ in range(10):
            fake_api.send_text(SPAMMER, "/help")
        calls = await bot.send(SPAMMER, "I can't go on like this")
    replies = [call for call in calls if call.chat_id == SPAMMER and call.method == "sendMessage"]
    assert "findahelpline.com" in str(replies[-1].params["text"])
    flood = bot.services.flood
    assert flood is not None and flood.counters.exempted == 1


# --- reminders ------------------------------------------------------------------------------

DUE = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
FLOODED = 9000


async def subscribe(bot: BotHarness, chats: range) -> None:
    store, now = bot.services.store, bot.clock.now()
    for chat in chats:
        bot.api.add_chat(chat)
        await store.ensure_person(chat, now)
        await store.set_timezone(chat, "UTC", now)
        await store.set_bedtime(chat, clock_time(22, 0), now)  # wind-down due at 21:00 UTC
        await store.subscribe(chat, now)
        for kind in store.kinds:
            if kind != "wind_down":
                await store.set_reminder(chat, kind, now, enabled=False)


async def test_one_chats_30_s_flood_wait_delays_the_other_reminders_by_at_most_2_s(
    strict_api: FakeBotApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = strict_api
    async with bot_harness(
        api, tmp_path, TEST_TOKEN, start=DUE - timedelta(hours=6), rate_limit=True
    ) as bot:
        chats = range(FLOODED, FLOODED + 100)
        await subscribe(bot, chats)
        api.fail_next("sendMessage", error_code=429, retry_after=30, chat_id=FLOODED)
        bot.clock.set(DUE)
        started = time.monotonic()
        report = await bot.tick()
    others = sorted(
        (call for call in api.calls_to("sendMessage", ok_only=True) if call.chat_id != FLOODED),
        key=lambda call: call.at,
    )
    delays = [call.at - started - k / TELEGRAM_GLOBAL_RATE for k, call in enumerate(others, 1)]
    with capsys.disabled():
        print(
            f"\n[429 in one chat] {len(others)} other reminders in "
            f"{others[-1].at - started:.2f} s, max delay beyond k/30 s {max(delays):.2f} s, "
            f"{report.summary()}"
        )
    assert (report.sent, report.retried) == (99, 1)
    assert [call.status for call in api.calls_to("sendMessage") if call.chat_id == FLOODED] == [429]
    assert max(delays) <= 2.0


# --- item 5: no duplicate when sending outlasts a claim -------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_dispatchers_with_slow_sends_and_a_short_claim_send_each_reminder_once(
    tmp_path: Path, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12 item 5, scaled down: 30 due, each dispatcher's limiter at 10 msg/s (3 s to
    send what it claimed), claims given up after 1 s without a heartbeat, the second
    dispatcher ticking while the first sends. Each heartbeats from its own task (as
    post_init starts it), so a slow but live owner keeps its claims."""
    content = load_content(default_content_dir())
    offsets: dict[str, int] = {k.kind: k.default_offset_minutes for k in content.reminder_kinds}
    now = datetime.now(UTC)
    chats = list(range(20_001, 20_031))
    async with fresh_database(backend, tmp_path) as db:
        stores = [await db.open_store(offsets), await db.open_store(offsets)]
        try:
            await insert_due(stores[0], chats, now)
            async with FakeBotApi(TEST_TOKEN) as api:
                for chat in chats:
                    api.add_chat(chat)
                bots = [
                    ExtBot(TEST_TOKEN, base_url=api.base_url, rate_limiter=FairRateLimiter(10))
                    for _ in stores
                ]
                async with bots[0], bots[1]:
                    first, second = (
                        Dispatcher(
                            store,
                            bot,
                            content,
                            SystemClock(),
                            heartbeat_every=timedelta(seconds=0.25),
                            dead_after=timedelta(seconds=1),
                        )
                        for store, bot in zip(stores, bots, strict=True)
                    )
                    await first.start()
                    await second.start()
                    sending = asyncio.create_task(first.tick())
                    await api.wait_for(
                        lambda: len(api.calls_to("sendMessage")) >= 15, 10, what="half sent"
                    )
                    await asyncio.gather(sending, second.tick())
                    await first.stop()
                    await second.stop()
                sent = Counter(c.chat_id for c in api.calls_to("sendMessage", ok_only=True))
        finally:
            for store in stores:
                await store.close()
    duplicates = sum(n - 1 for n in sent.values())
    with capsys.disabled():
        print(f"\n[short claim, {backend}] {sum(sent.values())} sends, {duplicates} duplicates")
    assert set(sent) == set(chats) and duplicates == 0


async def insert_due(store: Store, chats: list[int], now: datetime) -> None:
    """People with one wind-down reminder each, due now (bulk, as the 10k test does)."""
    async with store.engine.begin() as connection:
        await connection.execute(
            insert(PEOPLE),
            [
                {
                    "chat_id": chat, "timezone": "UTC", "bedtime": clock_time(22, 0),
                    "diet": "omnivore", "subscribed": True, "recent_meals": [],
                    "created_at": now, "updated_at": now,
                }
                for chat in chats
            ],
        )  # fmt: skip
        await connection.execute(
            insert(REMINDERS),
            [
                {
                    "chat_id": chat, "kind": "wind_down", "enabled": True,
                    "offset_minutes": 60, "next_fire_at": now,
                }
                for chat in chats
            ],
        )  # fmt: skip
