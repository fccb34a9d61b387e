"""Inline keyboards shared by handlers and the reminder dispatcher; labels from the catalogue."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callback_data import DietAction, DietButton, ReminderButton, SettingsButton, encode
from bot.content import DIETS, Content


def reminder_keyboard(
    content: Content, delivery_id: int, snooze_minutes: int
) -> InlineKeyboardMarkup:
    """The four actions a person can take on a nightly reminder, right from the message.

    The Snooze label says what Snooze does: SNOOZE_MINUTES, whatever it is set to."""
    ui = content.ui
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    ui.text("button.done"),
                    callback_data=encode(ReminderButton("done", delivery_id)),
                ),
                InlineKeyboardButton(
                    ui.plural("button.snooze", snooze_minutes),
                    callback_data=encode(ReminderButton("snooze", delivery_id)),
                ),
            ],
            [
                InlineKeyboardButton(
                    ui.text("button.why"), callback_data=encode(ReminderButton("why", delivery_id))
                ),
                InlineKeyboardButton(
                    ui.text("button.turn_off"),
                    callback_data=encode(ReminderButton("off", delivery_id)),
                ),
            ],
        ]
    )


def diet_keyboard(
    content: Content,
    action: DietAction,
    *,
    current: str | None = None,
    skip: bool = False,
    back: bool = False,
) -> InlineKeyboardMarkup:
    """One tap per diet (two per row; ✓ on the current one), then Skip or ◀ Settings."""
    buttons = [
        InlineKeyboardButton(
            _marked(content, diet == current, content.foods_page.diet[diet].button),
            callback_data=encode(DietButton(action, diet)),
        )
        for diet in DIETS
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    text = content.foods_page.diet_text
    if skip:
        skip_data = encode(DietButton(action, "skip"))
        rows.append([InlineKeyboardButton(text.skip_label, callback_data=skip_data)])
    if back:
        rows.append(
            [InlineKeyboardButton(text.back_label, callback_data=encode(SettingsButton("view")))]
        )
    return InlineKeyboardMarkup(rows)


def _marked(content: Content, current: bool, label: str) -> str:
    return content.ui.text("button.current", label=label) if current else label
