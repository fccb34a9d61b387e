"""Small helpers every Telegram-facing handler shares."""

from __future__ import annotations

import logging
from typing import Final

from telegram import CallbackQuery, InlineKeyboardMarkup, Update
from telegram.error import BadRequest

log = logging.getLogger(__name__)

# Telegram's reasons for refusing an edit of a message that is gone or can't take text.
CANNOT_EDIT: Final = (
    "message to edit not found",
    "message can't be edited",
    "there is no text in the message to edit",
)


async def reply(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Answer in the chat the update came from (message or button press)."""
    chat = update.effective_chat
    if chat is None:
        return
    await chat.send_message(text, reply_markup=markup)


async def edit_in_place(
    query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    """Replace the pressed message; a double tap ("message is not modified") is not an error,
    and a button on a message that is gone (deleted, too old to edit, not text) gets its answer
    as a fresh message instead."""
    message = query.message
    if query.inline_message_id is None and (message is None or not message.is_accessible):
        # Telegram sends messages it won't let us touch (older than 48 h) with date 0.
        if message is not None:
            await message.chat.send_message(text, reply_markup=markup)
        return
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as error:
        reason = str(error).lower()
        if "message is not modified" in reason:
            log.debug("edit skipped: message unchanged")
        elif message is not None and any(gone in reason for gone in CANNOT_EDIT):
            log.debug("edit impossible (%s): sending a new message", reason)
            await message.chat.send_message(text, reply_markup=markup)
        else:
            raise


def command_argument(args: list[str] | None) -> str:
    """The text after the command, joined; '' when there is none."""
    return " ".join(args or []).strip()
