"""Safety triage end to end: the real Application over HTTP against the fake Bot API.

Crisis, red-flag and dose messages from a subscribed and an unsubscribed person; crisis text
while a prompt is open; captions and edits; /doctor; /diet and diet-aware /foods and meals.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.fake_telegram import ApiCall
from bot.telegram_html import visible_text
from bot.triage import OTHER
from tests.catalogue import EN, SORRY
from tests.harness import BotHarness, texts
from tests.test_reminders_e2e import onboard, reminder_sends
from tests.triage_phrases import CRISIS_PHRASES

SUBSCRIBED = 4242  # set up in Berlin: Germany's crisis line
NEWCOMER = 5151  # never set anything up: every crisis line
# 2026-11-24 09:00 UTC start; a 22:30 Berlin bedtime puts the meal idea at 17:30 UTC.
MEAL_UTC = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)


def sends(calls: list[ApiCall]) -> list[ApiCall]:
    return [call for call in calls if call.method == "sendMessage"]


def only_reply(calls: list[ApiCall]) -> ApiCall:
    [reply] = sends(calls)
    return reply


async def crisis_reply(bot: BotHarness, chat_id: int, text: str) -> str:
    reply = only_reply(await bot.send(chat_id, text))
    assert "reply_markup" not in reply.params, "nothing may distract from the crisis message"
    return visible_text(str(reply.params["text"]))


async def test_crisis_red_flag_and_dose_for_subscribed_and_unsubscribed(bot: BotHarness) -> None:
    await onboard(bot, SUBSCRIBED, "Europe/Berlin")
    content = bot.services.content

    local = await crisis_reply(bot, SUBSCRIBED, "I want to kill myself")
    assert local == visible_text(content.render_crisis("DE"))
    assert "0800 111 0 111" in local and "call 112 now" in local and "988" not in local
    everyone = await crisis_reply(bot, NEWCOMER, "i dont want to wake up anymore")
    assert everyone == visible_text(content.render_crisis(None))
    assert "988" in everyone and "116 123" in everyone and "13 11 14" in everyone
    assert "your local emergency number" in everyone and "findahelpline.com" in everyone
    assert await bot.services.store.get_person(NEWCOMER) is None  # answering stores nothing

    for chat_id in (SUBSCRIBED, NEWCOMER):
        red_reply = only_reply(await bot.send(chat_id, "my partner says I stop breathing"))
        red = visible_text(str(red_reply.params["text"]))
        assert red.startswith("This is worth seeing a doctor about.")
        assert "sleep apnoea" in red and "(NHS)" in red and "/doctor" in red
        dose = visible_text(
            str(only_reply(await bot.send(chat_id, "how much B12 should I take")).params["text"])
        )
        assert "I can't suggest an amount" in dose and "blood test" in dose
        assert not re.search(r"\d", dose.replace("B12", "")), "never a number"


async def test_no_crisis_phrase_gets_the_generic_reply(bot: BotHarness) -> None:
    generic = bot.services.content.render_unknown(OTHER)
    crisis = bot.services.content.render_crisis(None)
    for phrase in CRISIS_PHRASES:
        reply = only_reply(await bot.send(NEWCOMER, phrase))
        assert reply.params["text"] != generic, phrase
        assert reply.params["text"] == crisis, phrase
    assert "/help" in texts(await bot.send(NEWCOMER, "hello there"))[0]  # other still gets it


async def test_an_open_timezone_prompt_answers_crisis_first_and_stays_open(
    bot: BotHarness,
) -> None:
    await bot.send(SUBSCRIBED, "/timezone")  # the prompt is open
    calls = await bot.send(SUBSCRIBED, "i want to die")
    assert visible_text(str(only_reply(calls).params["text"])) == visible_text(
        bot.services.content.render_crisis(None)
    )
    person = await bot.services.store.get_person(SUBSCRIBED)
    assert person is not None and person.timezone is None  # not taken as a place
    said = texts(await bot.send(SUBSCRIBED, "berlin"))  # the prompt is still there
    assert "Europe/Berlin" in visible_text(said[0])


async def test_an_open_prompt_gets_what_it_can_use_and_triage_gets_the_rest(
    bot: BotHarness,
) -> None:
    await bot.send(SUBSCRIBED, "/timezone")
    red = visible_text(texts(await bot.send(SUBSCRIBED, "my partner says I stop breathing"))[0])
    assert red.startswith("This is worth seeing a doctor about.")  # not "couldn't find"
    typo = visible_text(texts(await bot.send(SUBSCRIBED, "Xqzzyville"))[0])
    assert "couldn't find" in typo.lower() or "don't know" in typo.lower()
    await bot.send(SUBSCRIBED, "berlin")
    await bot.send(SUBSCRIBED, "/bedtime")
    dose = visible_text(texts(await bot.send(SUBSCRIBED, "how much b12 should i take"))[0])
    assert "I can't suggest an amount" in dose
    final = texts(await bot.send(SUBSCRIBED, "22:30"))[-1]
    assert "what do you eat?" in final  # the bedtime prompt stayed open for the real answer


def photo_update(chat_id: int, caption: str, message_id: int) -> dict[str, Any]:
    user = {"id": chat_id, "is_bot": False, "first_name": "Ada"}
    return {
        "message": {
            "message_id": message_id,
            "date": int(time.time()),
            "from": user,
            "chat": {"id": chat_id, "type": "private", "first_name": "Ada"},
            "photo": [{"file_id": "p1", "file_unique_id": "u1", "width": 90, "height": 90}],
            "caption": caption,
        }
    }


async def test_a_caption_is_heard_like_text(bot: BotHarness) -> None:
    calls = await bot._handled(bot.api.push_update(photo_update(NEWCOMER, "kms", 900)))
    assert only_reply(calls).params["text"] == bot.services.content.render_crisis(None)
    calls = await bot._handled(bot.api.push_update(photo_update(NEWCOMER, "numb feet", 901)))
    assert "worth seeing a doctor" in visible_text(str(only_reply(calls).params["text"]))


async def test_an_edit_into_crisis_is_answered(bot: BotHarness) -> None:
    update = bot.api.send_text(NEWCOMER, "I had a bad night")
    await bot._handled(update)
    for text, answered in (("I had a bad night, typo fixed", False), ("I want to die", True)):
        edited = dict(update["message"], text=text, edit_date=int(update["message"]["date"]) + 5)
        calls = await bot._handled(bot.api.push_update({"edited_message": edited}))
        assert len(sends(calls)) == int(answered), text


async def test_a_crisis_is_answered_even_when_the_database_fails(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(chat_id: int) -> None:
        raise ConnectionError("database down")

    monkeypatch.setattr(bot.services.store, "get_person", broken)
    replies = sends(await bot.send(SUBSCRIBED, "I want to end my life"))
    # The crisis message goes out with every line (the country is unknown without the
    # database); an earlier handler's failure may add the usual apology before it.
    assert replies[-1].params["text"] == bot.services.content.render_crisis(None)
    assert [r.params["text"] for r in replies[:-1]] in ([], [SORRY])


async def test_doctor_is_in_the_menu_and_linked(bot: BotHarness) -> None:
    assert EN.text("command.doctor") == "When to see a doctor"
    assert "doctor" in [c["command"] for c in bot.api.commands()]
    page = visible_text(texts(await bot.send(NEWCOMER, "/doctor"))[0])
    assert page.startswith("When to see a doctor")
    for fact in ("blood test", "CBT-I", "metformin", "pernicious anaemia", "vegans", "(AASM"):
        assert fact in page, fact
    for command in ("/start", "/tips", "/help"):
        assert "/doctor" in texts(await bot.send(NEWCOMER, command))[0], command


async def test_diet_command_buttons_and_bad_values(bot: BotHarness) -> None:
    [current] = texts(await bot.send(NEWCOMER, "/diet"))
    assert "Your diet: omnivore" in visible_text(current)
    labels = [label for label, _ in bot.last(NEWCOMER).buttons]
    assert labels == ["✓ I eat everything", "Fish, no meat", "Vegetarian (eggs, dairy)", "Vegan"]
    await bot.press_label(NEWCOMER, "Vegetarian")
    person = await bot.services.store.get_person(NEWCOMER)
    assert person is not None and person.diet == "vegetarian"
    saved = visible_text(texts(await bot.send(NEWCOMER, "/diet vegan"))[0])
    assert saved == "✅ Saved. Meal ideas now follow your diet: vegan."
    bad = visible_text(texts(await bot.send(NEWCOMER, "/diet carnivore"))[0])
    assert "I don't know the diet “carnivore”" in bad
    assert "omnivore, pescatarian, vegetarian, vegan" in bad and "/diet vegan" in bad
    person = await bot.services.store.get_person(NEWCOMER)
    assert person is not None and person.diet == "vegan"  # the bad value changed nothing


@pytest.mark.parametrize("data", ["diet:set:carnivore", "diet:set", "diet:setup:vegan"])
async def test_forged_diet_buttons_get_a_polite_answer(bot: BotHarness, data: str) -> None:
    await bot.send(NEWCOMER, "/diet")
    calls = await bot.press(NEWCOMER, bot.last(NEWCOMER).message_id, data, check=False)
    [answer] = [c for c in calls if c.method == "answerCallbackQuery"]
    assert answer.params.get("show_alert") and "/diet" in str(answer.params.get("text"))
    assert not [c for c in calls if c.method == "editMessageText"]


async def test_foods_and_the_meal_reminder_follow_the_diet(bot: BotHarness) -> None:
    await bot.send(SUBSCRIBED, "/timezone Europe/Berlin")
    await bot.send(SUBSCRIBED, "/bedtime 22:30")
    await bot.press_label(SUBSCRIBED, "Vegan")
    content = bot.services.content
    for _ in range(3):
        await bot.send(SUBSCRIBED, "/foods")
        page = bot.last(SUBSCRIBED)
        text = visible_text(page.raw_text or "")
        assert "Meal ideas for your diet: vegan" in text and "Liver" not in text
        await bot.press_label(SUBSCRIBED, "Another idea")
        again = visible_text(bot.api.message(SUBSCRIBED, page.message_id).raw_text or "")  # type: ignore[union-attr]
        assert "(vegan)" in again
    evening = await bot.advance(MEAL_UTC + timedelta(minutes=1) - bot.clock.now())
    [meal] = reminder_sends(evening, SUBSCRIBED)
    vegan_names = {idea.name for idea in content.meals_for("vegan")}
    assert any(name in visible_text(str(meal.params["text"])) for name in vegan_names)


async def test_a_food_question_naming_a_diet_shows_that_diet(bot: BotHarness) -> None:
    await bot.send(NEWCOMER, "what should a vegan eat for B12")
    answer = bot.last(NEWCOMER)
    text = visible_text(answer.raw_text or "")
    assert text.startswith("Here are B12-rich foods and a meal idea for this diet: vegan.")
    assert "Plant foods have no vitamin B12 unless it has been added (fortified)" in text
    await bot.press_label(NEWCOMER, "Another idea")
    edited = bot.api.message(NEWCOMER, answer.message_id)
    assert edited is not None and "(vegan)" in visible_text(edited.raw_text or "")


async def test_a_sleep_question_opens_the_matching_page(bot: BotHarness) -> None:
    await bot.send(NEWCOMER, "does melatonin help me sleep")
    page = bot.last(NEWCOMER)
    assert "1. Regulating melatonin secretion" in visible_text(page.raw_text or "")
    assert [label for label, _ in page.buttons][:3] == ["◀", "1/5", "▶"]


async def test_a_crisis_reply_survives_transient_send_failures(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.handlers import safety

    monkeypatch.setattr(safety, "crisis_retry_seconds", 0.01)
    bot.api.fail_next("sendMessage", error_code=502, description="Bad Gateway", times=2)
    bot.api.drop_connection_next("sendMessage")
    replies = sends(await bot.send(NEWCOMER, "I want to die"))
    assert [reply.ok for reply in replies] == [False, False, False, True]
    assert replies[-1].params["text"] == bot.services.content.render_crisis(None)
