"""Nightly reminders end to end: onboarding, delivery at the right minute, buttons, restart.

The clock is a FakeClock: `bot.advance()` moves it minute by minute and ticks the dispatcher
as the JobQueue would, so a whole evening passes in milliseconds without sleeping.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.app import StartupError
from bot.fake_telegram import ApiCall, FakeBotApi, StoredMessage
from bot.telegram_html import visible_text
from tests.catalogue import NOT_YOURS
from tests.conftest import TEST_TOKEN
from tests.harness import BotHarness, bot_harness, texts

ADA = 4242
BOB = 5151
# 2026-11-24 09:00 UTC = 10:00 in Berlin (CET, UTC+1). Bedtime 22:30 → meal 18:30,
# exercise 19:30, wind down 21:30 local = 17:30, 18:30, 20:30 UTC.
MEAL_UTC = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)


def reminder_sends(calls: list[ApiCall], chat_id: int = ADA) -> list[ApiCall]:
    return [
        c
        for c in calls
        if c.method == "sendMessage" and c.ok and c.params.get("chat_id") == chat_id
        and any("rem:" in b[1] for b in _buttons(c))
    ]  # fmt: skip


def _buttons(call: ApiCall) -> list[tuple[str, str]]:
    markup = call.params.get("reply_markup") or {}
    rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
    return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]


def fake_api_message(bot: BotHarness, message_id: int) -> StoredMessage:
    message = bot.api.message(ADA, message_id)
    assert message is not None
    return message


async def onboard(bot: BotHarness, chat_id: int = ADA, tz: str = "Europe/Berlin") -> None:
    """The first set-up by command; its last question (the diet) is skipped."""
    await bot.send(chat_id, f"/timezone {tz}")
    calls = await bot.send(chat_id, "/bedtime 22:30")
    assert "what do you eat?" in texts(calls)[-1]
    calls = await bot.press_label(chat_id, "Skip")
    assert "You're set up" in texts(calls, "editMessageText")[-1]


async def test_onboarding_from_start_lists_tonights_reminders_in_local_time(
    bot: BotHarness,
) -> None:
    await bot.send(ADA, "/start")
    calls = await bot.press_label(ADA, "Set up nightly reminders")
    prompt = [c for c in calls if c.method == "sendMessage"][-1]
    keyboard = prompt.params["reply_markup"]["keyboard"]
    assert keyboard[0][0]["request_location"] is True

    calls = await bot.send(ADA, "berlin")  # free text answers the open prompt
    said = [visible_text(t) for t in texts(calls)]
    assert "Timezone set to Europe/Berlin (UTC+01:00)." in said[0]
    assert "When do you usually go to bed?" in said[1]
    assert [label for label, _ in bot.last(ADA).buttons][:9] == [
        "21:00", "21:30", "22:00", "22:30", "23:00", "23:30", "00:00", "00:30", "01:00",
    ]  # fmt: skip

    await bot.press_label(ADA, "22:30")
    question = bot.last(ADA)  # the bedtime buttons became the last question: the diet
    assert "what do you eat?" in visible_text(question.raw_text or "")
    assert [label for label, _ in question.buttons] == [
        "I eat everything", "Fish, no meat", "Vegetarian (eggs, dairy)", "Vegan",
        "Skip (I eat everything)",
    ]  # fmt: skip
    await bot.press_label(ADA, "Vegetarian")
    edited = fake_api_message(bot, question.message_id)  # edited in place
    summary = visible_text(edited.raw_text or "")
    assert summary.startswith("✅ You're set up.")
    # Then one new message: the optional morning check-in (the sleep diary, issue 9).
    offer = bot.last(ADA)
    assert offer.message_id == question.message_id + 1
    assert [data for _, data in offer.buttons] == ["dy:yes", "dy:skip"]
    assert "Bedtime: 22:30" in summary
    assert "Meal ideas for: vegetarian" in summary
    assert "today 18:30 — Tonight's meal idea" in summary
    assert "today 19:30 — Ease off on exercise" in summary
    assert "today 21:30 — Time to wind down" in summary


async def test_a_shared_location_sets_the_timezone(bot: BotHarness) -> None:
    await bot.send(ADA, "/timezone")
    calls = await bot.share_location(ADA, 27.7172, 85.3240)  # Kathmandu
    assert "Asia/Kathmandu (UTC+05:45)" in visible_text(texts(calls)[0])
    assert calls[0].params["reply_markup"] == {"remove_keyboard": True}


async def test_an_ambiguous_city_asks_did_you_mean(bot: BotHarness) -> None:
    calls = await bot.send(ADA, "/timezone springfield")
    assert texts(calls) == ["Did you mean one of these?"]
    labels = [label for label, _ in bot.last(ADA).buttons]
    assert len(labels) >= 2
    await bot.press(ADA, bot.last(ADA).message_id, bot.last(ADA).buttons[0][1])
    person = await bot.services.store.get_person(ADA)
    assert person is not None and person.timezone is not None
    assert person.timezone.startswith("America/")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("/bedtime 25:99", "/bedtime 22:30"),
        ("/bedtime soon", "/bedtime 22:30"),
        ("/bedtime weekend 99", "/bedtime weekend 23:30"),
        ("/timezone Mars/Olympus", "Mars/Olympus"),
        ("/timezone UTC+15", "UTC"),
        ("/pause forever", "/pause 3"),
    ],
)
async def test_bad_input_gets_a_clear_reply_with_an_example(
    bot: BotHarness, typed: str, expected: str
) -> None:
    calls = await bot.send(ADA, typed)
    [reply] = texts(calls)
    assert expected in visible_text(reply)
    person = await bot.services.store.get_person(ADA)
    assert person is None or (person.bedtime is None and person.timezone is None)


async def test_the_whole_evening_snooze_restart_and_stop(bot: BotHarness) -> None:
    await onboard(bot)

    # Nothing a minute early; the meal idea exactly at 18:30 Berlin, once.
    early = await bot.advance(MEAL_UTC - timedelta(minutes=1) - bot.clock.now())
    assert reminder_sends(early) == []
    calls = await bot.advance(timedelta(minutes=1))
    [meal] = reminder_sends(calls)
    assert "meal idea" in visible_text(meal.params["text"]).lower()
    assert [label for label, _ in _buttons(meal)] == [
        "Done ✅", "Snooze 15 min", "Why?", "Turn this off",
    ]  # fmt: skip

    # Snooze: the same reminder again 15 minutes later, and only then.
    await bot.press_label(ADA, "Snooze 15 min")
    assert "Snoozed until 18:45" in visible_text(bot.last(ADA).raw_text or "")
    assert len(bot.last(ADA).buttons) == 4  # Done / Turn this off still within reach
    assert reminder_sends(await bot.advance(timedelta(minutes=14))) == []
    [again] = reminder_sends(await bot.advance(timedelta(minutes=1)))
    assert again.params["text"] == meal.params["text"]

    # A restart: a new Application on the same database keeps everything.
    await bot.restart()
    settings_text = visible_text(texts(await bot.send(ADA, "/settings"))[0])
    assert "Europe/Berlin" in settings_text and "Bedtime: 22:30" in settings_text
    # The exercise reminder at 19:30 Berlin comes exactly once, even with extra ticks.
    calls = await bot.advance(timedelta(minutes=45))
    [exercise] = reminder_sends(calls)
    assert "exercise" in visible_text(exercise.params["text"]).lower()
    for _ in range(5):
        await bot.tick()
    all_exercise = [
        c for c in reminder_sends(bot.api.calls) if "exercise" in visible_text(c.params["text"])
    ]
    assert all_exercise == [exercise]

    # /stop: nothing more, tonight or any night.
    await bot.send(ADA, "/stop")
    assert reminder_sends(await bot.advance(timedelta(days=2), step=timedelta(minutes=10))) == []


async def test_why_back_done_and_turn_off(bot: BotHarness) -> None:
    await onboard(bot)
    await bot.advance(MEAL_UTC - bot.clock.now())
    reminder = bot.last(ADA)
    original = reminder.raw_text

    await bot.press_label(ADA, "Why?")
    assert "moderate" in (bot.last(ADA).text or "")
    await bot.press_label(ADA, "Back")
    assert bot.last(ADA).raw_text == original and len(bot.last(ADA).buttons) == 4

    await bot.press_label(ADA, "Turn this off")
    assert "reminders are off" in (bot.last(ADA).text or "")
    # Tomorrow: exercise and wind-down still come, the meal idea does not.
    calls = await bot.advance(timedelta(days=1, hours=4), step=timedelta(minutes=5))
    kinds = [visible_text(c.params["text"]).splitlines()[0] for c in reminder_sends(calls)]
    assert kinds == ["Ease off on exercise", "Time to wind down"] * 2  # tonight and tomorrow
    assert not any("meal" in k.lower() for k in kinds)


async def test_someone_elses_reminder_buttons_are_refused(bot: BotHarness) -> None:
    await onboard(bot)
    await bot.advance(MEAL_UTC - bot.clock.now())
    [(_, done_data), *_] = bot.last(ADA).buttons
    await bot.send(BOB, "/help")
    bob_message = bot.last(BOB).message_id
    calls = await bot.press(BOB, bob_message, done_data, check=False)
    [answer] = [c for c in calls if c.method == "answerCallbackQuery"]
    assert answer.params["text"] == NOT_YOURS
    assert not [c for c in calls if c.method == "editMessageText"]


async def test_a_person_who_blocked_the_bot_is_deactivated(bot: BotHarness) -> None:
    await onboard(bot)
    bot.api.block_chat(ADA)
    calls = await bot.advance(MEAL_UTC - bot.clock.now())
    refused = [c for c in calls if c.method == "sendMessage" and c.status == 403]
    assert len(refused) == 1
    person = await bot.services.store.get_person(ADA)
    assert person is not None and person.blocked
    assert all(r.next_fire_at is None for r in person.reminders)
    # No more attempts, however long we wait.
    later = await bot.advance(timedelta(days=2), step=timedelta(minutes=10))
    assert [c for c in later if c.method == "sendMessage"] == []

    # They unblock and write again: reminders resume.
    bot.api.unblock_chat(ADA)
    await bot.send(ADA, "/start")
    person = await bot.services.store.get_person(ADA)
    assert person is not None and not person.blocked
    assert any(r.next_fire_at is not None for r in person.reminders)


async def test_pause_skips_tonight_and_resume_restores(bot: BotHarness) -> None:
    await onboard(bot)
    reply = visible_text(texts(await bot.send(ADA, "/pause 1"))[0])
    assert "paused until" in reply
    assert reminder_sends(await bot.advance(timedelta(hours=14), step=timedelta(minutes=5))) == []
    # Tomorrow evening reminders come again without /resume.
    tomorrow = await bot.advance(timedelta(hours=24), step=timedelta(minutes=5))
    assert len(reminder_sends(tomorrow)) == 3


async def test_mydata_and_deletedata(bot: BotHarness) -> None:
    await onboard(bot)
    mydata = texts(await bot.send(ADA, "/mydata"))[0]
    assert "Europe/Berlin" in mydata and "22:30" in mydata
    await bot.send(ADA, "/deletedata")
    await bot.press_label(ADA, "Yes, erase it")
    assert "Erased" in (bot.last(ADA).text or "")
    assert await bot.services.store.get_person(ADA) is None
    assert "nothing" in texts(await bot.send(ADA, "/mydata"))[0]


async def test_settings_buttons_change_offsets_and_toggle(bot: BotHarness) -> None:
    await onboard(bot)
    await bot.send(ADA, "/settings")
    message_id = bot.last(ADA).message_id
    earlier = next(d for label, d in bot.last(ADA).buttons if d == "set:earlier:wind_down")
    await bot.press(ADA, message_id, earlier)
    assert "Time to wind down: 1 h 15 min before bedtime" in (bot.last(ADA).text or "")
    await bot.press(ADA, message_id, "set:toggle:exercise")
    person = await bot.services.store.get_person(ADA)
    assert person is not None
    by_kind = {r.kind: r for r in person.reminders}
    assert by_kind["wind_down"].offset_minutes == 75
    assert not by_kind["exercise"].enabled and by_kind["exercise"].next_fire_at is None
    assert bot.api.message(ADA, message_id) is bot.last(ADA)  # edited in place


async def test_the_jobqueue_dispatcher_delivers_without_being_ticked(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    """The one test that lets PTB's JobQueue tick on its own (every 0.05 s of real time)."""
    async with bot_harness(
        fake_api, tmp_path, TEST_TOKEN, dispatch_interval_seconds=0.05
    ) as harness:
        await harness.stop()
        await harness.start(dispatch_job=True)
        await onboard(harness)
        harness.clock.set(MEAL_UTC)
        await fake_api.wait_for(
            lambda: bool(reminder_sends(fake_api.calls)), timeout=10, what="reminder via JobQueue"
        )
        assert len(reminder_sends(fake_api.calls)) == 1


