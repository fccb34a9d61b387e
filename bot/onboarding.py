"""Pure helpers for the settings conversation: parsing what people type, describing schedules.

Words come from the locale's catalogue (bot.i18n); a problem names its catalogue key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta, tzinfo

from bot.i18n import Catalogue

# 21:00 … 01:00 in 30-minute steps: the usual range, offered as buttons; any minute can be typed.
BEDTIME_CHOICES: tuple[time, ...] = tuple(
    time((21 * 60 + step * 30) // 60 % 24, (step * 30) % 60) for step in range(9)
)
MAX_PAUSE_NIGHTS = 60
MAX_OFFSET_MINUTES = 720
OFFSET_STEP_MINUTES = 15

_CLOCK = re.compile(
    r"^\s*(?P<hour>\d{1,2})(?:\s*[:.h]\s*(?P<minute>\d{2})|(?P<compact>\d{2}))?\s*(?P<ampm>[ap]\.?m\.?)?\s*$",
    re.IGNORECASE,
)


class InputProblem(ValueError):
    """Something a person typed that we can't use: `key` names its message under [problem]
    in ui.toml, `values` fill it (see `describe`)."""

    def __init__(self, key: str, **values: str | int) -> None:
        super().__init__(key)
        self.key = key
        self.values = values

    def describe(self, ui: Catalogue) -> str:
        """The message to show, in the person's language (plain text)."""
        return ui.text(f"problem.{self.key}", **self.values)


def parse_clock_time(text: str) -> time:
    """'22:30', '22.30', '2230', '22h30', '10:30pm', '10 pm' → time; else InputProblem."""
    match = _CLOCK.match(text or "")
    if match is None:
        raise InputProblem("time_format")
    hour = int(match.group("hour"))
    minute = int(match.group("minute") or match.group("compact") or 0)
    ampm = (match.group("ampm") or "").lower().replace(".", "")
    if ampm:
        if not 1 <= hour <= 12:
            raise InputProblem("time_ampm")
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    if hour > 23 or minute > 59:
        raise InputProblem("time_range", typed=text.strip()[:40])
    return time(hour, minute)


def parse_nights(text: str) -> int:
    """'/pause' → 1 night; '/pause 3' → 3; bounded so a typo can't silence someone for years."""
    text = (text or "").strip()
    if not text:
        return 1
    # isdecimal, not isdigit: "²" is a digit that int() refuses; "٣" and "３" are decimals.
    if not text.isdecimal() or not 1 <= int(text) <= MAX_PAUSE_NIGHTS:
        raise InputProblem("nights", max=MAX_PAUSE_NIGHTS)
    return int(text)


def evening_of(now: datetime, tz: tzinfo) -> date:
    """The evening date of the coming night: today's local date, even in the small hours, since
    someone pausing at 02:00 means the evening ahead, not the night they are in."""
    local = now.astimezone(tz)
    return local.date()


def pause_until(now: datetime, tz: tzinfo, nights: int) -> datetime:
    """Skip `nights` whole nights starting tonight: paused until local noon after the last one."""
    first_evening = evening_of(now, tz)
    resume_day = first_evening + timedelta(days=nights)
    return datetime.combine(resume_day, time(12, 0)).replace(tzinfo=tz)


def clamp_offset(minutes: int) -> int:
    return max(0, min(MAX_OFFSET_MINUTES, minutes))


def upcoming_lines(
    reminders: Iterable[tuple[str, datetime | None]], tz: tzinfo, now: datetime, ui: Catalogue
) -> list[str]:
    """One HTML line per scheduled reminder, soonest first, in the person's local time."""
    today = now.astimezone(tz).date()
    scheduled: Sequence[tuple[str, datetime]] = sorted(
        ((label, at.astimezone(tz)) for label, at in reminders if at is not None),
        key=lambda item: item[1],
    )
    return [
        ui.text(
            "settings.next_line_html",
            day=ui.relative_day(at, today),
            time=ui.clock(at),
            title=label,
        )
        for label, at in scheduled
    ]


def split_lines(text: str, limit: int) -> list[str]:
    """Split into chunks of at most `limit` characters at line breaks (a longer line is cut)."""
    chunks: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line) > limit:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:limit])
            line = line[limit:]
        if len(current) + len(line) > limit:
            chunks.append(current)
            current = ""
        current += line
    if current or not chunks:
        chunks.append(current)
    return [chunk.rstrip("\n") for chunk in chunks]
