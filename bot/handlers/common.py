"""Small helpers every Telegram-facing handler shares."""

from __future__ import annotations

import logging

from telegram import CallbackQuery, InlineKeyboardMarkup, Update
from telegram.error import BadRequest

log = logging.getLogger(__name__)


async def reply(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Answer in the chat the update came from (message or button press)."""
    chat = update.effective_chat
    if chat is None:
        return
    await chat.send_message(text, reply_markup=markup)


async def edit_in_place(
    query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    """Replace the pressed message; a double tap ("message is not modified") is not an error."""
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as error:
        if "message is not modified" not in str(error).lower():
            raise
        log.debug("edit skipped: message unchanged")


def command_argument(args: list[str] | None) -> str:
    """The text after the command, joined; '' when there is none."""
    return " ".join(args or []).strip()
