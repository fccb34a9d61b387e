"""The sleep diary in the chat: the morning check-in, /checkin, /diary, /progress and the export.

Thin: the rules live in ``bot.diary`` (which night, pre-filled habits, when to ask to stop,
the insights and the chart), the rows in the store. Every word comes from content/diary.toml
through ``diary_text``, in the person's language (``content_for``).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Final

from telegram import Chat, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update

from bot.callback_data import (
    DiaryDraftButton,
    DiaryNightButton,
    DiaryWord,
    DiaryWordName,
    Draft,
    DraftOp,
    decode,
    encode,
)
from bot.content import Content
from bot.context import BotContext
from bot.diary.checkin import (
    UNANSWERED_BEFORE_ASKING,
    MorningAction,
    morning_action,
    night_to_log,
    prefill_habits,
    toggle_habit,
    unanswered_streak,
)
from bot.diary.insights import diary_insights
from bot.diary.models import (
    CHART_NIGHTS,
    MAX_RATING,
    RATINGS,
    DiaryEntry,
    Habit,
    OnsetBucket,
    recent_nights,
)
from bot.diary.text import DiaryText, render_caption
from bot.diary.wake import (
    CHECKIN_KIND,
    MAX_SLEEP_MINUTES,
    MIN_SLEEP_MINUTES,
    wake_time_after,
)
from bot.diary.weekly import WEEKLY_KIND, weekly_last_night
from bot.diary.worker import ChartWorker
from bot.dispatch import Composer, NothingToSend, Outgoing
from bot.handlers.common import content_for, edit_in_place, reply
from bot.storage import ClaimedDelivery, Person, Store
from bot.telegram_html import escape
from bot.timezones import UnknownTimezone, tzinfo_for

log = logging.getLogger(__name__)

DIARY_NIGHTS: Final = 14
"""/diary lists this many nights."""
OLDEST_NIGHT: Final = timedelta(days=DIARY_NIGHTS)
"""A check-in button older than this (or for a future night) is refused: forged or stale."""
CHART_WORKER_KEY: Final = "diary_chart_worker"
WAKE_STEP_MINUTES: Final = 30
"""Earlier/Later in /settings move the check-in by this much."""


def diary_text(content: Content) -> DiaryText:
    """The one look-up of the diary's words (switch here to a per-person language)."""
    return content.diary


# --------------------------------------------------------------------------------------------
# Keyboards and texts (pure)


def _draft(op: DraftOp, draft: Draft) -> str:
    return encode(DiaryDraftButton(op, draft))


def question(
    night: date, prefill: frozenset[Habit], words: DiaryText
) -> tuple[str, InlineKeyboardMarkup]:
    """The first step: "How did you sleep?" with five buttons in one row."""
    row = [
        InlineKeyboardButton(
            label,
            callback_data=_draft("e", Draft(night, rating, prefill, None)),
        )
        for rating, label in zip(RATINGS, words.checkin.rating_buttons, strict=True)
    ]
    html = _fill(words.checkin.question_html, night=escape(words.night_label(night)))
    return html, InlineKeyboardMarkup([row])


def details(draft: Draft, words: DiaryText) -> tuple[str, InlineKeyboardMarkup]:
    """The second step, edited in place: the habit toggles, the onset row and Save."""
    rows: list[list[InlineKeyboardButton]] = []
    for habit in Habit:
        mark = "✅" if habit in draft.habits else "⬜"
        toggled = Draft(draft.night, draft.rating, toggle_habit(draft.habits, habit), draft.onset)
        rows.append(
            [
                InlineKeyboardButton(
                    f"{mark} {words.habit_label(habit)}",
                    callback_data=_draft("e", toggled),
                )
            ]
        )
    onset_row = []
    for bucket in OnsetBucket:
        chosen = bucket == draft.onset
        after = Draft(draft.night, draft.rating, draft.habits, None if chosen else bucket)
        onset_row.append(
            InlineKeyboardButton(
                ("• " if chosen else "") + words.onset_label(bucket),
                callback_data=_draft("e", after),
            )
        )
    rows.append(onset_row[:2])
    rows.append(onset_row[2:])
    rows.append([InlineKeyboardButton(words.checkin.save_button, callback_data=_draft("s", draft))])
    html = _fill(words.checkin.details_html, **_night_rating(draft.night, draft.rating, words))
    return html, InlineKeyboardMarkup(rows)


