"""Buttons under a nightly reminder: Done, Snooze, Why?, Back and Turn this off."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot import usecases
from bot.callback_data import ReminderButton, encode
from bot.context import BotContext
from bot.handlers.common import content_for, edit_in_place, pressed
from bot.keyboards import reminder_keyboard


async def reminder_button(update: Update, context: BotContext) -> None:
    """One use case per button, one transaction; the store checks ownership, so a forged id
    for someone else's reminder finds nothing."""
    query, button = pressed(update, ReminderButton)
    chat = update.effective_chat
    assert chat is not None
    delivery_id, action = button.delivery_id, button.action
    store, clock, content = context.store, context.clock, await content_for(update, context)
    ui = content.ui
    snooze_minutes = context.services.settings.snooze_minutes
    match action:
        case "done":
            press = await usecases.mark_done(store, clock, chat.id, delivery_id)
        case "snooze":
            press = await usecases.snooze(store, clock, chat.id, delivery_id, snooze_minutes)
        case "off":
            press = await usecases.turn_off_kind(store, clock, chat.id, delivery_id)
        case "why" | "back":
            press = await usecases.show_reminder(store, clock, chat.id, delivery_id)
    if press is None:
        await query.answer(ui.text("reminder.not_yours"), show_alert=True)
        return
    delivery = press.delivery
    reminder_text = content.render_delivery(delivery.kind, delivery.meal_id)

    match action:
        case "done":
            await query.answer(ui.text("reminder.done_alert"))
            await edit_in_place(query, f"{reminder_text}\n\n{ui.text('reminder.done_html')}")
        case "snooze":
            if press.snoozed_until is None:
                await query.answer(ui.text("reminder.already_alert"))
                return
            back_at = ui.clock(press.snoozed_until)
            await query.answer(ui.text("reminder.snoozed_alert", time=back_at))
            # Buttons stay: the person may still press Done or Turn this off before it's back.
            line = ui.text("reminder.snoozed_html", time=back_at)
            await edit_in_place(
                query,
                f"{reminder_text}\n\n{line}",
                reminder_keyboard(content, delivery_id, snooze_minutes),
            )
        case "why":
            await query.answer()
            back = InlineKeyboardButton(
                ui.text("button.back"), callback_data=encode(ReminderButton("back", delivery_id))
            )
            await edit_in_place(
                query,
                content.render_reminder_why(delivery.kind, delivery.meal_id),
                InlineKeyboardMarkup([[back]]),
            )
        case "back":
            await query.answer()
            await edit_in_place(
                query, reminder_text, reminder_keyboard(content, delivery_id, snooze_minutes)
            )
        case "off":
            await query.answer(ui.text("reminder.off_alert"))
            off = ui.text("reminder.off_html", title=content.reminder_kind(delivery.kind).title)
            await edit_in_place(query, f"{reminder_text}\n\n{off}")
