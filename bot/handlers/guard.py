"""Before any handler: personal features only in private chats, and buttons we can act on.

Reminders, settings, /mydata and /deletedata belong to one person. In a group any member could
change the group's bedtime or erase its data (issue 7), so there they get a polite pointer to a
private chat instead (the rule is in /help). Reading — /start, /mechanisms, /foods, /tips,
/about, /help — works everywhere. Each guard answers and raises ApplicationHandlerStop, so no
later handler sees the update.
"""

from __future__ import annotations

import re
from typing import Final

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.ext import ApplicationHandlerStop

from bot import callback_data
from bot.context import BotContext
from bot.handlers.common import content_for, reply

PERSONAL_COMMANDS: Final = (
    "settings",
    "bedtime",
    "timezone",
    "pause",
    "resume",
    "stop",
    "mydata",
    "deletedata",
    "language",
    "checkin",
    "diary",
    "progress",
)
# /start's deep links that open the set-up (t.me/<bot>?start=setup).
PERSONAL_START: Final = re.compile(r"^/start(?:@\w+)?\s+(?:setup|settings)\b", re.IGNORECASE)


async def private_only(update: Update, context: BotContext) -> None:
    """A personal command outside a private chat: point to the private chat, do nothing."""
    ui = (await content_for(update, context)).ui
    link = f"https://t.me/{context.bot.username}?start=setup"
    button = InlineKeyboardButton(ui.text("button.open_private_chat"), url=link)
    await reply(update, ui.text("error.private_only_html"), InlineKeyboardMarkup([[button]]))
    raise ApplicationHandlerStop


async def button(update: Update, context: BotContext) -> None:
    """Every button press passes here first; only what the handlers can act on goes on.

    Stopped: presses with no data (PTB would hand them to the first pattern handler), presses
    on inline messages (there is no chat to act in), and personal buttons outside a private
    chat (someone else's reminder or settings, seen in a group).
    """
    query = update.callback_query
    if query is None:
        return
    chat = update.effective_chat
    if not query.data or chat is None:
        ui = (await content_for(update, context)).ui
        await query.answer(ui.text("alert.stale_button"), show_alert=True)
        raise ApplicationHandlerStop
    if chat.type != ChatType.PRIVATE and callback_data.personal(query.data):
        ui = (await content_for(update, context)).ui
        await query.answer(ui.text("alert.private_only"), show_alert=True)
        raise ApplicationHandlerStop