def ask_to_stop(count: int, words: DiaryText) -> tuple[str, InlineKeyboardMarkup]:
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    words.checkin.keep_asking_button, callback_data=encode(DiaryWord("keep"))
                ),
                InlineKeyboardButton(
                    words.checkin.stop_asking_button, callback_data=encode(DiaryWord("stop"))
                ),
            ]
        ]
    )
    return _fill(words.checkin.ask_stop_html, count=str(count)), keyboard


def checkin_settings_row(person: Person, content: Content) -> list[InlineKeyboardButton]:
    """The /settings row: the morning check-in's switch, and Earlier/Later while it is on."""
    words = diary_text(content).checkin
    if not person.checkin_on:
        return [
            InlineKeyboardButton(words.settings_off_button, callback_data=encode(DiaryWord("on")))
        ]
    return [
        InlineKeyboardButton(words.settings_on_button, callback_data=encode(DiaryWord("off"))),
        InlineKeyboardButton(words.earlier_button, callback_data=encode(DiaryWord("earlier"))),
        InlineKeyboardButton(words.later_button, callback_data=encode(DiaryWord("later"))),
    ]


def weekly_settings_row(person: Person, content: Content) -> list[InlineKeyboardButton]:
    """The /settings row of the weekly chart: its switch, and the day while it is on."""
    words = diary_text(content).weekly
    if not person.weekly_on:
        return [InlineKeyboardButton(words.off_button, callback_data=encode(DiaryWord("won")))]
    return [
        InlineKeyboardButton(words.on_button, callback_data=encode(DiaryWord("woff"))),
        InlineKeyboardButton(words.day_button, callback_data=encode(DiaryWord("wday"))),
    ]


def checkin_settings_line(person: Person, content: Content) -> str:
    """The /settings lines: the check-in on at which wake time, or off; the weekly chart."""
    words = diary_text(content).checkin
    if not person.checkin_on or person.checkin is None or person.bedtime is None:
        line = words.settings_off_html
    else:
        wake = wake_time_after(person.bedtime, person.checkin.offset_minutes)
        line = _fill(words.settings_on_html, wake_time=content.ui.clock(wake))
    return line + "\n" + weekly_settings_line(person, content)


def weekly_settings_line(person: Person, content: Content) -> str:
    words = diary_text(content).weekly
    if not person.weekly_on or person.weekly is None:
        return words.settings_off_html
    return _fill(words.settings_on_html, day=escape(words.days[person.weekly.offset_minutes]))


def diary_listing(entries: list[DiaryEntry], last_night: date, words: DiaryText) -> str:
    """/diary: the last 14 nights, newest first, each rating as "4/5"."""
    shown = recent_nights(entries, last_night=last_night, count=DIARY_NIGHTS)
    if not shown:
        return words.diary.empty_html
    by_night = {entry.night: entry for entry in shown}
    lines = [
        _fill(
            words.diary.heading_html,
            count=str(DIARY_NIGHTS),
            nights_logged=escape(words.nights.format(len(shown))),
        )
    ]
    for back in range(DIARY_NIGHTS):
        night = last_night - timedelta(days=back)
        name = escape(words.night_label(night))
        entry = by_night.get(night)
        if entry is None:
            lines.append(_fill(words.diary.missing_html, night=name))
            continue
        done = [words.habit_label(habit) for habit in Habit if entry.did(habit)]
        habits = words.diary.habit_separator.join(done) if done else words.diary.no_habits
        onset = (
            ""
            if entry.onset is None
            else _fill(words.diary.onset_html, onset=escape(words.onset_label(entry.onset)))
        )
        lines.append(
            _fill(
                words.diary.line_html,
                night=name,
                rating=str(entry.rating),
                max_rating=str(MAX_RATING),
                habits=escape(habits),
                onset=onset,
            )
        )
    return "\n".join(lines)