async def test_later_changes_say_saved_and_show_the_new_schedule(bot: BotHarness) -> None:
    await onboard(bot)
    reply = visible_text(texts(await bot.send(ADA, "/bedtime weekend 23:30"))[0])
    assert reply.startswith("✅ Saved.")
    assert "Friday and Saturday nights: 23:30" in reply
    reply = visible_text(texts(await bot.send(ADA, "/timezone Asia/Kathmandu"))[-1])
    assert reply.startswith("✅ Saved.") and "Asia/Kathmandu" in reply


async def test_edited_messages_are_not_answered_again(bot: BotHarness) -> None:
    update = bot.api.send_text(ADA, "/timezone berlin")
    await bot._handled(update)
    edited = dict(update["message"], edit_date=int(update["message"]["date"]) + 5)
    calls = await bot._handled(bot.api.push_update({"edited_message": edited}))
    assert [c for c in calls if c.method == "sendMessage"] == []


async def test_weekend_bedtime_first_then_the_usual_one(bot: BotHarness) -> None:
    await bot.send(ADA, "/timezone berlin")
    said = visible_text(texts(await bot.send(ADA, "/bedtime weekend 23:30"))[0])
    assert said == "Friday and Saturday bedtime: 23:30. And on other nights?"
    person = await bot.services.store.get_person(ADA)
    assert person is not None and not person.subscribed
    assert "what do you eat?" in texts(await bot.send(ADA, "22:30"))[-1]
    final = visible_text(texts(await bot.send(ADA, "vegan"))[-1])  # typed, not tapped
    assert final.startswith("✅ You're set up.")
    assert "Meal ideas for: vegan" in final
    assert "Friday and Saturday nights: 23:30" in final


