"""The article itself: /start, /mechanisms, /foods, /tips, /about, /help and their buttons."""

from __future__ import annotations

import secrets

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.callback_data import FoodsButton, MechanismButton, NavigateButton, encode
from bot.content import Content
from bot.context import BotContext
from bot.handlers.common import command_argument, content_for, edit_in_place, pressed, reply
from bot.handlers.settings import begin_setup, show_settings


def start_keyboard(content: Content) -> InlineKeyboardMarkup:
    ui = content.ui
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    ui.text("button.how_b12"), callback_data=encode(NavigateButton("mechanisms"))
                )
            ],
            [
                InlineKeyboardButton(
                    ui.text("button.b12_foods"), callback_data=encode(NavigateButton("foods"))
                ),
                InlineKeyboardButton(
                    ui.text("button.sleep_tips"), callback_data=encode(NavigateButton("tips"))
                ),
            ],
            [
                InlineKeyboardButton(
                    ui.text("button.set_up_reminders"),
                    callback_data=encode(NavigateButton("setup")),
                )
            ],
        ]
    )


def mechanism_index_keyboard(content: Content) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    f"{m.number}. {m.label}", callback_data=encode(MechanismButton(m.number))
                )
            ]
            for m in content.mechanisms
        ]
    )


def mechanism_keyboard(content: Content, number: int) -> InlineKeyboardMarkup:
    """◀ ▶ wrap around, so every page has the same three buttons in the same places."""
    count = len(content.mechanisms)
    previous = (number - 2) % count + 1
    following = number % count + 1
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("◀", callback_data=encode(MechanismButton(previous))),
                InlineKeyboardButton(
                    f"{number}/{count}", callback_data=encode(MechanismButton(number))
                ),
                InlineKeyboardButton("▶", callback_data=encode(MechanismButton(following))),
            ],
            [
                InlineKeyboardButton(
                    content.ui.text("button.all_mechanisms"),
                    callback_data=encode(MechanismButton(None)),
                )
            ],
        ]
    )


def foods_keyboard(
    content: Content, meal_index: int, diet: str | None = None
) -> InlineKeyboardMarkup:
    """'Another idea' for the same diet (`diet` None: whatever the person's diet is then)."""
    data = encode(FoodsButton(meal_index + 1, diet))
    label = content.ui.text("button.another_idea")
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data)]])


def foods_message(content: Content, diet: str, meal_index: int) -> tuple[str, InlineKeyboardMarkup]:
    meal_index %= len(content.meals_for(content.known_diet(diet)))
    return content.render_foods(diet, meal_index), foods_keyboard(content, meal_index)


async def person_diet(context: BotContext, chat_id: int | None) -> str:
    """The person's diet; the default when they never chose one (nothing is stored for that)."""
    person = await context.store.get_person(chat_id) if chat_id is not None else None
    return context.content.known_diet(person.diet if person else None)


async def send_section(update: Update, context: BotContext, section: str) -> None:
    """Open a section as a new message; shared by deep links, commands and /start buttons."""
    content = await content_for(update, context)
    if section == "mechanisms":
        await reply(update, content.render_mechanism_index(), mechanism_index_keyboard(content))
    elif section == "foods":
        chat = update.effective_chat
        diet = await person_diet(context, chat.id if chat else None)
        index = secrets.randbelow(len(content.meals_for(diet)))
        await reply(update, *foods_message(content, diet, index))
    elif section == "tips":
        await reply(update, content.render_tips())


async def start(update: Update, context: BotContext) -> None:
    """/start, including deep links t.me/<bot>?start=mechanisms|foods|tips|setup."""
    payload = command_argument(context.args).lower()
    if payload in {"mechanisms", "foods", "tips"}:
        await send_section(update, context, payload)
        return
    if payload == "setup":
        await begin_setup(update, context)
        return
    content = await content_for(update, context)
    await reply(update, content.render_start(), start_keyboard(content))


async def mechanisms(update: Update, context: BotContext) -> None:
    """/mechanisms shows the index; /mechanisms 3 or /mechanisms circadian opens one page."""
    content = await content_for(update, context)
    wanted = command_argument(context.args)
    if not wanted:
        await send_section(update, context, "mechanisms")
        return
    mechanism = content.find_mechanism(wanted)
    if mechanism is None:
        ui = content.ui
        choices = ui.join(
            [
                ui.text("problem.mechanism_choice", number=m.number, slug=m.slug)
                for m in content.mechanisms
            ]
        )
        await reply(
            update,
            ui.text("problem.unknown_mechanism_html", typed=wanted[:64], choices=choices),
            mechanism_index_keyboard(content),
        )
        return
    await reply(
        update,
        content.render_mechanism(mechanism.number),
        mechanism_keyboard(content, mechanism.number),
    )


async def mechanism_button(update: Update, context: BotContext) -> None:
    """Edits the same message in place: index ↔ pages."""
    query, button = pressed(update, MechanismButton)
    content = await content_for(update, context)
    await query.answer()
    number = button.number
    if number is None or content.find_mechanism(str(number)) is None:
        await edit_in_place(
            query, content.render_mechanism_index(), mechanism_index_keyboard(content)
        )
        return
    await edit_in_place(
        query, content.render_mechanism(number), mechanism_keyboard(content, number)
    )


async def foods(update: Update, context: BotContext) -> None:
    await send_section(update, context, "foods")


async def foods_button(update: Update, context: BotContext) -> None:
    query, button = pressed(update, FoodsButton)
    await query.answer()
    content, chat = await content_for(update, context), update.effective_chat
    if button.diet is None:  # the person's own diet; else the one a food question named
        diet = await person_diet(context, chat.id if chat else None)
        await edit_in_place(query, *foods_message(content, diet, button.meal))
        return
    diet = content.known_diet(button.diet)
    index = button.meal % len(content.meals_for(diet))
    await edit_in_place(
        query, content.render_foods(diet, index), foods_keyboard(content, index, diet)
    )


async def tips(update: Update, context: BotContext) -> None:
    await send_section(update, context, "tips")


async def about(update: Update, context: BotContext) -> None:
    await reply(update, (await content_for(update, context)).render_about())


async def help_command(update: Update, context: BotContext) -> None:
    await reply(update, (await content_for(update, context)).render_help())


async def navigate_button(update: Update, context: BotContext) -> None:
    """Buttons on /start open a section as a new message, keeping the welcome visible."""
    query, button = pressed(update, NavigateButton)
    await query.answer()
    section = button.section
    if section in {"setup", "settings"}:
        await (begin_setup if section == "setup" else show_settings)(update, context)
        return
    await send_section(update, context, section)
