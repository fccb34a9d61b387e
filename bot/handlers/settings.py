"""Onboarding and settings: timezone, bedtime, reminders on/off, pause, stop.

Handlers here only translate between Telegram and the store; parsing and time arithmetic live
in bot.onboarding, bot.schedule and bot.timezones, which know nothing about Telegram.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Final

from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)

from bot import callback_data, usecases
from bot.callback_data import SettingsButton
from bot.content import Content
from bot.context import BotContext
from bot.handlers.common import (
    command_argument,
    content_for,
    edit_in_place,
    pressed,
    reply,
)
from bot.handlers.diary import (
    checkin_settings_line,
    checkin_settings_row,
    weekly_settings_row,
)
from bot.i18n import Raw
from bot.keyboards import diet_keyboard
from bot.meals import EXERCISE_KIND
from bot.onboarding import (
    BEDTIME_CHOICES,
    InputProblem,
    parse_clock_time,
    parse_nights,
    upcoming_lines,
)
from bot.replies import prompt_yields_to_triage
from bot.storage import Person
from bot.timezones import (
    TimezoneChoice,
    TimezoneLookup,
    UnknownTimezone,
    lookup_timezone,
    timezone_at,
    tzinfo_for,
    utc_offset_label,
)
from bot.triage import Triage
from bot.usecases import SetupStep

AWAITING = "awaiting"


def _chat_id(update: Update) -> int:
    chat = update.effective_chat
    assert chat is not None
    return chat.id


# --- keyboards ---------------------------------------------------------------------------


def location_keyboard(content: Content) -> ReplyKeyboardMarkup:
    ui = content.ui
    return ReplyKeyboardMarkup(
        [[KeyboardButton(ui.text("button.share_location"), request_location=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
        input_field_placeholder=ui.text("prompt.location_placeholder"),
    )


def bedtime_keyboard(
    content: Content, action: str = "bed", *, from_settings: bool = False
) -> InlineKeyboardMarkup:
    ui = content.ui
    buttons = [
        InlineKeyboardButton(
            ui.clock(choice),
            callback_data=callback_data.settings(action, choice.strftime("%H%M")),
        )
        for choice in BEDTIME_CHOICES
    ]
    rows = [buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    if action == "wbed":
        rows.append(
            [
                InlineKeyboardButton(
                    ui.text("button.same_as_weekdays"),
                    callback_data=callback_data.settings("wbed", "off"),
                )
            ]
        )
    if from_settings:
        rows.append(
            [
                InlineKeyboardButton(
                    ui.text("button.back_to_settings"), callback_data=callback_data.settings("view")
                )
            ]
        )
    return InlineKeyboardMarkup(rows)


def choice_label(content: Content, choice: TimezoneChoice) -> str:
    """A "did you mean" button: a city's name as it is, a region's in the person's language."""
    if choice.region:
        return content.ui.text(f"zone.{choice.region}", zone=choice.key)
    return choice.label


def candidates_keyboard(content: Content, lookup: TimezoneLookup) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    choice_label(content, choice)[:60],
                    callback_data=callback_data.settings("tz", choice.key),
                )
            ]
            for choice in lookup.candidates
        ]
    )


