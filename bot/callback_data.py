"""Every inline button's callback data, built and parsed in one place.

Telegram returns callback data verbatim from the client, so it is untrusted input: each
handler is registered with one of these patterns and must still check ownership of any id.
All payloads stay far below Telegram's 64-byte limit.
"""

from __future__ import annotations

import re
from typing import Final, Literal

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
"""The sleep diary's buttons; the full pattern and parser are in ``bot.diary.callbacks``, and
its handler answers data that fails them with a clear reply."""

ReminderAction = Literal["done", "snooze", "why", "back", "off"]
DietAction = Literal["pick", "set", "setup"]
Section = Literal["mechanisms", "foods", "tips", "setup", "settings"]


def mechanism(number: int | None) -> str:
    return "mech:index" if number is None else f"mech:{number}"


def foods(meal_index: int, diet: str | None = None) -> str:
    return f"food:{meal_index}" if diet is None else f"food:{meal_index}:{diet}"


def navigate(section: Section) -> str:
    return f"nav:{section}"


def reminder(action: ReminderAction, delivery_id: int) -> str:
    return f"rem:{action}:{delivery_id}"


def settings(action: str, value: str | None = None) -> str:
    data = f"set:{action}" if value is None else f"set:{action}:{value}"
    if not SETTINGS.match(data):
        raise ValueError(f"settings callback data out of shape: {data!r}")
    return data


def language(choice: str) -> str:
    data = f"lang:{choice}"
    if not LANGUAGE.match(data):
        raise ValueError(f"language callback data out of shape: {data!r}")
    return data


def diet(action: DietAction, value: str | None = None) -> str:
    data = f"diet:{action}" if value is None else f"diet:{action}:{value}"
    if not DIET.match(data):
        raise ValueError(f"diet callback data out of shape: {data!r}")
    return data
