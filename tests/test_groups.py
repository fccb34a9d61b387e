"""Groups: reading works for everyone; reminders, settings and data rights only in private."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from bot.telegram_html import visible_text
from tests.catalogue import OPEN_PRIVATE_CHAT, PRIVATE_ONLY, PRIVATE_ONLY_ALERT
from tests.harness import START, BotHarness, texts

ADA = 4242
GROUP = -100_123_456_7890
_ids = itertools.count(1)


def group_update(bot: BotHarness, text: str | None = None, **fields: Any) -> dict[str, Any]:
    """A message from Ada in the group, as Telegram sends it."""
    message: dict[str, Any] = {
        "message_id": bot.api.next_message_id(GROUP),
        "from": {"id": ADA, "is_bot": False, "first_name": "Ada"},
        "chat": {"id": GROUP, "type": "supergroup", "title": "Night owls"},
        "date": int(START.timestamp()),
        **fields,
    }
    if text is not None:
        message["text"] = text
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    return bot.api.push_update({"message": message})


async def in_group(bot: BotHarness, text: str | None = None, **fields: Any) -> list[str]:
    """What the bot said (sendMessage texts) in answer to one group message."""
    return texts(await bot._handled(group_update(bot, text, **fields)))


async def press_in_group(bot: BotHarness, data: str) -> list[Any]:
    """Ada presses a button with `data` on the bot's last message in the group."""
    last = bot.last(GROUP)
    update = bot.api.push_update(
        {
            "callback_query": {
                "id": f"group-press-{next(_ids)}",
                "from": {"id": ADA, "is_bot": False, "first_name": "Ada"},
                "message": {
                    "message_id": last.message_id,
                    "from": bot.api.bot_user,
                    "chat": {"id": GROUP, "type": "supergroup", "title": "Night owls"},
                    "date": last.date,
                    "text": last.text,
                },
                "chat_instance": "1",
                "data": data,
            }
        }
    )
    return await bot._handled(update)


@pytest.mark.parametrize(
    "command",
    [
        "/settings",
        "/bedtime 22:00",
        "/bedtime@sleepbot_test weekend 23:30",
        "/timezone Berlin",
        "/pause 3",
        "/resume",
        "/stop",
        "/mydata",
        "/deletedata",
        "/start setup",
    ],
)
async def test_personal_commands_in_a_group_point_to_a_private_chat(
    bot: BotHarness, command: str
) -> None:
    [answer] = await in_group(bot, command)
    assert answer == PRIVATE_ONLY
    [[button]] = bot.last(GROUP).keyboard
    assert button == {"text": OPEN_PRIVATE_CHAT, "url": "https://t.me/sleepbot_test?start=setup"}
    assert await bot.services.store.get_person(GROUP) is None  # nothing stored for the group


async def test_the_deep_link_opens_the_set_up_in_private(bot: BotHarness) -> None:
    [answer] = texts(await bot.send(ADA, "/start setup"))
    assert "Which timezone are you in?" in visible_text(answer)


async def test_reading_works_in_a_group_and_its_buttons_too(bot: BotHarness) -> None:
    [index] = await in_group(bot, "/mechanisms")
    assert "How vitamin B12 may affect sleep" in visible_text(index)
    calls = await press_in_group(bot, "mech:3")
    assert [c.method for c in calls] == ["answerCallbackQuery", "editMessageText"]
    assert "suprachiasmatic" in (bot.last(GROUP).text or "")
    [tips] = await in_group(bot, "/tips@sleepbot_test")
    assert "doctor" in visible_text(tips)


async def test_help_says_the_rule_everywhere(bot: BotHarness) -> None:
    for answer in [*await in_group(bot, "/help"), *texts(await bot.send(ADA, "/help"))]:
        assert "only in a private chat" in visible_text(answer)


@pytest.mark.parametrize("data", ["set:delete:yes", "set:stop", "set:bed:2100", "rem:off:1"])
async def test_personal_buttons_in_a_group_change_nothing(bot: BotHarness, data: str) -> None:
    # A group set up before this rule (its rows are deleted by migration 0004; made here anew).
    store = bot.services.store
    await store.set_timezone(GROUP, "Europe/Berlin", START)
    await store.set_bedtime(GROUP, START.time().replace(hour=22, minute=30), START)
    await store.subscribe(GROUP, START)
    before = await store.export_person(GROUP)
    await in_group(bot, "/tips")
    calls = await press_in_group(bot, data)
    [answer] = [c for c in calls if c.method == "answerCallbackQuery"]
    assert answer.params["text"] == PRIVATE_ONLY_ALERT and answer.params["show_alert"] is True
    assert not [c for c in calls if c.method in {"sendMessage", "editMessageText"}]
    assert await store.export_person(GROUP) == before


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("good night everyone", {}),
        ("/frobnicate", {}),
        ("/help@other_bot", {}),
        ("22:30", {}),
        (None, {"location": {"latitude": 52.52, "longitude": 13.40}}),
        (
            None,
            {
                "sticker": {
                    "file_id": "x",
                    "file_unique_id": "y",
                    "type": "regular",
                    "width": 1,
                    "height": 1,
                    "is_animated": False,
                    "is_video": False,
                }
            },
        ),
    ],
)
async def test_the_bot_keeps_quiet_in_a_group_unless_spoken_to(
    bot: BotHarness, text: str | None, fields: dict[str, Any]
) -> None:
    assert await in_group(bot, text, **fields) == []
    assert await bot.services.store.get_person(GROUP) is None


async def test_crisis_text_in_a_group_still_gets_the_crisis_reply(bot: BotHarness) -> None:
    """Quiet in groups, except for what triage reads as a crisis: safety comes first."""
    [reply] = await in_group(bot, "honestly I want to kill myself")
    assert "findahelpline.com" in reply
    assert bot.last(GROUP).buttons == []
    assert await bot.services.store.get_person(GROUP) is None
    assert await in_group(bot, "this alarm kills me") == []  # a look-alike stays chatter
