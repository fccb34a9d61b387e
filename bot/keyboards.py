"""Inline keyboards shared by handlers and the reminder dispatcher."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import callback_data


def reminder_keyboard(delivery_id: int) -> InlineKeyboardMarkup:
    """The four actions a person can take on a nightly reminder, right from the message."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    "Done ✅", callback_data=callback_data.reminder("done", delivery_id)
                ),
                InlineKeyboardButton(
                    "Snooze 15 min", callback_data=callback_data.reminder("snooze", delivery_id)
                ),
            ],
            [
                InlineKeyboardButton(
                    "Why?", callback_data=callback_data.reminder("why", delivery_id)
                ),
                InlineKeyboardButton(
                    "Turn this off", callback_data=callback_data.reminder("off", delivery_id)
                ),
            ],
        ]
    )
