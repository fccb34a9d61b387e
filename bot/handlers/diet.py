"""/diet and the diet buttons: meal ideas on /foods and in the evening reminder follow the diet.

`/diet` shows it with one button per diet; `/diet vegan` sets it directly; the first set-up
asks it once (bot.handlers.settings.ask_diet), with Skip keeping the default.
"""

from __future__ import annotations

from telegram import Update

from bot import usecases
from bot.callback_data import DietButton
from bot.content import DIETS
from bot.context import BotContext
from bot.handlers.common import command_argument, content_for, edit_in_place, pressed, reply
from bot.handlers.diary import onboarding_offer
from bot.handlers.settings import AWAITING, SET_UP, settings_view, with_headline
from bot.keyboards import diet_keyboard

SKIP = "skip"


def _chat_id(update: Update) -> int:
    chat = update.effective_chat
    assert chat is not None
    return chat.id


async def diet_command(update: Update, context: BotContext) -> None:
    """/diet shows the diet and the choices; /diet vegan sets it; anything else says why not."""
    content, store, chat_id = await content_for(update, context), context.store, _chat_id(update)
    typed = command_argument(context.args)
    diet = content.find_diet(typed) if typed else None
    if diet is not None:  # one transaction: the use case creates the person if new
        await usecases.set_diet(store, context.clock, chat_id, diet)
        await reply(update, content.render_diet_saved(diet))
        return
    person = await store.get_person(chat_id)
    current = content.known_diet(person.diet if person else None)
    keyboard = diet_keyboard(content, "set", current=current, back=bool(person and person.ready))
    text = content.render_diet_unknown(typed) if typed else content.render_diet_current(current)
    await reply(update, text, keyboard)


async def diet_button(update: Update, context: BotContext) -> None:
    """Every 'diet:*' button; the value is checked again because callback data can be forged."""
    query, button = pressed(update, DietButton)
    action, value = button.action, button.value
    content, store, chat_id = await content_for(update, context), context.store, _chat_id(update)
    now = context.clock.now()
    # Choosing from /diet needs nothing read first; showing it and the set-up's answer do.
    person = await store.get_person(chat_id) if action != "set" else None
    if action == "pick":
        await query.answer()
        current = content.known_diet(person.diet if person else None)
        back = person is not None and person.ready
        keyboard = diet_keyboard(content, "set", current=current, back=back)
        await edit_in_place(query, content.render_diet_current(current), keyboard)
        return
    chosen = next((diet for diet in DIETS if diet == value), None)
    skipped = action == "setup" and value == SKIP
    if (chosen is None and not skipped) or (action == "setup" and person is None):
        await query.answer(content.foods_page.diet_text.stale_button, show_alert=True)
        return
    await query.answer()
    if chosen is not None:
        person = await usecases.set_diet(store, context.clock, chat_id, chosen)
    assert person is not None
    if action == "setup":
        # The end of the first set-up: the confirmation, in place of the question.
        if context.user_data is not None:
            context.user_data.pop(AWAITING, None)
        text, markup = settings_view(person, content, now)
        await edit_in_place(query, with_headline(content, SET_UP, text), markup)
        if person.bedtime is not None and not person.checkin_on:
            await reply(update, *onboarding_offer(person, content))  # the last, optional step
        return
    keyboard = diet_keyboard(content, "set", current=person.diet, back=person.ready)
    await edit_in_place(query, content.render_diet_saved(person.diet), keyboard)
