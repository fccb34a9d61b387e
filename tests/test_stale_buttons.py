"""Buttons and input the fuzz test found broken (issue 7), pinned as readable examples."""

from __future__ import annotations

import itertools
from typing import Any

from tests.catalogue import STALE_BUTTON
from tests.harness import BotHarness, texts

ADA = 4242
_ids = itertools.count(1)


async def press(bot: BotHarness, data: str | None, message: dict[str, Any] | None) -> list[Any]:
    """A button press as Telegram sends it; `message` None means an inline message."""
    query: dict[str, Any] = {
        "id": f"stale-{next(_ids)}",
        "from": {"id": ADA, "is_bot": False, "first_name": "Ada"},
        "chat_instance": "7",
    }
    if data is not None:
        query["data"] = data
    if message is None:
        query["inline_message_id"] = "BAAAAFk0AAB6Mz4_c2xlZXA"
    else:
        query["message"] = message
    return await bot._handled(bot.api.push_update({"callback_query": query}))


def chat() -> dict[str, Any]:
    return {"id": ADA, "type": "private", "first_name": "Ada"}


async def test_a_button_on_a_deleted_message_answers_with_a_fresh_message(
    bot: BotHarness,
) -> None:
    await bot.send(ADA, "/mechanisms")
    index = bot.last(ADA)
    assert bot.app is not None
    await bot.app.bot.delete_message(ADA, index.message_id)  # e.g. the person deleted it
    gone = {
        "message_id": index.message_id,
        "from": bot.api.bot_user,
        "chat": chat(),
        "date": index.date,
        "text": index.text,
    }
    calls = await press(bot, "mech:3", gone)
    assert [c.method for c in calls] == ["answerCallbackQuery", "editMessageText", "sendMessage"]
    assert "suprachiasmatic" in (bot.last(ADA).text or "")
    assert len(bot.last(ADA).buttons) == 4  # ◀ 3/5 ▶ and All mechanisms, on the new message


async def test_a_button_on_an_inaccessible_message_answers_with_a_fresh_message(
    bot: BotHarness,
) -> None:
    # Telegram sends messages older than 48 hours as "inaccessible": date 0, nothing else.
    calls = await press(bot, "food:2", {"chat": chat(), "message_id": 3, "date": 0})
    assert [c.method for c in calls] == ["answerCallbackQuery", "sendMessage"]
    assert "Another idea" in dict(bot.last(ADA).buttons)


async def test_presses_without_a_chat_or_without_data_get_a_polite_alert(
    bot: BotHarness,
) -> None:
    await bot.send(ADA, "/mechanisms")
    message = {
        "message_id": bot.last(ADA).message_id,
        "from": bot.api.bot_user,
        "chat": chat(),
        "date": bot.last(ADA).date,
        "text": bot.last(ADA).text,
    }
    for data, where in (("set:delete:yes", None), ("mech:1", None), (None, message)):
        [answer] = await press(bot, data, where)
        assert answer.method == "answerCallbackQuery" and answer.ok
        assert answer.params["text"] == STALE_BUTTON and answer.params["show_alert"] is True


async def test_superscript_digits_get_an_explanation_not_an_error(bot: BotHarness) -> None:
    [answer] = texts(await bot.send(ADA, "/pause ²"))
    assert answer.startswith("Give a number of nights from 1 to 60")