def settings_view(
    person: Person, content: Content, now_utc: datetime
) -> tuple[str, InlineKeyboardMarkup]:
    """The /settings message: everything stored that shapes reminders, and a button for each."""
    ui = content.ui
    lines = [ui.text("settings.title_html")]
    timezone = ui.text("settings.not_set")
    if person.timezone:
        offset = utc_offset_label(person.timezone, now_utc)
        timezone = ui.text("settings.timezone_value_html", timezone=person.timezone, offset=offset)
    lines.append(ui.text("settings.timezone_html", timezone=Raw(timezone)))
    bedtime = ui.clock(person.bedtime) if person.bedtime else ui.text("settings.not_set")
    lines.append(ui.text("settings.bedtime_html", bedtime=bedtime))
    weekend = (
        ui.clock(person.weekend_bedtime)
        if person.weekend_bedtime
        else ui.text("settings.same_as_weekdays")
    )
    lines.append(ui.text("settings.weekend_html", bedtime=weekend))
    lines.append(ui.text("settings.diet_html", diet=content.diet_name(person.diet)))
    lines.append(ui.text("settings.reminders_html", status=_status(person, content, now_utc)))
    rows: list[list[InlineKeyboardButton]] = []
    for setting in person.reminders:
        kind = content.reminder_kind(setting.kind)
        state = "on" if setting.enabled else "off"
        offset = ui.offset(setting.offset_minutes)
        label = ui.text(
            "button.enabled" if setting.enabled else "button.disabled", label=kind.label
        )
        row = [
            InlineKeyboardButton(label, callback_data=callback_data.settings("toggle", kind.kind))
        ]
        if usecases.time_follows_exercise(person, kind.kind):
            # It comes with the exercise note: its line says so, and Earlier/Later would move
            # a time nothing is sent at (the exercise note's own buttons move both).
            lines.append(ui.text("settings.reminder_with_exercise_html", title=kind.title))
        else:
            lines.append(
                ui.text(f"settings.reminder_{state}_html", title=kind.title, offset=offset)
            )
            row += [
                InlineKeyboardButton(
                    ui.text("button.earlier"),
                    callback_data=callback_data.settings("earlier", kind.kind),
                ),
                InlineKeyboardButton(
                    ui.text("button.later"),
                    callback_data=callback_data.settings("later", kind.kind),
                ),
            ]
        rows.append(row)
    lines.extend(_evening_lines(person, content))
    rows.append(_evening_row(person, content))
    if person.timezone and person.bedtime and person.subscribed and not person.blocked:
        tz = tzinfo_for(person.timezone)
        upcoming = upcoming_lines(
            (
                (_upcoming_title(person, content, r.kind), r.next_fire_at if r.enabled else None)
                for r in person.reminders
            ),
            tz,
            now_utc,
            ui,
        )
        if upcoming:
            lines.append("\n" + ui.text("settings.next_heading_html"))
            lines.extend(upcoming)
    lines.append(checkin_settings_line(person, content))
    rows.append(checkin_settings_row(person, content))
    rows.append(weekly_settings_row(person, content))
    rows.append(
        [
            InlineKeyboardButton(
                ui.text("button.bedtime"), callback_data=callback_data.settings("pick_bed")
            ),
            InlineKeyboardButton(
                ui.text("button.weekend_bedtime"), callback_data=callback_data.settings("pick_wbed")
            ),
        ]
    )
    rows.append(
        [
            InlineKeyboardButton(
                ui.text("button.timezone"), callback_data=callback_data.settings("ask_tz")
            ),
            InlineKeyboardButton(
                ui.text("button.diet", diet=content.diet_name(person.diet)),
                callback_data=callback_data.diet("pick"),
            ),
        ]
    )
    if person.subscribed:
        pause_row = [
            InlineKeyboardButton(
                ui.plural("button.pause", nights),
                callback_data=callback_data.settings("pause", str(nights)),
            )
            for nights in (1, 7)
        ]
        if person.paused_until is not None and person.paused_until > now_utc:
            pause_row = [
                InlineKeyboardButton(
                    ui.text("button.resume"), callback_data=callback_data.settings("resume")
                )
            ]
        rows.append(pause_row)
        rows.append(
            [
                InlineKeyboardButton(
                    ui.text("button.stop"), callback_data=callback_data.settings("stop")
                )
            ]
        )
    else:
        rows.append(
            [
                InlineKeyboardButton(
                    ui.text("button.turn_on"), callback_data=callback_data.settings("resume")
                )
            ]
        )
    return "\n".join(lines), InlineKeyboardMarkup(rows)


def _evening_lines(person: Person, content: Content) -> list[str]:
    """The one evening message's line, while chosen: in effect, or waiting for both
    reminders it joins to be on."""
    if not person.evening_message:
        return []
    key = "settings.evening_on_html" if person.evening_merged else "settings.evening_idle_html"
    return [content.ui.text(key)]


