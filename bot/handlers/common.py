"""Small helpers every Telegram-facing handler shares."""

from __future__ import annotations

import logging
from typing import Final, TypeVar

from telegram import CallbackQuery, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.error import BadRequest

from bot.callback_data import Button, decode_as
from bot.content import Content
from bot.context import BotContext
from bot.i18n import locale_from_telegram

log = logging.getLogger(__name__)

# Telegram's reasons for refusing an edit of a message that is gone or can't take text.
CANNOT_EDIT: Final = (
    "message to edit not found",
    "message can't be edited",
    "there is no text in the message to edit",
)


_CONTENT_ATTRIBUTE: Final = "_sleepbot_content"
B = TypeVar("B", bound=Button)


def pressed(update: Update, kind: type[B]) -> tuple[CallbackQuery, B]:
    """The query and its button, decoded: the handler's registered pattern (the family's
    ``bot.callback_data`` pattern) guarantees the data decodes to a ``kind``."""
    query = update.callback_query
    assert query is not None
    button = decode_as(query.data, kind)
    assert button is not None, "registered with the wrong pattern"
    return query, button


def telegram_locale(update: object) -> str:
    """The locale Telegram's language_code for the sender maps to (English when absent)."""
    user = update.effective_user if isinstance(update, Update) else None
    return locale_from_telegram(user.language_code if user else None)


async def content_for(update: object, context: BotContext) -> Content:
    """The content in the language of whoever sent `update`: theirs if they chose one with
    /language, else their Telegram app's. Every handler that answers a person calls this once;
    the answer is kept on the context, so later handlers of the same update pay nothing."""
    cached = getattr(context, _CONTENT_ATTRIBUTE, None)
    if isinstance(cached, Content):
        return cached
    locale = telegram_locale(update)
    chat = update.effective_chat if isinstance(update, Update) else None
    if chat is not None and chat.type == ChatType.PRIVATE:
        try:
            person = await context.store.get_person(chat.id)
        except Exception:  # the language must never be why a reply (a crisis reply) fails
            log.warning("answering in the Telegram language: no stored choice", exc_info=True)
            person = None
        if person is not None and person.language:
            locale = person.language
    content = context.content_in(locale)
    setattr(context, _CONTENT_ATTRIBUTE, content)
    return content


def content_of(update: object, context: BotContext, person_language: str | None) -> Content:
    """content_for() when the person is already known (or must not be waited for): their
    choice, else Telegram's language. No database access."""
    content = context.content_in(person_language or telegram_locale(update))
    setattr(context, _CONTENT_ATTRIBUTE, content)
    return content


def forget_content(context: BotContext) -> None:
    """After /language changed the choice: the next content_for() reads it again."""
    if hasattr(context, _CONTENT_ATTRIBUTE):
        delattr(context, _CONTENT_ATTRIBUTE)


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