def export_csv(entries: list[DiaryEntry]) -> bytes:
    """The machine-readable export: one row per night, stable column names (the ids)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["night", "rating", *(habit.value for habit in Habit), "onset", "logged_at"])
    for entry in entries:
        writer.writerow(
            [
                entry.night.isoformat(),
                entry.rating,
                *(int(entry.did(habit)) for habit in Habit),
                "" if entry.onset is None else entry.onset.value,
                entry.logged_at.isoformat(),
            ]
        )
    return out.getvalue().encode("utf-8")


def _fill(template: str, **values: str) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def _night_rating(night: date, rating: int, words: DiaryText) -> dict[str, str]:
    return {
        "night": escape(words.night_label(night)),
        "rating": str(rating),
        "max_rating": str(MAX_RATING),
    }


# --------------------------------------------------------------------------------------------
# The scheduled morning check-in (through the dispatcher)


def checkin_composer(store: Store, content_of: Callable[[ClaimedDelivery], Content]) -> Composer:
    """What the dispatcher sends for a due check-in: the question, or once per streak of
    three unanswered mornings the "turn check-ins off?" question instead."""

    async def compose(delivery: ClaimedDelivery) -> Outgoing:
        words = diary_text(content_of(delivery))
        morning = await store.checkin_morning(delivery.chat_id, delivery.due_at)
        if morning is None:
            raise LookupError(f"chat {delivery.chat_id} has no time zone for its check-in")
        if morning.night_logged and morning.asked_to_stop_on != morning.morning:
            raise NothingToSend("night already logged")  # /checkin came first
        action = morning_action(morning.history, asked_to_stop_on=morning.asked_to_stop_on)
        if morning.asked_to_stop_on == morning.morning:
            action = MorningAction.ASK_TO_STOP  # a retry of this morning's question
        if action is MorningAction.ASK_TO_STOP:
            await store.mark_checkin_stop_asked(delivery.chat_id, morning.morning)
            streak = max(unanswered_streak(morning.history), UNANSWERED_BEFORE_ASKING)
            return Outgoing(*ask_to_stop(streak, words))
        done = await store.done_reminder_kinds(delivery.chat_id, morning.night, morning.tz)
        return Outgoing(*question(morning.night, prefill_habits(done), words))

    return compose


def weekly_composer(
    store: Store,
    content_of: Callable[[ClaimedDelivery], Content],
    worker: Callable[[], ChartWorker],
) -> Composer:
    """The weekly summary: the /progress chart and caption, with the weekly heading."""

    async def compose(delivery: ClaimedDelivery) -> Outgoing:
        person = await store.get_person(delivery.chat_id)
        tz = _tz(person)
        if tz is None:
            raise LookupError(f"chat {delivery.chat_id} has no time zone for its summary")
        words = diary_text(content_of(delivery))
        last_night = weekly_last_night(delivery.due_at, tz)
        png, caption = await _chart(store, worker(), delivery.chat_id, last_night, words)
        return Outgoing(words.weekly_caption(caption), photo=png)

    return compose


async def _chart(
    store: Store, worker: ChartWorker, chat_id: int, last_night: date, words: DiaryText
) -> tuple[bytes, str]:
    """The 4-week chart ending with ``last_night`` and its caption (/progress, weekly)."""
    since = last_night - timedelta(days=CHART_NIGHTS - 1)
    entries = recent_nights(
        await store.diary(chat_id, since=since), last_night=last_night, count=CHART_NIGHTS
    )
    caption = render_caption(diary_insights(entries), words)
    png = await worker.render(entries, last_night=last_night, labels=words.chart_labels())
    return png, caption


# --------------------------------------------------------------------------------------------
# Handlers


def _tz(person: Person | None) -> tzinfo | None:
    if person is None or person.timezone is None:
        return None
    try:
        return tzinfo_for(person.timezone)
    except UnknownTimezone:
        return None


async def checkin_command(update: Update, context: BotContext) -> None:
    """/checkin: log last night now; if it is logged already, ask before replacing it."""
    chat = update.effective_chat
    assert chat is not None
    words = diary_text(await content_for(update, context))
    person = await context.store.get_person(chat.id)
    tz = _tz(person)
    if tz is None:
        await reply(update, words.checkin.needs_timezone_html)
        return
    night = night_to_log(context.clock.now(), tz)
    existing = await context.store.diary_entry(chat.id, night)
    if existing is not None:
        await reply(update, *_replace_question(existing, words))
        return
    await reply(update, *await _question_for(update, context, chat.id, night, tz))


def _replace_question(entry: DiaryEntry, words: DiaryText) -> tuple[str, InlineKeyboardMarkup]:
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    words.checkin.replace_button,
                    callback_data=encode(DiaryNightButton("n", entry.night)),
                ),
                InlineKeyboardButton(
                    words.checkin.keep_button,
                    callback_data=encode(DiaryNightButton("k", entry.night)),
                ),
            ]
        ]
    )
    html = _fill(
        words.checkin.replace_question_html, **_night_rating(entry.night, entry.rating, words)
    )
    return html, keyboard


async def _question_for(
    update: Update, context: BotContext, chat_id: int, night: date, tz: tzinfo
) -> tuple[str, InlineKeyboardMarkup]:
    done = await context.store.done_reminder_kinds(chat_id, night, tz)
    return question(night, prefill_habits(done), diary_text(await content_for(update, context)))


async def diary_button(update: Update, context: BotContext) -> None:
    """Every diary button. The data was pattern-checked at registration; it is parsed and its
    night checked again here, and anything impossible gets a clear answer, not an error."""
    query = update.callback_query
    chat = update.effective_chat
    assert query is not None and query.data is not None and chat is not None
    words = diary_text(await content_for(update, context))
    store, now = context.store, context.clock.now()
    button = decode(query.data)
    person = await store.get_person(chat.id)
    tz = _tz(person)
    night = None
    if isinstance(button, DiaryDraftButton):
        night = button.draft.night
    elif isinstance(button, DiaryNightButton):
        night = button.night
    if not isinstance(button, DiaryDraftButton | DiaryNightButton | DiaryWord) or (
        night is not None and not _plausible(night, now, tz)
    ):
        log.info("refused diary callback data in update %d", update.update_id)
        await query.answer()
        await reply(update, words.checkin.invalid_html)
        return

    match button:
        case DiaryDraftButton("e", draft):
            await query.answer()
            await edit_in_place(query, *details(draft, words))
        case DiaryDraftButton(_, draft):  # "s": save
            entry = DiaryEntry(draft.night, draft.rating, now, draft.habits, draft.onset)
            await store.save_diary_entry(chat.id, entry)
            await query.answer()
            html = _fill(
                words.checkin.saved_html, **_night_rating(draft.night, draft.rating, words)
            )
            await edit_in_place(query, html)
        case DiaryNightButton("n", night):
            await query.answer()
            question_ = await _question_for(update, context, chat.id, night, tz or UTC)
            await edit_in_place(query, *question_)
        case DiaryNightButton():  # "k": keep the entry
            await query.answer()
            await edit_in_place(query, words.checkin.kept_html)
        case DiaryWord(word):
            await _word(update, context, word, person)


def _plausible(night: date, now: datetime, tz: tzinfo | None) -> bool:
    """A night a real button can name: not in the future, not older than two weeks."""
    today = now.astimezone(tz or UTC).date()
    return today - OLDEST_NIGHT <= night < today


async def _word(
    update: Update, context: BotContext, word: DiaryWordName, person: Person | None
) -> None:
    query = update.callback_query
    chat = update.effective_chat
    assert query is not None and chat is not None
    words = diary_text(await content_for(update, context)).checkin
    store, now = context.store, context.clock.now()
    await query.answer()
    if word == "keep":
        await edit_in_place(query, words.keep_asking_html)
        return
    if word in ("stop", "off", "skip"):
        if person is not None and person.checkin is not None:
            person = await store.set_checkin(chat.id, now, enabled=False)
        if word == "stop":
            await edit_in_place(query, words.stopped_html)
        elif word == "skip":
            await edit_in_place(query, words.turned_off_html)
        else:
            await _settings_again(update, context, person, words.turned_off_html)
        return
    if word in ("won", "woff", "wday"):
        await _weekly_word(update, context, word, person)
        return
    if word in ("earlier", "later"):
        if person is None or person.checkin is None or person.bedtime is None:
            await reply(update, words.needs_bedtime_html)
            return
        step = -WAKE_STEP_MINUTES if word == "earlier" else WAKE_STEP_MINUTES
        sleep = min(max(person.checkin.offset_minutes + step, MIN_SLEEP_MINUTES), MAX_SLEEP_MINUTES)
        person = await store.set_checkin(
            chat.id, now, wake_time=wake_time_after(person.bedtime, sleep)
        )
        from bot.handlers.settings import settings_view  # settings imports this module

        await edit_in_place(query, *settings_view(person, await content_for(update, context), now))
        return
    # "on" (settings) or "yes" (the set-up's offer)
    if person is None or person.timezone is None:
        await reply(update, words.needs_timezone_html)
        return
    if person.bedtime is None:
        await reply(update, words.needs_bedtime_html)
        return
    person = await store.set_checkin(chat.id, now, enabled=True)
    assert person.checkin is not None and person.bedtime is not None
    wake = wake_time_after(person.bedtime, person.checkin.offset_minutes)
    clock = (await content_for(update, context)).ui.clock
    done = _fill(words.turned_on_html, wake_time=clock(wake))
    if word == "yes":
        await edit_in_place(query, done)
    else:
        await _settings_again(update, context, person, done)


async def _weekly_word(
    update: Update, context: BotContext, word: str, person: Person | None
) -> None:
    """The weekly chart's switch and day, from /settings."""
    chat = update.effective_chat
    assert chat is not None
    words = diary_text(await content_for(update, context))
    store, now = context.store, context.clock.now()
    if person is None or _tz(person) is None:
        await reply(update, words.checkin.needs_timezone_html)
        return
    if word == "woff":
        person = await store.set_weekly(chat.id, now, enabled=False)
        await _settings_again(update, context, person, words.weekly.turned_off_html)
        return
    if word == "won":
        person = await store.set_weekly(chat.id, now, enabled=True)
        done = words.weekly.turned_on_html
    else:  # "wday": the next day of the week
        current = person.weekly.offset_minutes if person.weekly is not None else 6
        person = await store.set_weekly(chat.id, now, weekday=(current + 1) % 7)
        done = ""
    assert person.weekly is not None
    day = escape(words.weekly.days[person.weekly.offset_minutes])
    await _settings_again(update, context, person, _fill(done, day=day) if done else None)


