"""Buttons under a nightly reminder: Done, Snooze, Why?, Back and Turn this off."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot import callback_data
from bot.context import BotContext
from bot.handlers.common import content_for, edit_in_place
from bot.keyboards import reminder_keyboard
from bot.timezones import tzinfo_for


async def reminder_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    chat = update.effective_chat
    assert query is not None and query.data is not None and chat is not None
    match = callback_data.REMINDER.match(query.data)
    assert match is not None
    action, delivery_id = match.group(1), int(match.group(2))
    store, content, now = context.store, await content_for(update, context), context.clock.now()
    ui = content.ui
    snooze_minutes = context.services.settings.snooze_minutes
    # Ownership is checked by the store: a forged id for someone else's reminder finds nothing.
    delivery = await store.get_delivery(delivery_id, chat.id)
    if delivery is None:
        await query.answer(ui.text("reminder.not_yours"), show_alert=True)
        return
    reminder_text = content.render_delivery(delivery.kind, delivery.meal_id)
    kind = content.reminder_kind(delivery.kind)

    if action == "done":
        await store.mark_done(delivery_id, chat.id, now)
        await query.answer(ui.text("reminder.done_alert"))
        await edit_in_place(query, f"{reminder_text}\n\n{ui.text('reminder.done_html')}")
    elif action == "snooze":
        due = await store.snooze(delivery_id, chat.id, now, snooze_minutes)
        if due is None:
            await query.answer(ui.text("reminder.already_alert"))
            return
        person = await store.get_person(chat.id)
        local = due.astimezone(tzinfo_for(person.timezone)) if person and person.timezone else due
        await query.answer(ui.text("reminder.snoozed_alert", time=ui.clock(local)))
        # Buttons stay: the person may still press Done or Turn this off before it comes back.
        snoozed = ui.text("reminder.snoozed_html", time=ui.clock(local))
        await edit_in_place(
            query,
            f"{reminder_text}\n\n{snoozed}",
            reminder_keyboard(content, delivery_id, snooze_minutes),
        )
    elif action == "why":
        await query.answer()
        back = InlineKeyboardButton(
            ui.text("button.back"), callback_data=callback_data.reminder("back", delivery_id)
        )
        await edit_in_place(
            query,
            content.render_reminder_why(delivery.kind, delivery.meal_id),
            InlineKeyboardMarkup([[back]]),
        )
    elif action == "back":
        await query.answer()
        await edit_in_place(
            query, reminder_text, reminder_keyboard(content, delivery_id, snooze_minutes)
        )
    else:  # "off": the pattern admits nothing else
        await store.turn_off_from_delivery(delivery_id, chat.id, now)
        await query.answer(ui.text("reminder.off_alert"))
        off = ui.text("reminder.off_html", title=kind.title)
        await edit_in_place(query, f"{reminder_text}\n\n{off}")