async def test_stop_is_respected_by_later_changes_until_resume(bot: BotHarness) -> None:
    await onboard(bot)
    await bot.send(ADA, "/stop")
    reply = visible_text(texts(await bot.send(ADA, "/timezone paris"))[-1])
    assert reply.startswith("✅ Saved.") and "Reminders: off" in reply
    await bot.send(ADA, "/bedtime 23:00")
    assert reminder_sends(await bot.advance(timedelta(hours=14), step=timedelta(minutes=5))) == []
    reply = visible_text(texts(await bot.send(ADA, "/resume"))[-1])
    assert reply.startswith("✅ Reminders are on.")
    tomorrow = await bot.advance(timedelta(hours=24), step=timedelta(minutes=5))
    assert len(reminder_sends(tomorrow)) == 3


def _membership(chat_id: int, old: str, new: str) -> dict[str, object]:
    user = {"id": chat_id, "is_bot": False, "first_name": "Ada"}
    bot_user = {"id": 123456789, "is_bot": True, "first_name": "SleepBot"}
    return {
        "my_chat_member": {
            "chat": {"id": chat_id, "type": "private", "first_name": "Ada"},
            "from": user,
            "date": 1795500000,
            "old_chat_member": {"status": old, "user": bot_user, "until_date": 0},
            "new_chat_member": {"status": new, "user": bot_user, "until_date": 0},
        }
    }


