"""The one evening message end to end: chosen in /settings, then an evening on the FakeClock.

With the switch on, tonight's meal idea comes inside the exercise note — one message at the
exercise time, none at the meal time — and its Done/Snooze/Why buttons work on the combined
text; switched off, the next evening has two messages again. In English, in Chinese, and on
the pseudo-locale (every word of it from the catalogues).
"""

from __future__ import annotations

from datetime import timedelta

from bot.fake_telegram import ApiCall
from bot.telegram_html import visible_text
from tests.harness import BotHarness, texts
from tests.pseudo_locale import OPEN, foreign_words
from tests.test_pseudo_locale_e2e import data_words, shown
from tests.test_pseudo_locale_e2e import pseudo_bot as pseudo_bot  # the fixture, used below
from tests.test_reminders_e2e import ADA, MEAL_UTC, onboard, reminder_sends

# Bedtime 22:30 in Berlin: the meal idea at 18:30, the exercise note at 19:30 local.
EXERCISE_UTC = MEAL_UTC + timedelta(hours=1)
EVENING_TITLE = "Your evening: dinner and exercise"


def _labels(call: ApiCall) -> list[str]:
    rows = call.params["reply_markup"]["inline_keyboard"]
    return [button["text"] for row in rows for button in row]


def _titles(calls: list[ApiCall], chat_id: int = ADA) -> list[str]:
    return [visible_text(c.params["text"]).splitlines()[0] for c in reminder_sends(calls, chat_id)]


async def test_one_evening_message_at_the_exercise_time_until_switched_off(
    bot: BotHarness,
) -> None:
    await onboard(bot)
    await bot.send(ADA, "/settings")
    assert "⬜ One evening message" in [label for label, _ in bot.last(ADA).buttons]
    calls = await bot.press_label(ADA, "One evening message")
    [page] = [visible_text(t) for t in texts(calls, "editMessageText")]
    assert "🌙 One evening message: tonight's meal idea comes with the exercise note" in page
    assert "today 19:30 — Your evening: dinner and exercise" in page
    assert "— Tonight's meal idea" not in page  # no time of its own any more
    [edit] = [c for c in calls if c.method == "editMessageText"]
    assert "✅ One evening message" in _labels(edit)

    # Nothing at the meal time; one message at the exercise time, with tonight's meal idea.
    early = EXERCISE_UTC - timedelta(minutes=1) - bot.clock.now()
    assert reminder_sends(await bot.advance(early)) == []
    [evening] = reminder_sends(await bot.advance(timedelta(minutes=1)))
    text = visible_text(evening.params["text"])
    export = await bot.services.store.export_person(ADA)
    assert export is not None
    [meal_id] = export["person"]["recent_meals"]
    meal = bot.services.content.meal(meal_id)
    assert meal is not None
    assert text.startswith(EVENING_TITLE)
    assert "Planning dinner?" in text and meal.name in text
    assert "avoiding intense exercise before bedtime" in text
    assert _labels(evening) == ["Done ✅", "Snooze 15 min", "Why?", "Turn this off"]

    # Its buttons: Why? shows both passages, Back and Snooze keep the combined text.
    message = bot.last(ADA)
    original = message.raw_text
    await bot.press_label(ADA, "Why?")
    why = bot.last(ADA).text or ""
    assert "moderate" in why and "intense exercise close to bedtime" in why
    await bot.press_label(ADA, "Back")
    assert bot.last(ADA).raw_text == original
    await bot.press_label(ADA, "Snooze 15 min")
    [again] = reminder_sends(await bot.advance(timedelta(minutes=15)))
    assert again.params["text"] == evening.params["text"]
    await bot.press_label(ADA, "Done")
    assert (bot.last(ADA).text or "").startswith(EVENING_TITLE)

    # The wind-down reminder is untouched; then switched off, tomorrow has two messages again.
    assert _titles(await bot.advance(timedelta(hours=2))) == ["Time to wind down"]
    await bot.send(ADA, "/settings")
    calls = await bot.press_label(ADA, "One evening message")
    [page] = [visible_text(t) for t in texts(calls, "editMessageText")]
    assert "🌙" not in page and "tomorrow 18:30 — Tonight's meal idea" in page
    tomorrow = await bot.advance(timedelta(days=1), step=timedelta(minutes=5))
    assert _titles(tomorrow) == ["Tonight's meal idea", "Ease off on exercise", "Time to wind down"]


async def test_with_the_exercise_note_off_the_meal_idea_goes_alone(bot: BotHarness) -> None:
    await onboard(bot)
    await bot.send(ADA, "/settings")
    await bot.press_label(ADA, "One evening message")
    calls = await bot.press_label(ADA, "No intense exercise")  # the exercise note's switch
    [page] = [visible_text(t) for t in texts(calls, "editMessageText")]
    assert "chosen, but it needs both the meal idea and the exercise note on" in page
    calls = await bot.advance(EXERCISE_UTC - bot.clock.now() + timedelta(minutes=1))
    [meal] = reminder_sends(calls)
    assert visible_text(meal.params["text"]).startswith("Tonight's meal idea")


def _data(call: ApiCall) -> list[str]:
    rows = call.params["reply_markup"]["inline_keyboard"]
    return [button["callback_data"] for row in rows for button in row]


