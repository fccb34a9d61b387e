"""The sleep diary end to end over the fake Bot API: the morning check-in through the durable
dispatcher (right local minute across DST, never twice after a restart, pre-filled from "Done ✅"
taps, one question after three unanswered mornings), /checkin, /diary, /progress (a real PNG,
checked by the fake), /mydata's export and /deletedata.

Time is the harness's FakeClock: ``bot.advance`` ticks the dispatcher as the JobQueue would.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text
from telegram.error import BadRequest

from bot.fake_telegram import PNG_MAGIC, ApiCall, FakeBotApi, StoredMessage
from bot.telegram_html import visible_text
from tests.conftest import TEST_TOKEN
from tests.harness import BotHarness, bot_harness, texts

ADA = 4242
BOB = 5151


def sends_with(calls: list[ApiCall], data: str, chat_id: int = ADA) -> list[ApiCall]:
    """Messages Telegram accepted for ``chat_id`` with a button whose data contains ``data``."""
    return [
        call
        for call in calls
        if call.method == "sendMessage"
        and call.ok
        and call.params.get("chat_id") == chat_id
        and data in str(call.params.get("reply_markup"))
    ]


def checkin_sends(calls: list[ApiCall], chat_id: int = ADA) -> list[ApiCall]:
    """Morning check-ins: messages carrying the rating buttons."""
    return sends_with(calls, "dy:e:", chat_id)


def stop_questions(calls: list[ApiCall], chat_id: int = ADA) -> list[ApiCall]:
    return sends_with(calls, "dy:stop", chat_id)


async def onboard_with_checkin(
    bot: BotHarness, chat_id: int = ADA, tz: str = "Europe/Berlin", bedtime: str = "22:30"
) -> None:
    """The set-up by command, diet skipped, then the last optional step: "Yes, ask me"."""
    await bot.send(chat_id, f"/timezone {tz}")
    calls = await bot.send(chat_id, f"/bedtime {bedtime}")
    assert "what do you eat?" in texts(calls)[-1]
    calls = await bot.press_label(chat_id, "Skip")
    offer = visible_text(texts(calls)[-1])
    assert "shall I ask each morning at 06:30 how you slept?" in offer
    calls = await bot.press_label(chat_id, "Yes, ask me")
    assert "I'll ask how you slept at 06:30" in visible_text(texts(calls, "editMessageText")[-1])


async def advance_to(bot: BotHarness, moment: datetime) -> list[ApiCall]:
    """Move to ``moment`` in 10-minute steps (within the 30-minute grace), the last one exact."""
    calls: list[ApiCall] = []
    while bot.clock.now() < moment:
        step = min(timedelta(minutes=10), moment - bot.clock.now())
        calls += await bot.advance(step, step=step)
    return calls


@pytest.mark.parametrize(
    ("tz", "before", "after"),
    [
        # Europe/Berlin springs forward on Sunday 2027-03-28: 06:30 is 05:30 UTC on Saturday
        # (CET) and 04:30 UTC on Sunday (CEST).
        (
            "Europe/Berlin",
            datetime(2027, 3, 27, 5, 30, tzinfo=UTC),
            datetime(2027, 3, 28, 4, 30, tzinfo=UTC),
        ),
        # America/New_York springs forward on Sunday 2027-03-14: 11:30 UTC (EST), then 10:30.
        (
            "America/New_York",
            datetime(2027, 3, 13, 11, 30, tzinfo=UTC),
            datetime(2027, 3, 14, 10, 30, tzinfo=UTC),
        ),
    ],
)
async def test_the_checkin_comes_at_the_local_wake_minute_across_a_dst_change(
    fake_api: FakeBotApi, tmp_path: Path, tz: str, before: datetime, after: datetime
) -> None:
    async with bot_harness(
        fake_api, tmp_path, TEST_TOKEN, start=before - timedelta(hours=20)
    ) as bot:
        await onboard_with_checkin(bot, tz=tz)
        for due in (before, after):
            early = await advance_to(bot, due - timedelta(minutes=1))
            assert checkin_sends(early) == []
            [sent] = checkin_sends(await bot.advance(timedelta(minutes=1)))
            assert bot.clock.now() == due
            assert "How did you sleep" in visible_text(str(sent.params["text"]))
            buttons = sent.params["reply_markup"]["inline_keyboard"]
            assert [[b["text"][0] for b in row] for row in buttons] == [["1", "2", "3", "4", "5"]]


async def test_a_checkin_is_not_sent_twice_across_restarts(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    # 2026-11-24 09:00 UTC; Berlin 22:30 bedtime → check-in 06:30 CET = 05:30 UTC on the 25th.
    async with bot_harness(fake_api, tmp_path, TEST_TOKEN) as bot:
        await onboard_with_checkin(bot)
        due = datetime(2026, 11, 25, 5, 30, tzinfo=UTC)
        assert checkin_sends(await advance_to(bot, due - timedelta(minutes=1))) == []
        await bot.restart()
        sent = checkin_sends(await bot.advance(timedelta(minutes=2)))
        assert len(sent) == 1
        await bot.restart()
        later = await bot.advance(timedelta(hours=3), step=timedelta(minutes=10))
        assert checkin_sends(later) == []
        assert len(checkin_sends(fake_api.calls)) == 1


async def test_done_taps_prefill_the_habits_and_the_entry_is_saved(bot: BotHarness) -> None:
    await onboard_with_checkin(bot)
    # The wind-down reminder (21:30 CET = 20:30 UTC): "Done ✅" on it means lights dimmed.
    await advance_to(bot, datetime(2026, 11, 24, 20, 30, tzinfo=UTC))
    wind_down = bot.last(ADA)
    assert "rem:done" in str(wind_down.buttons)
    await bot.press(ADA, wind_down.message_id, wind_down.buttons[0][1])
    [checkin] = checkin_sends(await advance_to(bot, datetime(2026, 11, 25, 5, 30, tzinfo=UTC)))
    assert "Tue 24 Nov" in visible_text(str(checkin.params["text"]))
    await bot.press_label(ADA, "4 🙂")
    labels = [label for label, _ in bot.last(ADA).buttons]
    assert "✅ Dimmed the lights" in labels
    assert "⬜ No intense exercise" in labels
    assert "⬜ B12-rich dinner" in labels
    await bot.press_label(ADA, "No intense exercise")  # toggled on
    await bot.press_label(ADA, "15–30 min")
    calls = await bot.press_label(ADA, "Save")
    saved = visible_text(texts(calls, "editMessageText")[-1])
    assert saved.startswith("Saved: night of Tue 24 Nov, 4/5.")
    entry = await bot.services.store.diary_entry(ADA, datetime(2026, 11, 24).date())
    assert entry is not None and entry.rating == 4
    assert {h.value for h in entry.habits} == {"dimmed_lights", "no_intense_exercise"}
    assert entry.onset is not None and entry.onset.value == "15to30"

    listing = visible_text(texts(await bot.send(ADA, "/diary"))[0])
    assert "Tue 24 Nov: 4/5 · Dimmed the lights, No intense exercise · 15–30 min to fall" in listing
    assert "Mon 23 Nov: —" in listing

    # A second entry for the same night replaces the first, after asking.
    ask = visible_text(texts(await bot.send(ADA, "/checkin"))[0])
    assert ask == "You already logged the night of Tue 24 Nov (4/5). Replace that entry?"
    await bot.press_label(ADA, "Replace it")
    await bot.press_label(ADA, "2 🙁")
    await bot.press_label(ADA, "Save")
    entry = await bot.services.store.diary_entry(ADA, datetime(2026, 11, 24).date())
    assert entry is not None and entry.rating == 2
    assert len(await bot.services.store.diary(ADA)) == 1


async def test_three_unanswered_mornings_bring_one_question(bot: BotHarness) -> None:
    await onboard_with_checkin(bot)
    first = datetime(2026, 11, 25, 5, 30, tzinfo=UTC)
    calls = await advance_to(bot, first + timedelta(days=2, minutes=1))
    assert len(checkin_sends(calls)) == 3 and stop_questions(calls) == []
    calls = await advance_to(bot, first + timedelta(days=3, minutes=1))
    [question] = stop_questions(calls)
    assert checkin_sends(calls) == []
    assert "the last 3 mornings" in visible_text(str(question.params["text"]))
    # Unanswered too: check-ins carry on silently, the question is not repeated.
    calls = await advance_to(bot, first + timedelta(days=5, minutes=1))
    assert len(checkin_sends(calls)) == 2 and stop_questions(calls) == []
    # Answering it turns check-ins off: nothing more comes.
    calls = await bot.press(ADA, question.result["message_id"], "dy:stop")
    assert "Morning check-ins are off" in visible_text(texts(calls, "editMessageText")[-1])
    calls = await advance_to(bot, first + timedelta(days=8))
    assert checkin_sends(calls) == [] and stop_questions(calls) == []


def fake_messages(bot: BotHarness) -> list[StoredMessage]:
    return bot.api.messages(ADA)


async def log_last_night(bot: BotHarness, rating: str = "5 😄") -> None:
    await bot.send(ADA, "/checkin")
    await bot.press_label(ADA, rating)
    await bot.press_label(ADA, "Save")


async def test_progress_sends_a_png_photo_from_the_first_night(bot: BotHarness) -> None:
    await bot.send(ADA, "/timezone Europe/Berlin")
    await log_last_night(bot)
    calls = await bot.send(ADA, "/progress")
    [photo] = [c for c in calls if c.method == "sendPhoto"]
    assert photo.ok, photo.description
    message = bot.last(ADA)
    assert message.photo is not None and message.photo.startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(message.photo)) as image:
        assert image.format == "PNG" and image.size == (1200, 800)
    caption = visible_text(str(message.caption))
    assert caption.startswith("Your last 4 weeks: 1 night logged, average rating 5.0 of 5.")
    assert "More nights will tell more" in caption


async def test_the_fake_refuses_a_photo_that_is_not_an_image(bot: BotHarness) -> None:
    assert bot.app is not None
    bot.api.add_chat(ADA)
    with pytest.raises(BadRequest, match=r"(?i)image_process_failed"):
        await bot.app.bot.send_photo(ADA, PNG_MAGIC + b"truncated")


async def test_mydata_exports_the_diary_and_deletedata_erases_it(bot: BotHarness) -> None:
    await bot.send(ADA, "/timezone Europe/Berlin")
    await log_last_night(bot, "3 😐")
    calls = await bot.send(ADA, "/mydata")
    assert '"rating": 3' in visible_text(texts(calls)[0])
    [document] = [c for c in calls if c.method == "sendDocument"]
    assert document.ok
    exported = bot.last(ADA)
    assert exported.file_name == "sleep-diary.csv" and exported.document is not None
    rows = list(csv.DictReader(io.StringIO(exported.document.decode())))
    assert [(row["night"], row["rating"]) for row in rows] == [("2026-11-23", "3")]
    assert "kept until you delete them" in visible_text(str(exported.caption))

    await bot.send(ADA, "/deletedata")
    await bot.press_label(ADA, "Yes, erase it")
    assert await bot.services.store.diary(ADA) == []
    assert "No nights logged yet" in visible_text(texts(await bot.send(ADA, "/diary"))[0])


async def test_forged_diary_buttons_get_a_clear_reply(bot: BotHarness) -> None:
    await bot.send(ADA, "/timezone Europe/Berlin")
    await bot.send(ADA, "/checkin")
    message = bot.last(ADA)
    for forged in ("dy:s:20991231:5:7:n", "dy:s:20261131:5:0:n", "dy:s:20261123:9:0:n", "dy:x"):
        calls = await bot.press(ADA, message.message_id, forged, check=False)
        assert "doesn't belong to a check-in" in visible_text(texts(calls)[-1]), forged
    assert await bot.services.store.diary(ADA) == []


async def test_settings_switch_the_checkin_on_and_off(bot: BotHarness) -> None:
    await bot.send(ADA, "/timezone Europe/Berlin")
    await bot.send(ADA, "/bedtime 23:00")
    await bot.press_label(ADA, "Skip")
    await bot.send(ADA, "/settings")
    calls = await bot.press_label(ADA, "⬜ Morning check-in")
    assert "at 07:00" in visible_text(texts(calls)[-1])
    person = await bot.services.store.get_person(ADA)
    assert person is not None and person.checkin_on and person.checkin is not None
    # 07:00 CET on 25 Nov, then 30 minutes later with "Later".
    assert person.checkin.next_fire_at == datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    view = next(m for m in reversed(fake_messages(bot)) if ("Later", "dy:later") in m.buttons)
    calls = await bot.press(ADA, view.message_id, "dy:later")
    assert "Morning check-in: on, at 07:30" in visible_text(texts(calls, "editMessageText")[-1])
    person = await bot.services.store.get_person(ADA)
    assert person is not None and person.checkin is not None
    assert person.checkin.next_fire_at == datetime(2026, 11, 25, 6, 30, tzinfo=UTC)
    await bot.press_label(ADA, "✅ Morning check-in")
    person = await bot.services.store.get_person(ADA)
    assert person is not None and not person.checkin_on
    calls = await advance_to(bot, datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    assert checkin_sends(calls) == []


async def test_the_weekly_chart_comes_on_the_chosen_morning(bot: BotHarness) -> None:
    await bot.send(ADA, "/timezone Europe/Berlin")
    await bot.send(ADA, "/bedtime 22:30")
    await bot.press_label(ADA, "Skip")
    await log_last_night(bot, "4 🙂")  # the night of Mon 23 Nov
    await bot.send(ADA, "/settings")
    calls = await bot.press_label(ADA, "⬜ Weekly chart")
    assert "on Sundays at 09:00" in visible_text(texts(calls)[-1])
    # Sunday 29 Nov, 09:00 CET = 08:00 UTC; nothing before, one photo then, none after.
    sunday = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    early = await advance_to(bot, sunday - timedelta(minutes=1))
    assert [c for c in early if c.method == "sendPhoto"] == []
    [photo] = [c for c in await bot.advance(timedelta(minutes=1)) if c.method == "sendPhoto"]
    assert photo.ok, photo.description
    message = bot.last(ADA)
    assert message.photo is not None and message.photo.startswith(PNG_MAGIC)
    caption = visible_text(str(message.caption))
    assert caption.startswith("Your week — the weekly chart you asked for")
    assert "1 night logged, average rating 4.0 of 5." in caption
    await bot.restart()
    later = await advance_to(bot, sunday + timedelta(days=1))
    assert [c for c in later if c.method == "sendPhoto"] == []
    # "Change day" moves it to Mondays; turned off, it stops.
    await bot.send(ADA, "/settings")
    calls = await bot.press_label(ADA, "Change day")
    assert "Weekly chart: on, on Mondays at 09:00" in visible_text(
        texts(calls, "editMessageText")[-1]
    )
    await bot.press_label(ADA, "✅ Weekly chart")
    later = await advance_to(bot, sunday + timedelta(days=8))
    assert [c for c in later if c.method == "sendPhoto"] == []


async def test_a_night_logged_with_checkin_is_not_asked_about_again(bot: BotHarness) -> None:
    """/checkin before the morning's check-in: that morning stays quiet (the delivery is
    recorded as skipped); the next morning asks as usual."""
    await onboard_with_checkin(bot)
    # 2026-11-25 06:00 Berlin (05:00 UTC): up early, the person logs the night themselves.
    await advance_to(bot, datetime(2026, 11, 25, 5, 0, tzinfo=UTC))
    await log_last_night(bot)
    quiet = await advance_to(bot, datetime(2026, 11, 25, 6, 0, tzinfo=UTC))
    assert checkin_sends(quiet) == []
    async with bot.services.store.engine.connect() as connection:
        statuses = (
            await connection.execute(
                text("SELECT status, last_error FROM deliveries WHERE kind = 'checkin'")
            )
        ).all()
    assert [tuple(row) for row in statuses] == [("skipped", "night already logged")]
    [asked] = checkin_sends(await advance_to(bot, datetime(2026, 11, 26, 5, 31, tzinfo=UTC)))
    assert "How did you sleep" in visible_text(str(asked.params["text"]))