async def _settings_again(
    update: Update, context: BotContext, person: Person | None, done: str | None
) -> None:
    """From /settings: the settings message shows the new switch, and a line confirms it."""
    from bot.handlers.settings import settings_view  # settings imports this module

    query = update.callback_query
    if person is not None and query is not None:
        await edit_in_place(
            query, *settings_view(person, await content_for(update, context), context.clock.now())
        )
    if done:
        await reply(update, done)


def onboarding_offer(person: Person, content: Content) -> tuple[str, InlineKeyboardMarkup]:
    """The set-up's last, optional step: the morning check-in, yes or no."""
    words = diary_text(content).checkin
    assert person.bedtime is not None
    wake = content.ui.clock(wake_time_after(person.bedtime, 8 * 60))
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    words.onboarding_yes_button, callback_data=encode(DiaryWord("yes"))
                ),
                InlineKeyboardButton(
                    words.onboarding_no_button, callback_data=encode(DiaryWord("skip"))
                ),
            ]
        ]
    )
    return _fill(words.onboarding_question_html, wake_time=wake), keyboard


async def _looking_back(update: Update, context: BotContext) -> tuple[Chat, DiaryText, date]:
    """/diary's and /progress's common start: the chat, its words, the last night to show
    (in the person's timezone; UTC before they gave one)."""
    chat = update.effective_chat
    assert chat is not None
    words = diary_text(await content_for(update, context))
    person = await context.store.get_person(chat.id)
    return chat, words, night_to_log(context.clock.now(), _tz(person) or UTC)


