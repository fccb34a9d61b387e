"""Buttons under a nightly reminder: Done, Snooze, Why?, Back and Turn this off."""

from __future__ import annotations

import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot import callback_data
from bot.context import BotContext
from bot.handlers.common import edit_in_place
from bot.keyboards import reminder_keyboard
from bot.timezones import tzinfo_for

NOT_YOURS = "This reminder isn't available any more."


async def reminder_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    chat = update.effective_chat
    assert query is not None and query.data is not None and chat is not None
    match = callback_data.REMINDER.match(query.data)
    assert match is not None
    action, delivery_id = match.group(1), int(match.group(2))
    store, content, now = context.store, context.content, context.clock.now()
    # Ownership is checked by the store: a forged id for someone else's reminder finds nothing.
    delivery = await store.get_delivery(delivery_id, chat.id)
    if delivery is None:
        await query.answer(NOT_YOURS, show_alert=True)
        return
    meal = content.meal(delivery.meal_id) if delivery.meal_id else None
    reminder_text = content.render_reminder(delivery.kind, meal)
    kind = content.reminder_kind(delivery.kind)

    if action == "done":
        await store.mark_done(delivery_id, chat.id, now)
        await query.answer("Nice. Sleep well!")
        await edit_in_place(query, reminder_text + "\n\n✅ <i>Done.</i>")
    elif action == "snooze":
        minutes = context.services.settings.snooze_minutes
        due = await store.snooze(delivery_id, chat.id, now, minutes)
        if due is None:
            await query.answer("Already snoozed or done.")
            return
        person = await store.get_person(chat.id)
        local = due.astimezone(tzinfo_for(person.timezone)) if person and person.timezone else due
        await query.answer(f"I'll remind you again at {local:%H:%M}.")
        # Buttons stay: the person may still press Done or Turn this off before it comes back.
        await edit_in_place(
            query,
            reminder_text + f"\n\n⏰ <i>Snoozed until {local:%H:%M}.</i>",
            reminder_keyboard(delivery_id),
        )
    elif action == "why":
        await query.answer()
        back = InlineKeyboardButton(
            "◀ Back", callback_data=callback_data.reminder("back", delivery_id)
        )
        await edit_in_place(
            query, content.render_reminder_why(delivery.kind), InlineKeyboardMarkup([[back]])
        )
    elif action == "back":
        await query.answer()
        await edit_in_place(query, reminder_text, reminder_keyboard(delivery_id))
    else:  # "off": the pattern admits nothing else
        await store.turn_off_from_delivery(delivery_id, chat.id, now)
        await query.answer("Turned off.")
        await edit_in_place(
            query,
            reminder_text + f"\n\n🔕 <i>{html.escape(kind.title)} reminders are off. "
            "Turn them back on in /settings.</i>",
        )
