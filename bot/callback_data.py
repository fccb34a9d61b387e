"""Every inline button's callback data: one typed codec for the whole bot.

Each kind of button is a frozen dataclass; ``encode`` writes one as the string Telegram stores
with the message, ``decode`` reads a string back into a button, or None for anything out of
shape (over Telegram's 64 bytes, no family's pattern, an impossible date). The wire format is
the one every message already sent carries, so it must not change: a button pressed on last
week's reminder still has to work (``tests/test_callback_data.py`` pins literal strings).

Callback data is untrusted input (the client sends it back verbatim): each handler is
registered with its family's ``pattern`` and still checks ownership of any id and the meaning
of any value (an unknown action, a locale we do not speak).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal, TypeVar, cast

from bot.diary.models import Habit, OnsetBucket, check_rating

MAX_BYTES: Final = 64
"""Telegram's limit on callback data; the longest button here (a diary draft) uses 27."""

# --- the patterns each CallbackQueryHandler registers with --------------------------------

MECHANISM: Final = re.compile(r"^mech:(index|[1-9])$")
FOODS: Final = re.compile(r"^food:(\d{1,3})(?::([a-z]{1,16}))?$")
"""Meal idea number, and the diet whose ideas are shown (none: the person's own)."""
NAVIGATE: Final = re.compile(r"^nav:(mechanisms|foods|tips|setup|settings)$")
REMINDER: Final = re.compile(r"^rem:(done|snooze|why|back|off):(\d{1,18})$")
SETTINGS: Final = re.compile(r"^set:([a-z_]{1,20})(?::([0-9A-Za-z_+\-/:.]{1,40}))?$")
DIET: Final = re.compile(r"^diet:(pick|set|setup)(?::([a-z]{1,16}))?$")
"""pick: show the choices; set: choose (from /diet or settings); setup: the set-up question."""
LANGUAGE: Final = re.compile(r"^lang:([a-z]{2,8})$")
"""A locale code, or "auto": follow Telegram's language again."""
DIARY: Final = re.compile(r"^dy:")
"""What the diary's handler registers with: every "dy:" press reaches it, and data that
``decode`` refuses gets the diary's own clear reply rather than the stale-button alert."""
DIARY_DATA: Final = re.compile(
    r"^dy:(?:(?P<op>[es]):(?P<night>\d{8}):(?P<rating>[1-5]):(?P<mask>[0-7])"
    r":(?P<onset>lt15|15to30|30to60|gt60|n)"
    r"|(?P<nightop>[nk]):(?P<night2>\d{8})"
    r"|(?P<word>stop|keep|on|off|yes|skip|earlier|later|won|woff|wday))$"
)
"""e: show the details step with this state; s: save it; n: (re)start a night's check-in;
k: keep the night's existing entry; the words: see ``DiaryWord``."""
PERSONAL: Final = re.compile(r"^(?:set:|rem:|lang:|dy:|nav:(?:setup|settings)$)")
"""Buttons that act on one person's data: refused outside a private chat (bot.handlers.guard)."""

ReminderAction = Literal["done", "snooze", "why", "back", "off"]
DietAction = Literal["pick", "set", "setup"]
Section = Literal["mechanisms", "foods", "tips", "setup", "settings"]
DraftOp = Literal["e", "s"]
NightOp = Literal["n", "k"]
DiaryWordName = Literal[
    "stop", "keep", "on", "off", "yes", "skip", "earlier", "later", "won", "woff", "wday"
]
"""stop/keep: the "turn check-ins off?" answers; on/off: the check-in switch in /settings,
earlier/later: its wake time; yes/skip: the set-up's offer; won/woff/wday: the weekly chart's
switch and day."""

# --- the buttons --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MechanismButton:
    """A mechanism's page (1–9), or the index (None)."""

    number: int | None


@dataclass(frozen=True, slots=True)
class FoodsButton:
    """A meal idea (1-based as on the wire), for the diet named or the person's own (None)."""

    meal: int
    diet: str | None = None


@dataclass(frozen=True, slots=True)
class NavigateButton:
    section: Section


@dataclass(frozen=True, slots=True)
class ReminderButton:
    """Done, Snooze, Why?, Back or Turn this off under one delivered reminder."""

    action: ReminderAction
    delivery_id: int


@dataclass(frozen=True, slots=True)
class SettingsButton:
    """A "set:<action>[:<value>]" button; the action's meaning is bot.handlers.settings's
    table, so an unknown action decodes and is refused there with a polite alert."""

    action: str
    value: str | None = None


@dataclass(frozen=True, slots=True)
class DietButton:
    action: DietAction
    value: str | None = None


@dataclass(frozen=True, slots=True)
class LanguageButton:
    """A locale code, or "auto"; an unknown code decodes and is refused by the handler."""

    choice: str


@dataclass(frozen=True, slots=True)
class Draft:
    """A check-in in progress: the night, the rating given and the toggles as they stand.

    The check-in's state travels in its buttons, so a half finished check-in needs no
    server-side state and survives a restart."""

    night: date
    rating: int
    habits: frozenset[Habit]
    onset: OnsetBucket | None


@dataclass(frozen=True, slots=True)
class DiaryDraftButton:
    """e: show the details step with this draft; s: save it."""

    op: DraftOp
    draft: Draft