async def test_the_meal_idea_has_no_time_buttons_while_it_rides_with_the_exercise_note(
    bot: BotHarness,
) -> None:
    await onboard(bot)
    await bot.send(ADA, "/settings")
    assert {"set:earlier:meal", "set:later:meal"} <= set(_data(bot.api.calls[-1]))
    calls = await bot.press_label(ADA, "One evening message")
    [edit] = [c for c in calls if c.method == "editMessageText"]
    page = visible_text(edit.params["text"])
    assert "✅ Tonight's meal idea: comes with the exercise note" in page
    assert "Tonight's meal idea: 4 h before bedtime" not in page
    shown_data = _data(edit)
    assert "set:earlier:meal" not in shown_data and "set:later:meal" not in shown_data
    assert {"set:toggle:meal", "set:earlier:exercise", "set:later:exercise"} <= set(shown_data)
    before = await bot.services.store.get_person(ADA)
    assert before is not None

    # The hidden button, forged (or kept on an older /settings page): a clear answer, and
    # nothing changes: not the stored time, not the page, not tonight's one message.
    for action in ("earlier", "later"):
        bot.clock.advance(timedelta(seconds=1))
        calls = await bot.press(ADA, bot.last(ADA).message_id, f"set:{action}:meal", check=False)
        [answer] = [c for c in calls if c.method == "answerCallbackQuery"]
        assert answer.params.get("show_alert") is True
        assert "the meal idea comes with the exercise note" in answer.params["text"]
        assert "Nothing was changed" in answer.params["text"]
        assert [c.method for c in calls if c.ok] == ["answerCallbackQuery"]
    after = await bot.services.store.get_person(ADA)
    assert after is not None and after.reminders == before.reminders
    calls = await bot.advance(EXERCISE_UTC - bot.clock.now() + timedelta(minutes=1))
    assert _titles(calls) == [EVENING_TITLE]

    # Switched off, the meal idea has its own time and its buttons again.
    await bot.send(ADA, "/settings")
    calls = await bot.press_label(ADA, "One evening message")
    [edit] = [c for c in calls if c.method == "editMessageText"]
    assert "✅ Tonight's meal idea: 4 h before bedtime" in visible_text(edit.params["text"])
    assert {"set:earlier:meal", "set:later:meal"} <= set(_data(edit))


async def test_the_evening_message_speaks_chinese(bot: BotHarness) -> None:
    await bot.send(ADA, "/language zh")
    await bot.send(ADA, "/timezone Europe/Berlin")
    await bot.send(ADA, "/bedtime 22:30")
    await bot.press_label(ADA, "跳过")
    await bot.send(ADA, "/settings")
    calls = await bot.press_label(ADA, "合并为一条晚间消息")
    [page] = [visible_text(t) for t in texts(calls, "editMessageText")]
    assert "🌙 一条晚间消息：今晚的餐食建议和运动提醒一起" in page
    assert "✅ 今晚的餐食建议：随运动提醒一起发送" in page
    calls = await bot.press(ADA, bot.last(ADA).message_id, "set:later:meal", check=False)
    [answer] = [c for c in calls if c.method == "answerCallbackQuery"]
    assert answer.params["text"].startswith("开启“合并为一条晚间消息”时")
    calls = await bot.advance(EXERCISE_UTC - bot.clock.now() + timedelta(minutes=1))
    [evening] = reminder_sends(calls)
    text = visible_text(evening.params["text"])
    assert text.startswith("今晚：晚饭和运动")
    assert "在想晚饭吃什么吗？" in text and "剧烈运动" in text
    assert _labels(evening)[0] == "完成 ✅"


async def test_every_word_of_the_evening_message_comes_from_the_catalogue(
    pseudo_bot: BotHarness,
) -> None:
    bot = pseudo_bot
    await bot.send(ADA, "/timezone Europe/Berlin")
    await bot.send(ADA, "/bedtime 22:30")
    await bot.press(ADA, bot.last(ADA).message_id, "diet:setup:omnivore")
    await bot.send(ADA, "/settings")
    await bot.press(ADA, bot.last(ADA).message_id, "set:evening:on")
    bot.clock.advance(timedelta(seconds=1))
    calls = await bot.press(ADA, bot.last(ADA).message_id, "set:earlier:meal", check=False)
    [refused] = [c for c in calls if c.method == "answerCallbackQuery"]
    assert refused.params.get("show_alert") is True and OPEN in refused.params["text"]
    await bot.advance(EXERCISE_UTC - bot.clock.now() + timedelta(minutes=1))
    [evening] = reminder_sends(bot.api.calls)
    delivery = evening.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    delivery_id = delivery.rsplit(":", 1)[1]
    for action in ("why", "back", "snooze", "done"):
        bot.clock.advance(timedelta(seconds=1))
        await bot.press(ADA, evening_message_id(bot), f"rem:{action}:{delivery_id}")
    await bot.send(ADA, "/settings")
    await bot.press(ADA, bot.last(ADA).message_id, "set:evening:off")
    bot.clock.advance(timedelta(seconds=1))
    calls = await bot.press(ADA, bot.last(ADA).message_id, "set:evening:maybe", check=False)
    [refused] = [c for c in calls if c.method == "answerCallbackQuery"]
    assert refused.params.get("show_alert") is True  # a forged value changes nothing
    shown_texts = [text for call in bot.api.calls if call.ok for text in shown(call)]
    assert sum(1 for text in shown_texts if OPEN in text) > 10
    data = data_words(bot)
    problems = {text[:80]: words for text in shown_texts if (words := foreign_words(text, data))}
    assert problems == {}


def evening_message_id(bot: BotHarness) -> int:
    """The evening message (the one with reminder buttons) among Ada's messages."""
    for message in reversed(bot.api.messages(ADA)):
        if any(data.startswith("rem:") for _, data in message.buttons):
            return message.message_id
    raise AssertionError("no reminder message")
