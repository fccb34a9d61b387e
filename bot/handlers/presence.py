"""People coming and going: blocking and unblocking the bot, and the language Telegram reports.

Runs before the feature handlers (bot.app's group -1) for every update from a person.
"""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatMemberStatus, ChatType

from bot.context import BotContext
from bot.handlers.common import content_of, telegram_locale


async def membership_changed(update: Update, context: BotContext) -> None:
    """Telegram tells us when a person blocks (kicked) or unblocks (member) the bot."""
    change = update.my_chat_member
    if change is None:
        return
    chat_id, now = change.chat.id, context.clock.now()
    person = await context.store.get_person(chat_id)
    if person is None:
        return
    status = change.new_chat_member.status
    if status in {ChatMemberStatus.BANNED, ChatMemberStatus.LEFT}:
        await context.store.deactivate(chat_id, "blocked the bot", now)
    elif status == ChatMemberStatus.MEMBER and person.blocked:
        await context.store.ensure_person(chat_id, now)


async def welcome_back(update: Update, context: BotContext) -> None:
    """Anyone marked blocked who writes to us has unblocked the bot: reschedule them.

    Also remembers the language Telegram reports for them, which their reminders speak until
    they choose one with /language (a write only when it changed), and settles this update's
    language from the same read, so content_for() costs the handlers nothing.
    """
    chat = update.effective_chat
    if chat is None or update.my_chat_member is not None:
        return  # membership changes are handled by membership_changed
    person = await context.store.get_person(chat.id)
    if chat.type == ChatType.PRIVATE:
        content_of(update, context, person.language if person else None)
    if person is None:
        return
    if person.blocked:
        await context.store.ensure_person(chat.id, context.clock.now())
    user = update.effective_user
    if user is not None and user.language_code:
        locale = telegram_locale(update)
        if person.telegram_language != locale:
            await context.store.note_telegram_language(chat.id, locale)
