"""The diary's words (content/diary.toml), validated at load, and the English caption renderer.

``bot.diary.insights`` computes numbers; this module turns them into the caption sent under
the /progress chart, with every sentence taken from the content file so a translation is a
file. Validation follows the rest of content/: one line naming the file and the problem
(ContentError), and every caption these templates can produce is checked as Telegram will
see it, including the 1024-character limit on photo captions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import product
from pathlib import Path
from typing import Annotated, Final

from pydantic import Field, StringConstraints

from bot.content_schema import (
    PLACEHOLDER,
    ContentError,
    Frozen,
    Html,
    Label,
    PlainText,
    WindowAfterMinutes,
    WindowBeforeMinutes,
    check_html,
    check_rendered,
    load_toml,
)
from bot.diary.insights import MIN_NIGHTS_PER_SIDE, HabitComparison, Insights, Verdict
from bot.diary.models import MAX_RATING, Habit, OnsetBucket
from bot.telegram_html import escape, telegram_length

DIARY_FILE: Final = "diary.toml"
MAX_CAPTION_LENGTH: Final = 1024
"""Telegram's limit for a photo caption, counted like a message (after the tags are removed)."""

_COMPARISON_FIELDS: Final = frozenset(
    {
        "habit",
        "average_with",
        "average_without",
        "count_with",
        "count_without",
        "nights_with",
        "nights_without",
    }
)
_ALLOWED_PLACEHOLDERS: Final[Mapping[str, frozenset[str]]] = {
    "summary_html": frozenset({"nights_logged", "count_logged", "average", "max_rating"}),
    "empty_html": frozenset(),
    "higher_html": _COMPARISON_FIELDS,
    "lower_html": _COMPARISON_FIELDS,
    "same_html": _COMPARISON_FIELDS,
    "more_nights_html": frozenset({"min_count"}),
    "association_html": frozenset(),
}
_TICK_PLACEHOLDERS: Final = frozenset({"day", "month", "month_number"})
_NIGHT_FORMAT_PLACEHOLDERS: Final = frozenset({"weekday", "day", "month", "month_number"})
_NIGHT_RATING: Final = frozenset({"night", "rating", "max_rating"})
_NONE: Final = frozenset[str]()
_BOT_PLACEHOLDERS: Final[Mapping[str, Mapping[str, frozenset[str]]]] = {
    "checkin": {
        "question_html": frozenset({"night"}),
        "details_html": _NIGHT_RATING,
        "saved_html": _NIGHT_RATING,
        "replace_question_html": _NIGHT_RATING,
        "kept_html": _NONE,
        "ask_stop_html": frozenset({"count"}),
        "stopped_html": _NONE,
        "keep_asking_html": _NONE,
        "invalid_html": _NONE,
        "needs_timezone_html": _NONE,
        "needs_bedtime_html": _NONE,
        "settings_on_html": frozenset({"wake_time"}),
        "settings_off_html": _NONE,
        "turned_on_html": frozenset({"wake_time"}),
        "turned_off_html": _NONE,
        "onboarding_question_html": frozenset({"wake_time"}),
    },
    "diary": {
        "heading_html": frozenset({"count", "nights_logged"}),
        "line_html": frozenset({"night", "rating", "max_rating", "habits", "onset"}),
        "missing_html": frozenset({"night"}),
        "empty_html": _NONE,
        "onset_html": frozenset({"onset"}),
    },
    "weekly": {
        "heading_html": _NONE,
        "settings_on_html": frozenset({"day"}),
        "settings_off_html": _NONE,
        "turned_on_html": frozenset({"day"}),
        "turned_off_html": _NONE,
    },
    "data": {
        "progress_failed_html": _NONE,
        "export_caption_html": _NONE,
        "about_html": _NONE,
    },
}
DIARY_COMMANDS: Final = ("checkin", "diary", "progress")
"""The diary's commands; their menu descriptions live in [data.commands]."""

