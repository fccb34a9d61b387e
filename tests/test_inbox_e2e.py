"""No user message lost: the inbox across restarts and kills, with the real Application."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from telegram import Bot

from bot.clock import FakeClock
from bot.fake_telegram import FakeBotApi
from bot.polling import UpdatePoller
from bot.storage import Store, open_store
from bot.storage.inbox import Inbox
from tests.botprocess import kill_with_backlog
from tests.harness import START, BotHarness, texts

ADA = 4242


async def test_sigkill_with_300_unanswered_messages_loses_none(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    report = await kill_with_backlog(fake_api, tmp_path, messages=300, kill_after=50)
    print(report.line())
    assert report.first_exit_code == -9
    assert report.lost == 0 and report.answered == 300
    # At least once: only the message being handled at the kill may be answered again.
    assert report.duplicates <= 1
    assert report.inbox == {"pending": 0, "done": 300, "failed": 0}


async def test_sigterm_with_a_backlog_stops_cleanly_and_the_next_start_answers_the_rest(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    report = await kill_with_backlog(
        fake_api, tmp_path, messages=100, kill_after=20, signal_="SIGTERM"
    )
    print(report.line())
    assert report.first_exit_code == 0 and report.exit_s < 10
    assert report.lost == 0 and report.duplicates == 0  # the update in hand was finished
    assert report.inbox == {"pending": 0, "done": 100, "failed": 0}


async def receive_only(api: FakeBotApi, store: Store) -> None:
    """What a process that died before handling anything had done: store and confirm."""
    async with Bot(api.token, base_url=api.base_url) as bot:
        poller = UpdatePoller(bot, store.inbox, FakeClock(START), on_stored=asyncio.Event())
        task = asyncio.create_task(poller.run())
        try:
            await api.wait_for(lambda: api.pending_updates() == 0, what="batch confirmed")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_updates_received_by_a_dead_process_are_answered_after_the_restart(
    bot: BotHarness,
) -> None:
    await bot.stop()
    for text in ("/help", "/tips", "/about"):
        bot.api.send_text(ADA, text)
    store = await open_store(bot.settings.database_url)
    try:
        await receive_only(bot.api, store)
        assert (await store.inbox.counts())["pending"] == 3
    finally:
        await store.close()
    assert bot.api.calls_to("sendMessage") == []  # Telegram forgot them; only the inbox has them

    await bot.start()
    calls = await bot.api.wait_for_calls("sendMessage", 3, ok_only=True)
    replies = texts(calls)
    assert "/mechanisms" in replies[0] and "doctor" in replies[1] and "Source" in replies[2]


async def test_a_batch_is_confirmed_only_once_it_is_stored(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_store = Inbox.store
    failures = 2

    async def failing_store(self: Inbox, *args: object, **kwargs: object) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise OSError("disk full")
        await real_store(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Inbox, "store", failing_store)
    with caplog.at_level(logging.INFO, logger="bot.polling"):
        update = bot.api.send_text(ADA, "/help")
        await bot.api.wait_for(lambda: failures == 0, what="two failed attempts to store")
        assert bot.api.pending_updates() == 1  # not confirmed: Telegram still has it
        [reply] = texts(await bot._handled(update))
    assert "/mechanisms" in reply
    lines = [r for r in caplog.records if r.name == "bot.polling"]
    assert [r.getMessage() for r in lines] == [
        "could not store updates in the inbox: OSError; retrying until it works",
        "polling works again",
    ]
    assert all(r.exc_info is None for r in lines)


async def test_a_redelivered_update_is_not_handled_twice(bot: BotHarness) -> None:
    update = bot.api.send_text(ADA, "/help")
    assert len(texts(await bot._handled(update))) == 1
    bot.api.push_update(dict(update))  # Telegram sends the same update_id again
    texts_after = texts(await bot.send(ADA, "/tips"))  # handled strictly after the repeat
    assert len(texts_after) == 1 and "doctor" in texts_after[0]
    helps = [t for t in bot.api.sent_texts(ADA) if "/mechanisms" in t and "What I can do" in t]
    assert len(helps) == 1


async def test_a_second_poller_on_the_token_is_one_clear_log_line(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    api = bot.api
    with caplog.at_level(logging.INFO):
        async with Bot(api.token, base_url=api.base_url) as intruder:
            for _ in range(3):
                await api.wait_for(lambda: api.long_polls_waiting > 0, what="the bot's poll")
                await intruder.get_updates(timeout=0)  # ends the bot's poll with 409
        assert texts(await bot.send(ADA, "/help"))  # polling again
    ours = [r for r in caplog.records if r.name.startswith("bot")]
    conflict = [r for r in ours if "409 Conflict" in r.getMessage()]
    assert len(conflict) == 1, [r.getMessage() for r in ours]
    assert conflict[0].levelno == logging.ERROR and conflict[0].exc_info is None
    assert "another process is polling with this bot token" in conflict[0].getMessage()
    assert [r.getMessage() for r in ours][-1] == "polling works again"
    assert not [r for r in caplog.records if r.exc_info is not None]


async def test_an_update_that_killed_three_processes_is_given_up_at_the_next_start(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    await bot.stop()
    poison, fine = bot.api.send_text(ADA, "/tips"), bot.api.send_text(ADA, "/about")
    store = await open_store(bot.settings.database_url)
    try:
        await receive_only(bot.api, store)
        for _ in range(3):  # three processes started it, and each died while handling it
            assert await store.inbox.count_attempt(poison["update_id"], START)
    finally:
        await store.close()
    with caplog.at_level(logging.ERROR, logger="bot.storage.inbox"):
        await bot.start()
        [answer] = texts(await bot._handled(fine))
    assert "Source" in answer  # /about; /tips was never answered
    assert f"update {poison['update_id']} was begun by 3 processes" in caplog.text
    assert await bot.services.store.inbox.counts() == {"pending": 0, "done": 1, "failed": 1}
