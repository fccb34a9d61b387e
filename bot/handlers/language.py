"""/language: the person chooses the language the bot speaks to them (buttons, or an argument).

Until they choose, the bot follows their Telegram app's language (bot.i18n.locale_from_telegram);
"Follow Telegram" goes back to that. The choice is stored (people.language), so reminders speak
it too. Each language's button is written in that language, so anyone can find theirs.
"""

from __future__ import annotations

from typing import Final

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot import usecases
from bot.callback_data import LanguageButton, encode
from bot.content import Content
from bot.context import BotContext
from bot.handlers.common import (
    command_argument,
    content_for,
    edit_in_place,
    forget_content,
    pressed,
    reply,
    telegram_locale,
)
from bot.i18n import LOCALES, known_locale

FOLLOW_TELEGRAM: Final = "auto"
_ALIASES: Final = {
    "english": "en",
    "zh-hans": "zh",
    "zh-cn": "zh",
    "chinese": "zh",
    "中文": "zh",
    "简体中文": "zh",
    "auto": FOLLOW_TELEGRAM,
    "telegram": FOLLOW_TELEGRAM,
}


def language_keyboard(context: BotContext, content: Content) -> InlineKeyboardMarkup:
    """One button per language, in its own words; then "Follow Telegram" in the current one."""
    row = [
        InlineKeyboardButton(
            context.content_in(locale).ui.text("language.name"),
            callback_data=encode(LanguageButton(locale)),
        )
        for locale in LOCALES
    ]
    follow = InlineKeyboardButton(
        content.ui.text("button.follow_telegram"),
        callback_data=encode(LanguageButton(FOLLOW_TELEGRAM)),
    )
    return InlineKeyboardMarkup([row, [follow]])


async def _prompt(update: Update, context: BotContext) -> tuple[str, InlineKeyboardMarkup]:
    content = await content_for(update, context)
    person = (
        await context.store.get_person(update.effective_chat.id) if update.effective_chat else None
    )
    ui = content.ui
    if person is not None and person.language:
        current = ui.text("language.name")
    else:
        telegram = context.content_in(telegram_locale(update)).ui.text("language.name")
        current = ui.text("language.follow_telegram", language=telegram)
    return ui.text("language.prompt_html", current=current), language_keyboard(context, content)


async def language_command(update: Update, context: BotContext) -> None:
    """/language shows the choices; /language zh (en, auto) sets it directly."""
    typed = command_argument(context.args).lower()
    if not typed:
        await reply(update, *await _prompt(update, context))
        return
    choice = known_locale(typed) or _ALIASES.get(typed)
    if choice is None:
        content = await content_for(update, context)
        text = content.ui.text("language.unknown_html", typed=typed[:40])
        await reply(update, text, language_keyboard(context, content))
        return
    await reply(update, await _choose(update, context, choice))


async def language_button(update: Update, context: BotContext) -> None:
    """Every 'lang:*' button; the value is checked again because callback data can be forged."""
    query, button = pressed(update, LanguageButton)
    value = button.choice
    choice = known_locale(value) or (FOLLOW_TELEGRAM if value == FOLLOW_TELEGRAM else None)
    if choice is None:
        ui = (await content_for(update, context)).ui
        await query.answer(ui.text("alert.button_invalid"), show_alert=True)
        return
    await query.answer()
    await edit_in_place(query, await _choose(update, context, choice))


async def _choose(update: Update, context: BotContext, choice: str) -> str:
    """Store the choice and confirm it in the language now in use."""
    chat = update.effective_chat
    assert chat is not None
    language = None if choice == FOLLOW_TELEGRAM else choice
    await usecases.set_language(context.store, context.clock, chat.id, language)
    forget_content(context)
    content = await content_for(update, context)
    if language is not None:
        return content.ui.text("language.saved_html")
    return content.ui.text("language.following_html", language=content.ui.text("language.name"))