def _evening_row(person: Person, content: Content) -> list[InlineKeyboardButton]:
    """The switch of the one evening message (meal idea and exercise note together)."""
    ui, on = content.ui, person.evening_message
    label = ui.text("button.enabled" if on else "button.disabled", label=ui.text("button.evening"))
    return [
        InlineKeyboardButton(
            label, callback_data=callback_data.settings("evening", "off" if on else "on")
        )
    ]


def _upcoming_title(person: Person, content: Content, kind: str) -> str:
    """A reminder's title in the "Next reminders" list; the exercise note's is the evening
    message's while the meal idea rides with it (the meal's own time is then empty)."""
    if kind == EXERCISE_KIND and person.evening_merged:
        return content.evening.title
    return content.reminder_kind(kind).title


def _status(person: Person, content: Content, now_utc: datetime) -> str:
    ui = content.ui
    if person.blocked:
        return ui.text("settings.status_blocked")
    if not person.subscribed:
        return ui.text("settings.status_stopped")
    if not person.ready:
        return ui.text("settings.status_waiting")
    if person.paused_until is not None and person.paused_until > now_utc and person.timezone:
        local = person.paused_until.astimezone(tzinfo_for(person.timezone))
        return ui.text("settings.status_paused", until=ui.day_and_time(local))
    return ui.text("settings.status_on")


# --- onboarding --------------------------------------------------------------------------

SET_UP = "setup.set_up_html"
SAVED = "setup.saved_html"
REMINDERS_ON = "setup.reminders_on_html"
"""Headlines above the settings page: their catalogue keys. SET_UP marks the first set-up."""


def _problem(content: Content, problem: InputProblem, example: str) -> str:
    return content.ui.text(
        "setup.example_html", problem=problem.describe(content.ui), example=example
    )


async def begin_setup(update: Update, context: BotContext) -> None:
    """'Set up nightly reminders': ask only for what is still missing, then confirm."""
    person = (await usecases.subscribe(context.store, context.clock, _chat_id(update))).person
    if person.timezone is None:
        await ask_timezone(update, context)
    elif person.bedtime is None:
        await ask_bedtime(update, context)
    else:
        await confirm(update, context, person)


async def ask_timezone(update: Update, context: BotContext) -> None:
    if context.user_data is not None:
        context.user_data[AWAITING] = "timezone"
    content = await content_for(update, context)
    await reply_with_keyboard(
        update, content.ui.text("prompt.timezone_html"), location_keyboard(content)
    )


async def ask_bedtime(update: Update, context: BotContext) -> None:
    if context.user_data is not None:
        context.user_data[AWAITING] = "bedtime"
    content = await content_for(update, context)
    await reply(update, content.ui.text("prompt.bedtime_html"), bedtime_keyboard(content))


async def reply_with_keyboard(
    update: Update, text: str, keyboard: ReplyKeyboardMarkup | ReplyKeyboardRemove
) -> None:
    chat = update.effective_chat
    if chat is not None:
        await chat.send_message(text, reply_markup=keyboard)


def headline_of(step: SetupStep) -> str:
    """'You're set up' for the first set-up, a plain 'Saved' for a later change."""
    return SET_UP if step.first_setup else SAVED


def with_headline(content: Content, headline: str, text: str) -> str:
    """The settings page under a headline (a catalogue key: SET_UP, SAVED, REMINDERS_ON)."""
    return f"{content.ui.text(headline)}\n\n{text}"


async def confirm(
    update: Update, context: BotContext, person: Person, headline: str = SET_UP
) -> None:
    """The end of onboarding: what we understood, and tonight's reminders in local time."""
    if context.user_data is not None:
        context.user_data.pop(AWAITING, None)
    content = await content_for(update, context)
    text, markup = settings_view(person, content, context.clock.now())
    await reply(update, with_headline(content, headline, text), markup)