SingleLine = Annotated[PlainText, Field(max_length=80)]
Spaced = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=80)]
"""A fragment whose leading/trailing spaces matter (a separator, an appended clause)."""


class PluralForms(Frozen):
    """ "1 night" / "n nights": `one` for exactly 1 (omit it where the language has no singular)."""

    one: SingleLine | None = None
    other: SingleLine

    def format(self, count: int) -> str:
        form = self.one if count == 1 and self.one is not None else self.other
        return form.replace("{count}", str(count))


class HabitText(Frozen):
    label: Label
    """The check-in's toggle and the chart's row."""
    phrase: SingleLine
    """Completes "on nights you …"."""


class CaptionText(Frozen):
    summary_html: Html
    empty_html: Html
    higher_html: Html
    lower_html: Html
    same_html: Html
    more_nights_html: Html
    association_html: Html


class ChartText(Frozen):
    title: SingleLine
    rating_axis: SingleLine
    rating_legend: SingleLine
    weekend_legend: SingleLine
    done_legend: SingleLine
    not_done_legend: SingleLine
    no_nights: SingleLine
    night_tick: SingleLine
    months: tuple[SingleLine, ...] = Field(min_length=12, max_length=12)


class MorningWindow(Frozen):
    """A morning message's send window (bot/capacity.py), as for the nightly reminders in
    reminders.toml: how early it may go out when the dispatcher levels a busy minute (0: never
    before the time the person asked) and how late it still counts as on time."""

    window_before_minutes: WindowBeforeMinutes
    window_after_minutes: WindowAfterMinutes


class CheckinText(MorningWindow):
    """The morning check-in and /checkin: the send window, the question, the buttons, the
    replies."""

    question_html: Html
    rating_buttons: tuple[Label, ...] = Field(min_length=5, max_length=5)
    details_html: Html
    save_button: Label
    saved_html: Html
    replace_question_html: Html
    replace_button: Label
    keep_button: Label
    kept_html: Html
    ask_stop_html: Html
    keep_asking_button: Label
    stop_asking_button: Label
    stopped_html: Html
    keep_asking_html: Html
    invalid_html: Html
    needs_timezone_html: Html
    needs_bedtime_html: Html
    settings_on_html: Html
    settings_off_html: Html
    settings_on_button: Label
    settings_off_button: Label
    earlier_button: Label
    later_button: Label
    turned_on_html: Html
    turned_off_html: Html
    onboarding_question_html: Html
    onboarding_yes_button: Label
    onboarding_no_button: Label


class DiaryListText(Frozen):
    """/diary: the last 14 nights as text, one line each."""

    heading_html: Html
    line_html: Html
    missing_html: Html
    empty_html: Html
    onset_html: Spaced
    habit_separator: Spaced = ", "
    no_habits: SingleLine
    night_format: SingleLine
    weekdays: tuple[SingleLine, ...] = Field(min_length=7, max_length=7)


class WeeklyText(MorningWindow):
    """The weekly summary: its send window, its caption heading and its /settings switch."""

    heading_html: Html
    settings_on_html: Html
    settings_off_html: Html
    on_button: Label
    off_button: Label
    day_button: Label
    turned_on_html: Html
    turned_off_html: Html
    days: tuple[SingleLine, ...] = Field(min_length=7, max_length=7)


class DataText(Frozen):
    """/progress and /mydata's export."""

    progress_failed_html: Html
    export_caption_html: Html
    export_file_name: SingleLine
    about_html: Html
    commands: dict[str, SingleLine]