async def test_blocking_and_unblocking_are_noticed_at_once(bot: BotHarness) -> None:
    await onboard(bot)
    await bot._handled(bot.api.push_update(_membership(ADA, "member", "kicked")))
    person = await bot.services.store.get_person(ADA)
    assert person is not None and person.blocked
    assert all(r.next_fire_at is None for r in person.reminders)
    await bot._handled(bot.api.push_update(_membership(ADA, "kicked", "member")))
    person = await bot.services.store.get_person(ADA)
    assert person is not None and not person.blocked
    assert all(r.next_fire_at is not None for r in person.reminders)


async def test_mydata_shows_all_history_across_messages(bot: BotHarness) -> None:
    await onboard(bot)
    await bot.advance(timedelta(days=6), step=timedelta(minutes=10))
    parts = texts(await bot.send(ADA, "/mydata"))
    assert len(parts) >= 2
    bodies = [
        visible_text(p).split("\n", 1)[1].removesuffix("\nErase it all with /deletedata.")
        for p in parts
    ]
    exported = json.loads("\n".join(bodies))
    assert len(exported["deliveries"]) == 18  # six nights, three reminders each


async def test_an_unusable_database_stops_start_up_with_one_line(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    with pytest.raises(StartupError, match=r"cannot open the database mysql://u:\*\*\*@db/x"):
        async with bot_harness(
            fake_api, tmp_path, TEST_TOKEN, database_url="mysql://u:secret@db/x"
        ):
            pass


async def test_a_command_closes_an_open_prompt(bot: BotHarness) -> None:
    await bot.send(ADA, "/timezone")  # opens the timezone prompt
    await bot.send(ADA, "/mechanisms")
    [reply] = texts(await bot.send(ADA, "thanks"))
    assert "/help" in reply  # not "I don't know the timezone 'thanks'"


async def test_a_sticker_gets_a_pointer_to_help(bot: BotHarness) -> None:
    update = bot.api.send_text(ADA, "x")
    message = dict(update["message"])
    message.pop("text")
    message["sticker"] = {
        "file_id": "s1", "file_unique_id": "u1", "type": "regular",
        "width": 512, "height": 512, "is_animated": False, "is_video": False,
    }  # fmt: skip
    await bot._handled(update)
    [reply] = texts(await bot._handled(bot.api.push_update({"message": message})))
    assert "/help" in reply


async def test_flood_control_through_the_production_rate_limiter(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    """With the production rate limiter: a reminder's 429 reschedules the delivery (the
    limiter does not wait it out in the dispatcher), and the next tick sends it exactly once."""
    async with bot_harness(fake_api, tmp_path, TEST_TOKEN, rate_limit=True) as harness:
        await onboard(harness)
        fake_api.fail_next(
            "sendMessage", error_code=429, description="Too Many Requests", retry_after=1,
            chat_id=ADA,
        )  # fmt: skip
        calls = await harness.advance(MEAL_UTC - harness.clock.now())
        flood = [c for c in calls if c.method == "sendMessage" and c.status == 429]
        assert len(flood) == 1 and reminder_sends(calls) == []
        # The limiter holds the chat for 1.1 s of real time: short enough for the next tick to
        # wait for it (longer than REMINDER_SEND.max_wait would be rescheduled again).
        calls += await harness.advance(timedelta(minutes=1))
        assert len(reminder_sends(calls)) == 1
        assert len(reminder_sends(await harness.advance(timedelta(hours=1)))) == 1  # exercise


async def test_a_kind_missing_from_the_database_is_added_at_start_up(bot: BotHarness) -> None:
    """As after a release that adds a reminder kind: the subscriber's rows predate it, and the
    next start-up gives them the new kind (default on), so it arrives tonight."""
    await onboard(bot)
    await bot.stop()
    async with bot.services.store.engine.begin() as connection:
        await connection.execute(
            text("DELETE FROM reminders WHERE chat_id = :chat AND kind = 'exercise'"),
            {"chat": ADA},
        )
    await bot.start()
    calls = await bot.advance(MEAL_UTC + timedelta(hours=1) - bot.clock.now())
    kinds = [visible_text(c.params["text"]).lower() for c in reminder_sends(calls)]
    assert len(kinds) == 2 and "exercise" in kinds[1]