async def ask_diet(update: Update, context: BotContext, query: CallbackQuery | None = None) -> None:
    """The first set-up's last question: the diet, one tap (Skip keeps omnivore).

    With `query`, the pressed message (the bedtime buttons) becomes the question.
    """
    if context.user_data is not None:
        context.user_data[AWAITING] = "diet"
    content = await content_for(update, context)
    keyboard = diet_keyboard(content, "setup", skip=True)
    if query is not None:
        await edit_in_place(query, content.render_diet_question(), keyboard)
    else:
        await reply(update, content.render_diet_question(), keyboard)


async def finish_setup(
    update: Update, context: BotContext, person: Person, headline: str = SET_UP
) -> None:
    """The first complete set-up asks the diet before the confirmation; later changes confirm."""
    if headline == SET_UP:
        await ask_diet(update, context)
    else:
        await confirm(update, context, person, headline)


async def after_timezone(
    update: Update, context: BotContext, person: Person, headline: str = SET_UP
) -> None:
    """Timezone stored: say so (removing the location keyboard), then the next missing step."""
    assert person.timezone is not None
    ui = (await content_for(update, context)).ui
    await reply_with_keyboard(
        update,
        ui.text(
            "setup.timezone_set_html",
            timezone=person.timezone,
            offset=utc_offset_label(person.timezone, context.clock.now()),
        ),
        ReplyKeyboardRemove(),
    )
    if person.bedtime is None:
        await ask_bedtime(update, context)
    else:
        await finish_setup(update, context, person, headline)


async def apply_timezone_query(update: Update, context: BotContext, query: str) -> None:
    # The first lookup builds the city index (~2 s): never on the event loop.
    await apply_timezone_lookup(update, context, await asyncio.to_thread(lookup_timezone, query))


async def apply_timezone_lookup(
    update: Update, context: BotContext, lookup: TimezoneLookup
) -> None:
    """Store a confident choice, offer candidates, or say what was wrong."""
    if lookup.choice is not None:
        step = await usecases.set_timezone(
            context.store, context.clock, _chat_id(update), lookup.choice.key
        )
        await after_timezone(update, context, step.person, headline_of(step))
        return
    content = await content_for(update, context)
    ui = content.ui
    if lookup.candidates:
        keyboard = candidates_keyboard(content, lookup)
        await reply(update, ui.text("setup.did_you_mean_html"), keyboard)
    else:
        problem = ui.text(f"problem.{lookup.problem or 'timezone_empty'}", typed=lookup.typed)
        await reply(update, html.escape(problem, quote=False))


# --- commands ----------------------------------------------------------------------------


async def close_prompt(update: Update, context: BotContext) -> None:
    """A command means the person moved on: free text is no longer an answer to our question.

    (/timezone and /bedtime without arguments open their prompt again right after.)
    """
    if context.user_data is not None:
        context.user_data.pop(AWAITING, None)


async def timezone_command(update: Update, context: BotContext) -> None:
    """/timezone Europe/Berlin | berlin | UTC+05:30; without an argument: show and ask."""
    query = command_argument(context.args)
    await context.store.ensure_person(_chat_id(update), context.clock.now())
    if not query:
        await ask_timezone(update, context)
        return
    await apply_timezone_query(update, context, query)


async def location_message(update: Update, context: BotContext) -> None:
    """A shared location is turned into a timezone offline; the coordinates are not stored."""
    message = update.effective_message
    assert message is not None and message.location is not None
    key = await asyncio.to_thread(
        timezone_at, message.location.latitude, message.location.longitude
    )
    if key is None:
        ui = (await content_for(update, context)).ui
        text = f"{ui.text('setup.no_timezone_at_place_html')} {ui.text('prompt.timezone_html')}"
        await reply(update, text)
        return
    step = await usecases.set_timezone(context.store, context.clock, _chat_id(update), key)
    await after_timezone(update, context, step.person, headline_of(step))


