"""Every word the bot says comes from a catalogue: proven with a pseudo-locale, end to end.

The real Application runs against the fake Bot API on content where every text is
pseudo-transformed (tests/pseudo_locale.py). A walk through every command, button, prompt,
error, the menu and the reminders then collects every text the fake received — messages,
edits, pop-up alerts, button labels, the reply keyboard and its placeholder, the command
menu — and fails on any word that is neither pseudo text nor data (times, numbers, zone and
city names, what the person typed). A word written in Python shows up here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.fake_telegram import ApiCall, FakeBotApi
from bot.timezones import lookup_timezone
from tests.conftest import CONTENT_DIR, TEST_TOKEN
from tests.harness import BotHarness, bot_harness
from tests.pseudo_locale import OPEN, build_pseudo_content, foreign_words
from tests.test_groups import group_update, press_in_group
from tests.test_reminders_e2e import MEAL_UTC

ADA = 4242
BOB = 5151
TYPED_AND_ECHOED = ("Xyzzyville", "nonsense", "carnivore", "klingon")
SPRINGFIELD = "Springfield"


@pytest.fixture
async def pseudo_bot(fake_api: FakeBotApi, tmp_path: Path) -> AsyncIterator[BotHarness]:
    content = build_pseudo_content(CONTENT_DIR, tmp_path / "pseudo")
    async with bot_harness(fake_api, tmp_path, TEST_TOKEN, content_dir=content) as harness:
        yield harness


def shown(call: ApiCall) -> list[str]:
    """Every text in one Bot API call that a person can see."""
    params = call.params
    found: list[str] = []
    if call.method in {"sendMessage", "editMessageText"}:
        found.append(str(params.get("text", "")))
    if call.method in {"sendPhoto", "sendDocument"} and params.get("caption"):
        found.append(str(params["caption"]))
    if call.method == "answerCallbackQuery" and params.get("text"):
        found.append(str(params["text"]))
    if call.method == "setMyCommands":
        found.extend(str(command["description"]) for command in params.get("commands", []))
    markup = params.get("reply_markup")
    if isinstance(markup, dict):
        for row in [*markup.get("inline_keyboard", []), *markup.get("keyboard", [])]:
            found.extend(str(b["text"] if isinstance(b, dict) else b) for b in row)
        if markup.get("input_field_placeholder"):
            found.append(str(markup["input_field_placeholder"]))
    return found


async def press(bot: BotHarness, chat_id: int, data: str) -> list[ApiCall]:
    """Press the button with exactly this callback data on the newest message that has it."""
    bot.clock.advance(timedelta(seconds=1))  # a person's pace: flood control stays quiet
    for message in reversed(bot.api.messages(chat_id)):
        if any(button_data == data for _, button_data in message.buttons):
            return await bot.press(chat_id, message.message_id, data)
    raise AssertionError(f"no button {data!r} in chat {chat_id}")


def button_data(bot: BotHarness, chat_id: int, prefix: str) -> str:
    """The callback data of the first button on the newest message whose data starts so."""
    for message in reversed(bot.api.messages(chat_id)):
        for _, data in message.buttons:
            if data.startswith(prefix):
                return data
    raise AssertionError(f"no button {prefix}… in chat {chat_id}")


def data_words(bot: BotHarness) -> set[str]:
    """Words that are data, not wording: zone and city names, slugs, what was typed."""
    words = {"UTC", *TYPED_AND_ECHOED}
    for choice in (*lookup_timezone(SPRINGFIELD).candidates, *lookup_timezone("IST").candidates):
        words.update(choice.label.replace("/", " ").replace("_", " ").split())
    for zone in ("Europe/Berlin", "Asia/Shanghai"):
        words.update(zone.split("/"))
    for mechanism in bot.services.content.mechanisms:
        words.update(mechanism.slug.split("-"))
    return {word.strip(",.()") for word in words}


async def walk(bot: BotHarness) -> None:
    """Every command, button, prompt, error, the menu and a night of reminders."""

    async def send(chat_id: int, text: str) -> list[ApiCall]:
        bot.clock.advance(timedelta(seconds=1))  # a person's pace: flood control stays quiet
        return await bot.send(chat_id, text)

    # Reading, and the buttons under it.
    await send(ADA, "/start")
    for data in ("nav:mechanisms", "mech:3", "mech:4", "mech:index", "nav:foods"):
        await press(bot, ADA, data)
    await press(bot, ADA, button_data(bot, ADA, "food:"))
    await press(bot, ADA, "nav:tips")
    for command in ("/mechanisms 3", "/mechanisms nonsense", "/foods", "/tips", "/about"):
        await send(ADA, command)
    for command in ("/help", "/doctor", "/frobnicate"):
        await send(ADA, command)
    # The first set-up: every prompt, and a wrong answer to each.
    await press(bot, ADA, "nav:setup")
    await send(ADA, "Xyzzyville")
    await send(ADA, SPRINGFIELD)
    await press(bot, ADA, button_data(bot, ADA, "set:tz:"))
    await send(ADA, "25:99")
    await press(bot, ADA, "set:bed:2230")
    await send(ADA, "carnivore")
    await press(bot, ADA, "diet:setup:vegetarian")
    # The sleep diary: the set-up's check-in offer, a night logged by hand, replaced, listed,
    # charted; its /settings switches; a forged button.
    await press(bot, ADA, "dy:yes")
    await send(ADA, "/checkin")
    await press(bot, ADA, button_data(bot, ADA, "dy:e:"))  # a rating: the details step
    await press(bot, ADA, button_data(bot, ADA, "dy:e:"))  # a habit toggled
    await press(bot, ADA, button_data(bot, ADA, "dy:s:"))  # saved
    await send(ADA, "/checkin")  # the night is logged: replace it?
    await press(bot, ADA, button_data(bot, ADA, "dy:k:"))
    for command in ("/diary", "/progress"):
        await send(ADA, command)
    # Settings and every button on it.
    await send(ADA, "/settings")
    for data in ("set:toggle:meal", "set:toggle:meal", "set:earlier:meal", "set:later:meal"):
        await press(bot, ADA, data)
    await press(bot, ADA, "set:pick_bed")
    await press(bot, ADA, "set:bed:2300")
    await press(bot, ADA, "set:pick_wbed")
    await press(bot, ADA, "set:wbed:2330")
    await press(bot, ADA, "set:pick_wbed")
    await press(bot, ADA, "set:wbed:off")
    await press(bot, ADA, "diet:pick")
    await press(bot, ADA, "diet:set:vegan")
    await press(bot, ADA, "set:view")
    for data in ("dy:earlier", "dy:later", "dy:won", "dy:wday", "dy:woff", "dy:off", "dy:on"):
        await press(bot, ADA, data)
    await press(bot, ADA, "set:pause:1")
    await press(bot, ADA, "set:resume")
    await press(bot, ADA, "set:ask_tz")
    await bot.share_location(ADA, 52.52, 13.40)
    # Commands with arguments, good and bad.
    for command in (
        "/diet",
        "/diet carnivore",
        "/diet omnivore",
        "/bedtime 13pm",
        "/bedtime weekend 23:30",
        "/bedtime weekend off",
        "/bedtime 22:30",
        "/bedtime",
        "/timezone",
        "/timezone +05:17",
        "/timezone +15:00",
        "/timezone IST",
        "/timezone Europe/Berlin",
        "/pause 99",
        "/pause 2",
        "/resume",
        "/language",
        "/language klingon",
    ):
        await send(ADA, command)
    await press(bot, ADA, "lang:zh")
    await press(bot, ADA, "lang:auto")
    await send(ADA, "/language en")
    await send(ADA, "/mydata")
    await send(ADA, "/deletedata")
    await press(bot, ADA, "set:delete:no")
    # Free text through triage: food, sleep, dose, red flag, crisis, nothing.
    for text in (
        "what should I eat for dinner",
        "I can't sleep",
        "how many mcg of b12 should I take",
        "my partner says I stop breathing at night",
        "I want to kill myself",
        "asdfgh",
    ):
        await send(ADA, text)
    # Buttons that are stale, forged, or someone else's; an error on our side.
    for data in ("nav:bogus", "rem:done:999999", "lang:xx", "set:frobnicate", "dy:e:x"):
        bot.clock.advance(timedelta(seconds=1))
        await bot.press(ADA, bot.last(ADA).message_id, data, check=False)
    bot.api.fail_next("sendMessage", error_code=500, description="Internal Server Error")
    await send(ADA, "/tips")
    # A night of reminders, and every button under them.
    calls = await bot.advance(MEAL_UTC - bot.clock.now() + timedelta(minutes=1))
    assert any("rem:" in str(call.params.get("reply_markup")) for call in calls)
    meal = button_data(bot, ADA, "rem:why:").removeprefix("rem:why:")
    for action in ("why", "back", "snooze"):
        await press(bot, ADA, f"rem:{action}:{meal}")
    [reminder] = [m for m in bot.api.messages(ADA) if (m.buttons and f"rem:done:{meal}" in
                  [d for _, d in m.buttons])]  # fmt: skip
    await press(bot, ADA, f"rem:done:{meal}")
    await bot.press(ADA, reminder.message_id, f"rem:done:{meal}", check=False)  # already done
    await bot.advance(timedelta(hours=1, minutes=1))
    exercise = button_data(bot, ADA, "rem:off:")
    await press(bot, ADA, exercise)
    # Stop, and everything a stopped or unknown person can meet.
    await send(ADA, "/stop")
    await send(ADA, "/settings")
    await press(bot, ADA, "set:resume")
    await send(BOB, "/pause")
    await send(BOB, "/mydata")
    await bot.press(BOB, bot.last(BOB).message_id, "set:view", check=False)
    # Personal commands and buttons in a group point to a private chat.
    bot.clock.advance(timedelta(seconds=1))
    await bot._handled(group_update(bot, "/settings"))
    await press_in_group(bot, "set:view")
    await send(ADA, "/deletedata")
    await press(bot, ADA, "set:delete:yes")
    # Far faster than a person types: the one notice that it is too fast.
    for _ in range(bot.settings.flood_max_updates + 2):
        await bot.send(BOB, "/help")


async def test_every_word_the_bot_sends_comes_from_the_catalogue(pseudo_bot: BotHarness) -> None:
    bot = pseudo_bot
    await walk(bot)
    texts = [(call, text) for call in bot.api.calls for text in shown(call) if call.ok]
    methods = {call.method for call, _ in texts}
    assert {
        "sendMessage",
        "editMessageText",
        "answerCallbackQuery",
        "setMyCommands",
        "sendPhoto",  # /progress: the chart's caption
    } <= methods
    assert sum(1 for _, text in texts if OPEN in text) > 150  # the walk really saw the catalogue
    data = data_words(bot)
    problems: dict[str, list[str]] = {}
    for call, text in texts:
        words = foreign_words(text, data)
        if words:
            problems.setdefault(f"{call.method}: {text[:120]!r}", words)
    assert not problems, "words not from the catalogue:\n" + "\n".join(
        f"  {where} -> {words}" for where, words in problems.items()
    )


def test_the_check_finds_an_inline_word() -> None:
    """The check itself: English, Chinese or unaccented words outside the pseudo text fail."""
    assert foreign_words("⟦Đóñé⟧ Done 中文", set()) == ["Done", "中文"]
    assert foreign_words("⟦Ţíɱéžóñé: Europe/Berlin⟧ 22:30", {"Europe", "Berlin"}) == []
    assert foreign_words("⟦Ŕéɱíñđéŕš: on⟧", set()) == ["on"]  # inline text in a placeholder
