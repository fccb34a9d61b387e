"""The last line of defence: stale buttons and unexpected exceptions get a polite answer."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.context import BotContext

log = logging.getLogger(__name__)

STALE_BUTTON = "This button is no longer valid. Send /help to start again."
SORRY = "Sorry, something went wrong on my side. Please try again in a moment, or send /help."


async def stale_button(update: Update, context: BotContext) -> None:
    """Any callback data no other handler's pattern accepted: old, unknown or forged."""
    query = update.callback_query
    if query is None:
        return
    log.info("unrecognised callback data in update %d", update.update_id)
    await query.answer(STALE_BUTTON, show_alert=True)


async def on_error(update: object, context: BotContext) -> None:
    """Log with the full traceback, then apologise to the person if there is one to tell."""
    update_id = update.update_id if isinstance(update, Update) else None
    log.error("error while handling update %s", update_id, exc_info=context.error)
    if not isinstance(update, Update):
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(SORRY, show_alert=True)
        elif update.effective_chat is not None:
            await update.effective_chat.send_message(SORRY)
    except (BadRequest, Forbidden):
        # The query expired or the person blocked us: nothing more we can say to them.
        log.info("could not apologise for the error above")
    except TelegramError:
        log.warning("could not apologise for the error above", exc_info=True)