async def diary_command(update: Update, context: BotContext) -> None:
    """/diary: the last 14 nights as compact text."""
    chat, words, last_night = await _looking_back(update, context)
    since = last_night - timedelta(days=DIARY_NIGHTS - 1)
    entries = await context.store.diary(chat.id, since=since)
    await reply(update, diary_listing(entries, last_night, words))


def chart_worker(bot_data: dict[Any, Any]) -> ChartWorker:
    """The one chart process of this bot (in ``Application.bot_data``), started on the first
    chart; /progress and the weekly summary share it."""
    worker = bot_data.get(CHART_WORKER_KEY)
    if not isinstance(worker, ChartWorker):
        worker = bot_data[CHART_WORKER_KEY] = ChartWorker()
    return worker


def close_chart_worker(bot_data: dict[Any, Any]) -> None:
    """On shutdown: stop the chart process if one was started."""
    worker = bot_data.pop(CHART_WORKER_KEY, None)
    if isinstance(worker, ChartWorker):
        worker.close()


async def progress_command(update: Update, context: BotContext) -> None:
    """/progress: the 4-week chart as a PNG photo, with the association caption."""
    chat, words, last_night = await _looking_back(update, context)
    try:
        png, caption = await _chart(
            context.store, chart_worker(context.bot_data), chat.id, last_night, words
        )
    except Exception:
        log.exception("could not render the /progress chart")
        await reply(update, words.data.progress_failed_html)
        return
    await chat.send_photo(InputFile(png, filename="progress.png"), caption=caption)


async def send_export(update: Update, context: BotContext) -> None:
    """/mydata's machine-readable part: the diary as a CSV document (when there is one)."""
    chat = update.effective_chat
    assert chat is not None
    entries = await context.store.diary(chat.id)
    if not entries:
        return
    words = diary_text(await content_for(update, context)).data
    await chat.send_document(
        InputFile(export_csv(entries), filename=words.export_file_name),
        caption=words.export_caption_html,
    )


__all__ = [
    "CHECKIN_KIND",
    "WEEKLY_KIND",
    "checkin_command",
    "checkin_composer",
    "checkin_settings_line",
    "checkin_settings_row",
    "close_chart_worker",
    "diary_button",
    "diary_command",
    "onboarding_offer",
    "progress_command",
    "send_export",
    "weekly_composer",
    "weekly_settings_row",
]