class DiaryText(Frozen):
    """content/diary.toml, validated; the look-ups below never fail once it is loaded."""

    nights: PluralForms
    habit: dict[Habit, HabitText]
    onset: dict[OnsetBucket, Label]
    caption: CaptionText
    chart: ChartText
    checkin: CheckinText
    diary: DiaryListText
    data: DataText
    weekly: WeeklyText

    def weekly_caption(self, caption: str) -> str:
        """The weekly summary's caption: its heading, then the /progress caption."""
        return f"{self.weekly.heading_html}\n\n{caption}"

    def night_label(self, night: date) -> str:
        """How a night is named in messages, e.g. "Mon 3 Nov" (plain text)."""
        return _fill(
            self.diary.night_format,
            weekday=self.diary.weekdays[night.weekday()],
            day=str(night.day),
            month=self.chart.months[night.month - 1],
            month_number=str(night.month),
        )

    def habit_label(self, habit: Habit) -> str:
        return self.habit[habit].label

    def onset_label(self, onset: OnsetBucket) -> str:
        return self.onset[onset]

    def chart_labels(self) -> ChartLabels:
        """The chart's words, as the plain values ``bot.diary.chart`` takes."""
        habits = tuple((habit, self.habit_label(habit)) for habit in Habit)
        return ChartLabels(habits=habits, **self.chart.model_dump())


@dataclass(frozen=True, slots=True)
class ChartLabels:
    """Every word drawn on the chart (plain text), so the chart module holds none."""

    title: str
    rating_axis: str
    rating_legend: str
    weekend_legend: str
    done_legend: str
    not_done_legend: str
    no_nights: str
    habits: tuple[tuple[Habit, str], ...]
    """Each habit's row label, top to bottom."""
    night_tick: str = "{day}.{month_number}."
    months: tuple[str, ...] = ()

    def tick(self, night: date) -> str:
        """How ``night`` is written under the chart, e.g. "3 Nov"."""
        month = self.months[night.month - 1] if self.months else str(night.month)
        return _fill(
            self.night_tick, day=str(night.day), month=month, month_number=str(night.month)
        )

    def all_text(self) -> str:
        """Every string the chart may draw, to check a font has all their glyphs."""
        words = [
            self.title,
            self.rating_axis,
            self.rating_legend,
            self.weekend_legend,
            self.done_legend,
            self.not_done_legend,
            self.no_nights,
            *(label for _, label in self.habits),
            *(self.tick(date(2024, month, 28)) for month in range(1, 13)),
        ]
        return "".join(words)


# --------------------------------------------------------------------------------------------
# Rendering


def format_average(value: Decimal) -> str:
    """An average as shown: one decimal, always ("4.0", not "4")."""
    return f"{value:.1f}"


def _fill(template: str, **values: str) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def _comparison_line(item: HabitComparison, text: DiaryText) -> str:
    template = {
        Verdict.HIGHER_WITH: text.caption.higher_html,
        Verdict.LOWER_WITH: text.caption.lower_html,
        Verdict.ABOUT_THE_SAME: text.caption.same_html,
    }[item.verdict]
    assert item.average_with is not None and item.average_without is not None
    return _fill(
        template,
        habit=escape(text.habit[item.habit].phrase),
        average_with=format_average(item.average_with),
        average_without=format_average(item.average_without),
        count_with=str(item.nights_with),
        count_without=str(item.nights_without),
        nights_with=escape(text.nights.format(item.nights_with)),
        nights_without=escape(text.nights.format(item.nights_without)),
    )


def render_caption(insights: Insights, text: DiaryText) -> str:
    """The /progress caption (Telegram HTML): summary, comparable habits, hints.

    Paragraphs: the summary (or the "nothing yet" line), one line per habit with at least 3
    nights on each side, "more nights will tell more" while any habit has fewer, and the
    association note whenever a habit is compared.
    """
    if insights.nights_logged == 0 or insights.average_rating is None:
        return text.caption.empty_html
    blocks = [
        _fill(
            text.caption.summary_html,
            nights_logged=escape(text.nights.format(insights.nights_logged)),
            count_logged=str(insights.nights_logged),
            average=format_average(insights.average_rating),
            max_rating=str(MAX_RATING),
        )
    ]
    lines = [_comparison_line(item, text) for item in insights.comparisons]
    if lines:
        blocks.append("\n".join(lines))
    if insights.needs_more_nights:
        blocks.append(_fill(text.caption.more_nights_html, min_count=str(MIN_NIGHTS_PER_SIDE)))
    if lines:
        blocks.append(text.caption.association_html)
    return "\n\n".join(blocks)


