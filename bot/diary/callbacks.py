"""The diary's inline buttons: callback data built and parsed in one place.

Callback data is untrusted (the client sends it back verbatim), so every button's data matches
one pattern and is parsed into a value here; anything else is refused with a clear reply. The
check-in's state (night, rating, habits, onset) travels in the buttons themselves, so a half
finished check-in needs no server-side state and survives a restart. Longest: 27 bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

from bot.diary.models import Habit, OnsetBucket, check_rating

PATTERN: Final = re.compile(
    r"^dy:(?:(?P<op>[es]):(?P<night>\d{8}):(?P<rating>[1-5]):(?P<mask>[0-7])"
    r":(?P<onset>lt15|15to30|30to60|gt60|n)"
    r"|(?P<nightop>[nk]):(?P<night2>\d{8})"
    r"|(?P<word>stop|keep|on|off|yes|skip|earlier|later|won|woff|wday))$"
)
"""e: show the details step with this state; s: save it; n: (re)start a night's check-in;
k: keep the night's existing entry; stop/keep: the "turn check-ins off?" answers; on/off: the
switch in /settings, earlier/later: its wake time; yes/skip: the set-up's offer; won/woff/wday:
the weekly chart's switch and day."""

_BITS: Final = {habit: 1 << index for index, habit in enumerate(Habit)}


@dataclass(frozen=True, slots=True)
class Draft:
    """A check-in in progress: the night, the rating given and the toggles as they stand."""

    night: date
    rating: int
    habits: frozenset[Habit]
    onset: OnsetBucket | None


@dataclass(frozen=True, slots=True)
class Parsed:
    action: Literal["edit", "save", "new", "keep_entry", "word"]
    draft: Draft | None = None
    night: date | None = None
    word: str | None = None


class BadDiaryData(ValueError):
    """The data matched the pattern but names no real night or rating."""


def habits_mask(habits: frozenset[Habit]) -> int:
    return sum(_BITS[habit] for habit in habits)


def habits_from_mask(mask: int) -> frozenset[Habit]:
    return frozenset(habit for habit, bit in _BITS.items() if mask & bit)


def _night(token: str) -> date:
    try:
        return date(int(token[:4]), int(token[4:6]), int(token[6:]))
    except ValueError:
        raise BadDiaryData(f"no such date: {token}") from None


def draft_data(op: Literal["e", "s"], draft: Draft) -> str:
    onset = "n" if draft.onset is None else draft.onset.value
    return (
        f"dy:{op}:{draft.night:%Y%m%d}:{check_rating(draft.rating)}"
        f":{habits_mask(draft.habits)}:{onset}"
    )


def night_data(op: Literal["n", "k"], night: date) -> str:
    return f"dy:{op}:{night:%Y%m%d}"


def word_data(
    word: Literal[
        "stop", "keep", "on", "off", "yes", "skip", "earlier", "later", "won", "woff", "wday"
    ],
) -> str:
    return f"dy:{word}"


def parse(data: str) -> Parsed | None:
    """None: not diary data at all. Raises BadDiaryData for a well-formed impossible date."""
    match = PATTERN.match(data)
    if match is None:
        return None
    if match["op"] is not None:
        draft = Draft(
            night=_night(match["night"]),
            rating=int(match["rating"]),
            habits=habits_from_mask(int(match["mask"])),
            onset=None if match["onset"] == "n" else OnsetBucket(match["onset"]),
        )
        return Parsed("edit" if match["op"] == "e" else "save", draft=draft)
    if match["nightop"] is not None:
        night = _night(match["night2"])
        return Parsed("new" if match["nightop"] == "n" else "keep_entry", night=night)
    return Parsed("word", word=match["word"])
