"""The one callback codec: typed buttons in, the wire format of messages already sent out.

The literal strings below are what buttons on messages sent before an upgrade carry; they must
keep decoding to the same buttons, and today's buttons must encode to exactly them.
"""

from __future__ import annotations

from datetime import date

import pytest

from bot.callback_data import (
    DIARY,
    DIET,
    FOODS,
    LANGUAGE,
    MAX_BYTES,
    MECHANISM,
    NAVIGATE,
    REMINDER,
    SETTINGS,
    Button,
    DiaryDraftButton,
    DiaryNightButton,
    DiaryWord,
    DietButton,
    Draft,
    FoodsButton,
    LanguageButton,
    MechanismButton,
    NavigateButton,
    ReminderButton,
    SettingsButton,
    decode,
    decode_as,
    encode,
    personal,
)
from bot.diary.models import Habit, OnsetBucket

WIRE: list[tuple[str, Button]] = [
    ("mech:index", MechanismButton(None)),
    ("mech:3", MechanismButton(3)),
    ("food:2", FoodsButton(2)),
    ("food:12:vegan", FoodsButton(12, "vegan")),
    ("nav:setup", NavigateButton("setup")),
    ("rem:snooze:123456789012345678", ReminderButton("snooze", 123456789012345678)),
    ("rem:off:7", ReminderButton("off", 7)),
    ("set:view", SettingsButton("view")),
    ("set:bed:2230", SettingsButton("bed", "2230")),
    (
        "set:tz:America/Argentina/Buenos_Aires",
        SettingsButton("tz", "America/Argentina/Buenos_Aires"),
    ),
    ("set:tz:UTC+05:30", SettingsButton("tz", "UTC+05:30")),
    ("diet:pick", DietButton("pick")),
    ("diet:setup:skip", DietButton("setup", "skip")),
    ("lang:zh", LanguageButton("zh")),
    ("lang:auto", LanguageButton("auto")),
    (
        "dy:s:20261123:5:7:30to60",
        DiaryDraftButton(
            "s", Draft(date(2026, 11, 23), 5, frozenset(Habit), OnsetBucket.FROM_30_TO_60)
        ),
    ),
    ("dy:e:20261123:2:0:n", DiaryDraftButton("e", Draft(date(2026, 11, 23), 2, frozenset(), None))),
    ("dy:k:20261122", DiaryNightButton("k", date(2026, 11, 22))),
    ("dy:wday", DiaryWord("wday")),
]
PATTERN_OF = {
    MechanismButton: MECHANISM,
    FoodsButton: FOODS,
    NavigateButton: NAVIGATE,
    ReminderButton: REMINDER,
    SettingsButton: SETTINGS,
    DietButton: DIET,
    LanguageButton: LANGUAGE,
    DiaryDraftButton: DIARY,
    DiaryNightButton: DIARY,
    DiaryWord: DIARY,
}


@pytest.mark.parametrize(("data", "button"), WIRE, ids=[data for data, _ in WIRE])
def test_the_wire_format_is_unchanged(data: str, button: Button) -> None:
    assert encode(button) == data
    assert decode(data) == button
    # The handler registered for the family is the one that receives it.
    assert PATTERN_OF[type(button)].match(data)


@pytest.mark.parametrize(
    "data",
    [
        "",
        "rem:done:",
        "rem:done:1234567890123456789",  # 19 digits: no delivery id is that long
        "rem:explode:1",
        "mech:0",
        "set:BED:2230",
        "set:tz:" + "A" * 41,
        "lang:x",
        "diet:eat:vegan",
        "dy:e:20261123:6:0:n",  # rating 6
        "dy:e:20261123:5:8:n",  # a habit bit that does not exist
        "dy:e:20260231:5:0:n",  # 31 February: well formed, impossible
        "dy:n:20261399",
        "dy:nonsense",
        "food:1:" + "a" * 60,  # over 64 bytes
        "x" * 65,
    ],
)
def test_forged_or_out_of_shape_data_decodes_to_none(data: str) -> None:
    assert decode(data) is None


def test_nothing_over_64_bytes_decodes_even_if_a_pattern_admits_it() -> None:
    data = "set:tz:" + "A" * 40
    assert SETTINGS.match(data) and decode(data) is not None and len(data) <= MAX_BYTES
    assert decode("set:tz:" + "é" * 29) is None  # 65 bytes, not a pattern's characters either


def test_encode_refuses_a_button_that_would_not_decode_back() -> None:
    for button in (
        SettingsButton("tz", "Europe/Berlin?x=1"),
        MechanismButton(10),
        LanguageButton("x"),
        DiaryDraftButton("e", Draft(date(2026, 11, 23), 0, frozenset(), None)),
    ):
        with pytest.raises(ValueError):
            encode(button)


def test_decode_as_checks_the_family() -> None:
    assert decode_as("rem:done:1", ReminderButton) == ReminderButton("done", 1)
    assert decode_as("rem:done:1", SettingsButton) is None
    assert decode_as(None, ReminderButton) is None


def test_personal_buttons_are_the_ones_acting_on_a_person() -> None:
    assert all(personal(d) for d in ("set:view", "rem:off:1", "lang:zh", "dy:on", "nav:setup"))
    assert not any(personal(d) for d in ("nav:foods", "mech:1", "food:1", "diet:pick"))