# --------------------------------------------------------------------------------------------
# Loading


def load_diary_text(directory: Path) -> DiaryText:
    """Load and check content/diary.toml; raise ContentError naming the first problem."""
    path = directory / DIARY_FILE
    text = load_toml(path, DiaryText)
    _check_complete(path, "habit", set(text.habit), set(Habit))
    _check_complete(path, "onset", set(text.onset), set(OnsetBucket))
    if "{count}" not in text.nights.other:
        raise ContentError(path, "nights other: must contain {count}")
    for name, allowed in _ALLOWED_PLACEHOLDERS.items():
        template = getattr(text.caption, name)
        _check_placeholders(path, f"caption {name}", template, allowed)
        check_html(path, f"caption {name}", template)
    _check_placeholders(path, "chart night_tick", text.chart.night_tick, _TICK_PLACEHOLDERS)
    for section, fields in _BOT_PLACEHOLDERS.items():
        for name, allowed in fields.items():
            template = getattr(getattr(text, section), name)
            _check_placeholders(path, f"{section} {name}", template, allowed)
            if name.endswith("_html"):
                check_html(path, f"{section} {name}", template)
    _check_placeholders(
        path, "diary night_format", text.diary.night_format, _NIGHT_FORMAT_PLACEHOLDERS
    )
    missing = sorted(set(DIARY_COMMANDS) - set(text.data.commands))
    if missing:
        raise ContentError(path, f"[data.commands] is missing {', '.join(map(repr, missing))}")
    samples = list(_sample_captions(text))
    samples += [(f"{where}, weekly", text.weekly_caption(caption)) for where, caption in samples]
    for where, caption in samples:
        check_rendered(path, where, caption)
        length = telegram_length(caption)
        if length > MAX_CAPTION_LENGTH:
            raise ContentError(
                path,
                f"{where}: {length} characters, over Telegram's caption limit of "
                f"{MAX_CAPTION_LENGTH}",
            )
    return text


def _check_complete(path: Path, table: str, found: set[str], expected: set[str]) -> None:
    missing = sorted(str(key) for key in expected - found)
    if missing:
        raise ContentError(path, f"[{table}] is missing {', '.join(map(repr, missing))}")


def _check_placeholders(path: Path, where: str, template: str, allowed: frozenset[str]) -> None:
    for match in PLACEHOLDER.finditer(template):
        if match.group(0)[1:-1] not in allowed:
            known = ", ".join("{" + name + "}" for name in sorted(allowed)) or "none"
            raise ContentError(
                path, f"{where}: unknown placeholder {match.group(0)} (allowed: {known})"
            )


def _sample_captions(text: DiaryText) -> Iterator[tuple[str, str]]:
    """Every caption shape the templates can make: each habit with each verdict (64 in all),
    with three-digit counts for the longest, and one night for the singular."""
    yield "the /progress caption with no nights", render_caption(_NO_NIGHTS, text)
    for nights in (1, 999):
        for verdicts in product(Verdict, repeat=len(Habit)):
            habits = tuple(
                HabitComparison(habit, nights, nights, Decimal("4.5"), Decimal("2.5"), verdict)
                for habit, verdict in zip(Habit, verdicts, strict=True)
            )
            insights = Insights(nights, Decimal("3.5"), habits)
            where = f"the /progress caption ({', '.join(verdicts)}; {nights} nights)"
            yield where, render_caption(insights, text)


_NO_NIGHTS: Final = Insights(nights_logged=0, average_rating=None, habits=())