async def bedtime_command(update: Update, context: BotContext) -> None:
    """/bedtime 22:30 · /bedtime weekend 23:30 · /bedtime weekend off."""
    words = command_argument(context.args).split()
    if not words:
        await ask_bedtime(update, context)
        return
    weekend = words[0].lower() in {"weekend", "weekends"}
    value = " ".join(words[1:] if weekend else words)
    if weekend and value.lower() in {"off", "same", "none"}:
        step = await usecases.clear_weekend_bedtime(context.store, context.clock, _chat_id(update))
        await _after_bedtime(update, context, step)
        return
    try:
        bedtime = parse_clock_time(value)
    except InputProblem as problem:
        example = "/bedtime weekend 23:30" if weekend else "/bedtime 22:30"
        await reply(update, _problem(await content_for(update, context), problem, example))
        return
    step = await usecases.set_bedtime(
        context.store, context.clock, _chat_id(update), bedtime, weekend=weekend
    )
    await _after_bedtime(update, context, step)


async def _after_bedtime(update: Update, context: BotContext, step: SetupStep) -> None:
    """Confirm, or ask for what set-up still lacks (weekday bedtime first, then timezone)."""
    person = step.person
    ui = (await content_for(update, context)).ui
    if person.bedtime is None:
        weekend = (
            ui.clock(person.weekend_bedtime) if person.weekend_bedtime else ui.text("setup.cleared")
        )
        await reply(update, ui.text("setup.weekend_then_weekday_html", bedtime=weekend))
        await ask_bedtime(update, context)
    elif person.timezone is None:
        await reply(update, ui.text("setup.bedtime_saved_html", bedtime=ui.clock(person.bedtime)))
        await ask_timezone(update, context)
    else:
        await finish_setup(update, context, person, headline_of(step))


async def settings_command(update: Update, context: BotContext) -> None:
    await show_settings(update, context)


async def show_settings(update: Update, context: BotContext) -> None:
    person = await context.store.ensure_person(_chat_id(update), context.clock.now())
    if person.timezone is None or person.bedtime is None:
        await begin_setup(update, context)
        return
    content = await content_for(update, context)
    await reply(update, *settings_view(person, content, context.clock.now()))


async def pause_command(update: Update, context: BotContext) -> None:
    """/pause [nights]: skip whole nights starting tonight."""
    content = await content_for(update, context)
    try:
        nights = parse_nights(command_argument(context.args))
    except InputProblem as problem:
        await reply(update, html.escape(problem.describe(content.ui), quote=False))
        return
    person = await usecases.pause(context.store, context.clock, _chat_id(update), nights)
    if person is None:
        await reply(update, content.ui.text("setup.nothing_to_pause_html"))
        return
    await reply(update, *settings_view(person, content, context.clock.now()))


async def resume_command(update: Update, context: BotContext) -> None:
    person = await usecases.resume(context.store, context.clock, _chat_id(update))
    if person is None:
        await begin_setup(update, context)
        return
    await confirm(update, context, person, REMINDERS_ON)


async def stop_command(update: Update, context: BotContext) -> None:
    """/stop: no more messages at all, effective immediately; settings are kept for /resume."""
    await usecases.stop(context.store, context.clock, _chat_id(update))
    await reply(update, (await content_for(update, context)).ui.text("setup.stopped_html"))


async def free_text(update: Update, context: BotContext, verdict: Triage) -> bool:
    """Typed text while a prompt is open; False when the text was not for the prompt.

    Text the prompt can't use goes back to triage (False) unless triage found nothing in it
    either: "my partner says I stop breathing" while we wait for a timezone gets the red-flag
    answer, "Berln" gets "I couldn't find that timezone". The prompt stays open either way.
    """
    awaiting = (context.user_data or {}).get(AWAITING)
    message = update.effective_message
    if awaiting is None or message is None or not message.text:
        return False
    text = message.text
    if awaiting == "timezone":
        lookup = await asyncio.to_thread(lookup_timezone, text)
        if lookup.choice is None and not lookup.candidates and prompt_yields_to_triage(verdict):
            return False
        await apply_timezone_lookup(update, context, lookup)
        return True
    if awaiting == "bedtime":
        try:
            bedtime = parse_clock_time(text)
        except InputProblem as problem:
            if prompt_yields_to_triage(verdict):
                return False
            await reply(update, _problem(await content_for(update, context), problem, "22:30"))
            return True
        step = await usecases.set_bedtime(context.store, context.clock, _chat_id(update), bedtime)
        await _after_bedtime(update, context, step)
        return True
    if awaiting == "diet":
        content = await content_for(update, context)
        diet = content.find_diet(text)
        if diet is None:
            if prompt_yields_to_triage(verdict):
                return False
            keyboard = diet_keyboard(content, "setup", skip=True)
            await reply(update, content.render_diet_unknown(text), keyboard)
            return True
        person = await usecases.set_diet(context.store, context.clock, _chat_id(update), diet)
        await confirm(update, context, person, SET_UP)
        return True
    return False