@dataclass(frozen=True, slots=True)
class DiaryNightButton:
    """n: (re)start a night's check-in; k: keep the night's existing entry."""

    op: NightOp
    night: date


@dataclass(frozen=True, slots=True)
class DiaryWord:
    word: DiaryWordName


DiaryButton = DiaryDraftButton | DiaryNightButton | DiaryWord
Button = (
    MechanismButton
    | FoodsButton
    | NavigateButton
    | ReminderButton
    | SettingsButton
    | DietButton
    | LanguageButton
    | DiaryButton
)
B = TypeVar("B", bound=Button)

# --- encode -------------------------------------------------------------------------------

_BITS: Final = {habit: 1 << index for index, habit in enumerate(Habit)}


def habits_mask(habits: frozenset[Habit]) -> int:
    return sum(_BITS[habit] for habit in habits)


def habits_from_mask(mask: int) -> frozenset[Habit]:
    return frozenset(habit for habit, bit in _BITS.items() if mask & bit)


def _with_value(prefix: str, value: str | None) -> str:
    return prefix if value is None else f"{prefix}:{value}"


def _wire(button: Button) -> str:
    match button:
        case MechanismButton(number):
            return "mech:index" if number is None else f"mech:{number}"
        case FoodsButton(meal, diet):
            return _with_value(f"food:{meal}", diet)
        case NavigateButton(section):
            return f"nav:{section}"
        case ReminderButton(action, delivery_id):
            return f"rem:{action}:{delivery_id}"
        case SettingsButton(action, value):
            return _with_value(f"set:{action}", value)
        case DietButton(action, value):
            return _with_value(f"diet:{action}", value)
        case LanguageButton(choice):
            return f"lang:{choice}"
        case DiaryDraftButton(op, draft):
            onset = "n" if draft.onset is None else draft.onset.value
            rating = check_rating(draft.rating)
            mask = habits_mask(draft.habits)
            return f"dy:{op}:{draft.night:%Y%m%d}:{rating}:{mask}:{onset}"
        case DiaryNightButton(op, night):
            return f"dy:{op}:{night:%Y%m%d}"
        case DiaryWord(word):
            return f"dy:{word}"
    raise TypeError(f"not a button: {button!r}")


def encode(button: Button) -> str:
    """The callback data for ``button``; ValueError if it would not decode back to it (a
    value out of shape, or over 64 bytes), so a bad button fails where it is built."""
    data = _wire(button)
    if decode(data) != button:
        raise ValueError(f"callback data out of shape: {data!r}")
    return data


def settings(action: str, value: str | None = None) -> str:
    """Shorthand for ``encode(SettingsButton(action, value))``: the settings page has many."""
    return encode(SettingsButton(action, value))


def diet(action: DietAction, value: str | None = None) -> str:
    """Shorthand for ``encode(DietButton(action, value))``."""
    return encode(DietButton(action, value))


# --- decode -------------------------------------------------------------------------------


def _night(token: str) -> date | None:
    try:
        return date(int(token[:4]), int(token[4:6]), int(token[6:]))
    except ValueError:
        return None


def _diary(data: str) -> DiaryButton | None:
    match = DIARY_DATA.match(data)
    if match is None:
        return None
    if match["op"] is not None:
        night = _night(match["night"])
        if night is None:
            return None
        onset = None if match["onset"] == "n" else OnsetBucket(match["onset"])
        draft = Draft(night, int(match["rating"]), habits_from_mask(int(match["mask"])), onset)
        return DiaryDraftButton("e" if match["op"] == "e" else "s", draft)
    if match["nightop"] is not None:
        night = _night(match["night2"])
        if night is None:
            return None
        return DiaryNightButton("n" if match["nightop"] == "n" else "k", night)
    return DiaryWord(cast(DiaryWordName, match["word"]))


_DECODERS: Final[tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], Button]], ...]] = (
    (
        MECHANISM,
        lambda m: MechanismButton(None if m[1] == "index" else int(m[1])),
    ),
    (FOODS, lambda m: FoodsButton(int(m[1]), m[2])),
    # The patterns admit only the Literal's values, hence the casts.
    (NAVIGATE, lambda m: NavigateButton(cast(Section, m[1]))),
    (REMINDER, lambda m: ReminderButton(cast(ReminderAction, m[1]), int(m[2]))),
    (SETTINGS, lambda m: SettingsButton(m[1], m[2])),
    (DIET, lambda m: DietButton(cast(DietAction, m[1]), m[2])),
    (LANGUAGE, lambda m: LanguageButton(m[1])),
)


def decode(data: str | None) -> Button | None:
    """The button ``data`` names, or None: forged, stale or out of shape data is not an error."""
    if not data or len(data.encode()) > MAX_BYTES:
        return None
    if DIARY.match(data):
        return _diary(data)
    for pattern, build in _DECODERS:
        match = pattern.match(data)
        if match is not None:
            return build(match)
    return None


def decode_as(data: str | None, kind: type[B]) -> B | None:
    """The button if ``data`` decodes to a ``kind``; None otherwise."""
    button = decode(data)
    return button if isinstance(button, kind) else None


def personal(data: str) -> bool:
    """True for buttons that act on one person's data (settings, reminders, language, diary)."""
    return PERSONAL.match(data) is not None
