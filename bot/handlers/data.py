"""/mydata and /deletedata: everything stored about a person, and erasing it.

The erase buttons ('set:delete:yes|no') go through bot.handlers.settings's action table.
"""

from __future__ import annotations

import html
import json

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot import callback_data
from bot.context import BotContext
from bot.handlers.common import content_for, reply
from bot.handlers.diary import send_export
from bot.onboarding import split_lines

MAX_MYDATA_CHARS = 3500


def _chat_id(update: Update) -> int:
    chat = update.effective_chat
    assert chat is not None
    return chat.id


async def mydata_command(update: Update, context: BotContext) -> None:
    ui = (await content_for(update, context)).ui
    data = await context.store.export_person(_chat_id(update))
    if data is None:
        await reply(update, ui.text("data.nothing_stored_html"))
        return
    dump = json.dumps(data, indent=1, ensure_ascii=False, default=str)
    # All of it, however long the history: one message per chunk, none cut mid-line.
    parts = split_lines(dump, MAX_MYDATA_CHARS)
    for number, part in enumerate(parts, start=1):
        heading = (
            ui.text("data.heading_part_html", number=number, total=len(parts))
            if len(parts) > 1
            else ui.text("data.heading_html")
        )
        footer = "\n" + ui.text("data.erase_footer_html") if number == len(parts) else ""
        await reply(update, f"{heading}\n<pre>{html.escape(part)}</pre>{footer}")
    await send_export(update, context)


async def deletedata_command(update: Update, context: BotContext) -> None:
    ui = (await content_for(update, context)).ui
    await reply(
        update,
        ui.text("data.erase_question_html"),
        InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        ui.text("button.erase_yes"),
                        callback_data=callback_data.settings("delete", "yes"),
                    ),
                    InlineKeyboardButton(
                        ui.text("button.erase_no"),
                        callback_data=callback_data.settings("delete", "no"),
                    ),
                ]
            ]
        ),
    )