# --- buttons -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingsPress:
    """One pressed 'set:*' button, parsed, with what every action needs."""

    update: Update
    context: BotContext
    query: CallbackQuery
    action: str
    value: str
    content: Content
    chat_id: int
    now: datetime
    person: Person | None


SettingsAction = Callable[[SettingsPress], Awaitable[Person | None]]
"""An action returns the person to show /settings for, or None when it answered itself."""


async def settings_button(update: Update, context: BotContext) -> None:
    """Every 'set:*' button; values are re-validated here because callback data can be forged."""
    query, button = pressed(update, SettingsButton)
    action, value = button.action, button.value or ""
    chat_id, now = _chat_id(update), context.clock.now()
    content = await content_for(update, context)
    # The set-up's first answers need no stored person, so their tap reads nothing first.
    needs_person = action not in ACTIONS_WITHOUT_A_PERSON
    person = await context.store.get_person(chat_id) if needs_person else None
    if person is None and needs_person:
        await query.answer(content.ui.text("alert.send_settings"), show_alert=True)
        return
    handler = SETTINGS_ACTIONS.get(action)
    if handler is None:
        await query.answer(content.ui.text("alert.button_invalid"), show_alert=True)
        return
    press = SettingsPress(update, context, query, action, value, content, chat_id, now, person)
    shown = await handler(press)
    if shown is not None:
        await query.answer()
        await edit_in_place(query, *settings_view(shown, content, now))


async def _erase(press: SettingsPress) -> None:
    ui, query = press.content.ui, press.query
    await query.answer()
    if press.value == "yes":
        # Their stored updates go too, up to this one: later ones are still to answer.
        erased = await press.context.store.delete_person(
            press.chat_id, inbox_through=press.update.update_id
        )
        if press.context.user_data is not None:
            press.context.user_data.clear()
        key = "data.erased_html" if erased else "data.nothing_stored_html"
        await edit_in_place(query, ui.text(key))
    else:
        await edit_in_place(query, ui.text("data.kept_html"))
    return None


async def _choose_timezone(press: SettingsPress) -> None:
    ui, query, context = press.content.ui, press.query, press.context
    try:
        tzinfo_for(press.value)
    except UnknownTimezone:
        await query.answer(ui.text("alert.timezone_invalid"), show_alert=True)
        return None
    await query.answer()
    step = await usecases.set_timezone(context.store, context.clock, press.chat_id, press.value)
    await edit_in_place(query, ui.text("setup.timezone_chosen_html", timezone=press.value))
    await after_timezone(press.update, context, step.person, headline_of(step))
    return None


async def _choose_bedtime(press: SettingsPress) -> None:
    ui, query, context, update = press.content.ui, press.query, press.context, press.update
    bedtime = _parse_button_clock(press.value)
    if bedtime is None and not (press.action == "wbed" and press.value == "off"):
        await query.answer(ui.text("alert.time_invalid"), show_alert=True)
        return None
    await query.answer()
    store, clock = context.store, context.clock
    if bedtime is None:
        step = await usecases.clear_weekend_bedtime(store, clock, press.chat_id)
    else:
        weekend = press.action == "wbed"
        step = await usecases.set_bedtime(store, clock, press.chat_id, bedtime, weekend=weekend)
    person = step.person
    if not person.ready:
        await _after_bedtime(update, context, step)
        return None
    if step.first_setup:
        await ask_diet(update, context, query)
        return None
    if context.user_data is not None:
        context.user_data.pop(AWAITING, None)
    await edit_in_place(query, *settings_view(person, press.content, press.now))
    return None


