"""The last line of defence: stale buttons and unexpected exceptions get a polite answer."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.context import BotContext
from bot.handlers.common import content_for, content_of, telegram_locale

log = logging.getLogger(__name__)


async def stale_button(update: Update, context: BotContext) -> None:
    """Any callback data no other handler's pattern accepted: old, unknown or forged."""
    query = update.callback_query
    if query is None:
        return
    log.info("unrecognised callback data in update %d", update.update_id)
    ui = (await content_for(update, context)).ui
    await query.answer(ui.text("alert.stale_button"), show_alert=True)


async def on_error(update: object, context: BotContext) -> None:
    """Log with the full traceback, then apologise to the person if there is one to tell."""
    update_id = update.update_id if isinstance(update, Update) else None
    log.error("error while handling update %s", update_id, exc_info=context.error)
    if not isinstance(update, Update):
        return
    # The apology must not depend on what may have failed (the database): the choice made
    # with /language if this update already read it, else Telegram's language.
    cached = getattr(context, "_sleepbot_content", None)
    sorry = (cached or content_of(update, context, telegram_locale(update))).ui.text("error.sorry")
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(sorry, show_alert=True)
        elif update.effective_chat is not None:
            await update.effective_chat.send_message(sorry)
    except (BadRequest, Forbidden):
        # The query expired or the person blocked us: nothing more we can say to them.
        log.info("could not apologise for the error above")
    except TelegramError:
        log.warning("could not apologise for the error above", exc_info=True)