async def _pick_bedtime(press: SettingsPress) -> None:
    weekend = press.action == "pick_wbed"
    await press.query.answer()
    await edit_in_place(
        press.query,
        press.content.ui.text("prompt.weekend_bedtime_html" if weekend else "prompt.bedtime_html"),
        bedtime_keyboard(press.content, "wbed" if weekend else "bed", from_settings=True),
    )
    return None


async def _ask_timezone(press: SettingsPress) -> None:
    await press.query.answer()
    await ask_timezone(press.update, press.context)
    return None


async def _change_reminder(press: SettingsPress) -> Person | None:
    store, clock, person, kind = press.context.store, press.context.clock, press.person, press.value
    assert person is not None
    if press.action == "toggle":
        changed = await usecases.toggle_reminder(store, clock, person, kind)
    elif usecases.time_follows_exercise(person, kind):
        # A button /settings no longer shows (forged, or from a page before the evening message
        # was chosen): say why, change nothing.
        await press.query.answer(
            press.content.ui.text("alert.meal_time_follows_exercise"), show_alert=True
        )
        return None
    else:
        earlier = press.action == "earlier"
        changed = await usecases.move_reminder(store, clock, person, kind, earlier=earlier)
    if changed is None:
        await press.query.answer(press.content.ui.text("alert.unknown_reminder"), show_alert=True)
    return changed


async def _evening_message(press: SettingsPress) -> Person | None:
    """One evening message on or off (the value says which, so a double tap is harmless)."""
    if press.value not in {"on", "off"}:
        await _invalid(press)
        return None
    on = press.value == "on"
    return await usecases.set_evening_message(
        press.context.store, press.context.clock, press.chat_id, on
    )


async def _legacy_diet(press: SettingsPress) -> Person | None:
    """Buttons from before /diet existed cycled through the diets; still honoured."""
    if press.value not in press.content.foods_page.diet:
        await _invalid(press)
        return None
    return await usecases.set_diet(
        press.context.store, press.context.clock, press.chat_id, press.value
    )


async def _pause_button(press: SettingsPress) -> Person | None:
    nights = int(press.value) if press.value.isdigit() else 0  # 0: refused by the use case
    person = await usecases.pause(press.context.store, press.context.clock, press.chat_id, nights)
    if person is None:
        await _invalid(press)
    return person


async def _resume_button(press: SettingsPress) -> Person | None:
    person = await usecases.resume(press.context.store, press.context.clock, press.chat_id)
    if person is None:
        await press.query.answer()
        await begin_setup(press.update, press.context)
    return person


async def _stop_button(press: SettingsPress) -> Person | None:
    return await usecases.stop(press.context.store, press.context.clock, press.chat_id)


async def _view(press: SettingsPress) -> Person | None:
    return press.person


async def _invalid(press: SettingsPress) -> None:
    await press.query.answer(press.content.ui.text("alert.button_invalid"), show_alert=True)
    return None


SETTINGS_ACTIONS: Final[Mapping[str, SettingsAction]] = {
    "delete": _erase,
    "tz": _choose_timezone,
    "bed": _choose_bedtime,
    "wbed": _choose_bedtime,
    "pick_bed": _pick_bedtime,
    "pick_wbed": _pick_bedtime,
    "ask_tz": _ask_timezone,
    "toggle": _change_reminder,
    "earlier": _change_reminder,
    "later": _change_reminder,
    "evening": _evening_message,
    "diet": _legacy_diet,
    "pause": _pause_button,
    "resume": _resume_button,
    "stop": _stop_button,
    "view": _view,
}
"""What each 'set:<action>' button does; bot.callback_data.SETTINGS decides which parse."""
ACTIONS_WITHOUT_A_PERSON: Final = frozenset({"tz", "bed", "delete"})
"""The set-up's first answers and erasure work before anything is stored."""


def _parse_button_clock(value: str) -> time | None:
    if len(value) != 4 or not value.isdigit():
        return None
    hour, minute = int(value[:2]), int(value[2:])
    return time(hour, minute) if hour < 24 and minute < 60 else None
