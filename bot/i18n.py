"""The bot's interface words per locale (content/ui.toml and content/<locale>/ui.toml).

Every button label, prompt, error, alert and the /settings page come from here, so a language
is a folder of TOML files and no Python changes (content/README.md: "Adding a language").
A catalogue is a flat set of keys ("settings.title_html") whose values are templates with
`{placeholders}`; keys ending in `_html` are Telegram HTML and their values are escaped when
filled, all others are plain text. A message with plural forms is a table of forms
(`{ one = "...", other = "..." }`), chosen by the locale's `[plural] rule`. Dates are written
with the locale's weekday and month names and its patterns. Pure: no Telegram imports.
"""

from __future__ import annotations

import functools
import html
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Final

from bot.content_schema import (
    _LOOKS_LIKE_HTML,
    MAX_BUTTON_LABEL_LENGTH,
    PLACEHOLDER,
    ContentError,
    check_html,
)

UI_FILE: Final = "ui.toml"
DEFAULT_LOCALE: Final = "en"
LOCALES: Final = ("en", "zh")
"""Every locale the bot speaks; content/ is English, content/<locale>/ each other one."""

PLURAL_RULES: Final[dict[str, tuple[tuple[str, ...], Callable[[int], str]]]] = {
    # gettext's "nplurals=2; plural=(n != 1)": English, German, Dutch, Swedish...
    "one_other": (("one", "other"), lambda n: "one" if n == 1 else "other"),
    # gettext's "nplurals=1; plural=0": Chinese, Japanese, Korean, Vietnamese...
    "other": (("other",), lambda n: "other"),
}
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MONTHS: Final = (
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
)
_TRADITIONAL_SCRIPT: Final = re.compile(r"^zh-(?:hant|tw|hk|mo)(?:-|$)")


def locale_from_telegram(language_code: str | None) -> str:
    """Telegram's IETF tag → a locale: zh, zh-hans, zh-cn, zh-sg (any Simplified zh-*) → zh.

    Traditional tags (zh-hant, zh-tw, zh-hk) and everything else get English: the Chinese
    catalogue is Simplified, and a reader of Traditional may prefer English; /language zh
    is one tap away.
    """
    code = (language_code or "").strip().lower().replace("_", "-")
    if code == "zh" or (code.startswith("zh-") and not _TRADITIONAL_SCRIPT.match(code)):
        return "zh"
    return DEFAULT_LOCALE


def known_locale(value: str | None) -> str | None:
    """`value` if it is a locale the bot speaks, else None."""
    return value if value in LOCALES else None


class Raw(str):
    """A value that is already Telegram HTML: filled into an `_html` message unescaped."""

    __slots__ = ()


Value = str | int


@dataclass(frozen=True)
class Catalogue:
    """One locale's interface words; `text`/`html`/`plural` fill a message's placeholders."""

    locale: str
    plural_rule: str
    messages: Mapping[str, str | Mapping[str, str]]
    path: Path = field(default=Path(UI_FILE), compare=False)

    def _template(self, key: str) -> str:
        value = self.messages.get(key)
        if not isinstance(value, str):
            raise KeyError(f"{self.path}: no message {key!r}")
        return value

    def text(self, key: str, /, **values: Value) -> str:
        """A message, placeholders filled as they are (plain text, or HTML for `_html` keys
        with values escaped unless they are `Raw`)."""
        return self._fill(key, self._template(key), values)

    def join(self, items: Sequence[str]) -> str:
        """A short list the way the language writes one (``date.list_join``, pairwise)."""
        return functools.reduce(
            lambda head, tail: self.text("date.list_join", head=head, tail=tail), items
        )

    def plural(self, key: str, count: int, /, **values: Value) -> str:
        """The form of a plural message for `count` ({count} is filled in too)."""
        forms = self.messages.get(key)
        if not isinstance(forms, Mapping):
            raise KeyError(f"{self.path}: no plural message {key!r}")
        form = PLURAL_RULES[self.plural_rule][1](count)
        return self._fill(key, forms[form], {"count": count, **values})

    def _fill(self, key: str, template: str, values: Mapping[str, Value]) -> str:
        escape = key.endswith("_html")

        def value(match: re.Match[str]) -> str:
            name = match.group(0)[1:-1]
            if name not in values:
                raise KeyError(f"{self.path}: message {key!r} needs a value for {{{name}}}")
            given = values[name]
            if isinstance(given, Raw) or not escape:
                return str(given)
            return html.escape(str(given), quote=False)

        return PLACEHOLDER.sub(value, template)

    # -- dates and times -------------------------------------------------------------------

    def weekday(self, day: date) -> str:
        return self.text(f"date.weekday.{WEEKDAYS[day.weekday()]}")

    def month(self, day: date) -> str:
        return self.text(f"date.month.{MONTHS[day.month - 1]}")

    def short_date(self, moment: date) -> str:
        """'Fri 27 Nov' / '11月27日 周五'."""
        return self.text(
            "date.short",
            weekday=self.weekday(moment),
            day=moment.day,
            month=self.month(moment),
            month_number=moment.month,
        )

    def long_date(self, moment: date) -> str:
        """'29 November 2026' / '2026年11月29日'."""
        return self.text(
            "date.long",
            day=moment.day,
            month=self.text(f"date.month_long.{MONTHS[moment.month - 1]}"),
            month_number=moment.month,
            year=moment.year,
        )

    def clock(self, value: time | datetime) -> str:
        """A time of day; both locales write 24-hour 22:30."""
        return self.text("date.clock", hour=f"{value.hour:02d}", minute=f"{value.minute:02d}")

    def day_and_time(self, moment: datetime) -> str:
        """'Fri 27 Nov 12:00' (a pause's end)."""
        return self.text("date.day_time", date=self.short_date(moment), time=self.clock(moment))

    def relative_day(self, moment: datetime, today: date) -> str:
        """'today', 'tomorrow' or a short date: how a person reads a reminder time."""
        days = (moment.date() - today).days
        if days == 0:
            return self.text("date.today")
        if days == 1:
            return self.text("date.tomorrow")
        return self.short_date(moment)

    def offset(self, minutes: int) -> str:
        """240 → '4 h before bedtime', 90 → '1 h 30 min before bedtime', 0 → 'at bedtime'."""
        if minutes == 0:
            return self.text("offset.at_bedtime")
        hours, rest = divmod(minutes, 60)
        if hours and rest:
            return self.text("offset.hours_minutes", hours=hours, minutes=rest)
        if hours:
            return self.text("offset.hours", hours=hours)
        return self.text("offset.minutes", minutes=rest)


# --------------------------------------------------------------------------------------------
# Loading and checking


def load_catalogue(directory: Path, locale: str) -> Catalogue:
    """Read and validate `directory/ui.toml`; ContentError (one line) on the first problem."""
    path = directory / UI_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContentError(path, "file not found") from None
    except UnicodeDecodeError as exc:
        raise ContentError(path, f"not valid UTF-8 (byte {exc.start}); save as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ContentError(path, f"TOML syntax error: {exc}") from None
    plural = data.pop("plural", None)
    rule = plural.get("rule") if isinstance(plural, dict) else None
    if rule not in PLURAL_RULES:
        known = ", ".join(repr(name) for name in PLURAL_RULES)
        raise ContentError(path, f"[plural] rule must be one of {known} (got {rule!r})")
    forms = PLURAL_RULES[rule][0]
    messages: dict[str, str | Mapping[str, str]] = {}
    for key, value in _flatten(path, data, ""):
        if isinstance(value, dict):
            if set(value) != set(forms):
                raise ContentError(
                    path,
                    f"{key}: the plural rule {rule!r} needs exactly the forms "
                    f"{', '.join(forms)} (found {', '.join(sorted(value)) or 'none'})",
                )
            for form, text in value.items():
                _check_message(path, f"{key}.{form}", key, text)
        else:
            _check_message(path, key, key, value)
        messages[key] = value
    return Catalogue(locale=locale, plural_rule=rule, messages=messages, path=path)


def _flatten(
    path: Path, node: Mapping[str, object], prefix: str
) -> Iterator[tuple[str, str | dict[str, str]]]:
    for name, value in node.items():
        key = f"{prefix}{name}"
        if isinstance(value, str):
            yield key, value.strip()
        elif isinstance(value, dict) and "other" in value:
            if not all(isinstance(text, str) for text in value.values()):
                raise ContentError(path, f"{key}: every plural form should be text in quotes")
            yield key, {str(form): str(text).strip() for form, text in value.items()}
        elif isinstance(value, dict):
            yield from _flatten(path, value, f"{key}.")
        else:
            raise ContentError(path, f"{key}: should be text in quotes or a table of messages")


def _check_message(path: Path, where: str, key: str, text: object) -> None:
    if not isinstance(text, str) or not text.strip():
        raise ContentError(path, f"{where}: must be non-empty text")
    if key.endswith("_html"):
        check_html(path, where, text)
    elif _LOOKS_LIKE_HTML.search(text):
        raise ContentError(path, f"{where}: plain text only (only keys ending in _html hold HTML)")
    if key.startswith("button.") and (len(text) > MAX_BUTTON_LABEL_LENGTH or "\n" in text):
        raise ContentError(
            path, f"{where}: a button label is one line of at most {MAX_BUTTON_LABEL_LENGTH}"
        )


def placeholders(text: str) -> frozenset[str]:
    return frozenset(match.group(0) for match in PLACEHOLDER.finditer(text))


MIRRORED_FILES: Final = (
    "article.toml",
    "foods.toml",
    "tips.toml",
    "reminders.toml",
    "messages.toml",
    "safety.toml",
    "sources.toml",
    UI_FILE,
)
"""The files every locale translates; each mirrors the English file key for key."""


def compare_locale(english: Path, other: Path) -> list[str]:
    """Every way the locale in `other` differs from English in `english`: missing or extra
    files, keys and list items, and texts whose placeholders differ. Empty: complete."""
    problems: list[str] = []
    for name in MIRRORED_FILES:
        reference, translated = english / name, other / name
        if not translated.is_file():
            problems.append(f"{translated}: missing file (translate {reference})")
            continue
        try:
            ours = tomllib.loads(reference.read_text(encoding="utf-8"))
            theirs = tomllib.loads(translated.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            problems.append(f"{translated}: cannot compare: {exc}")
            continue
        if name == UI_FILE:  # plural forms differ by design: compared per message instead
            ours.pop("plural", None)
            theirs.pop("plural", None)
        problems.extend(
            f"{translated}: {problem}" for problem in _compare_tree(ours, theirs, "", name)
        )
    return problems


def _compare_tree(ours: object, theirs: object, where: str, file: str) -> Iterator[str]:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        plural = file == UI_FILE and "other" in ours
        if plural:  # one message: the forms are the locale's, the placeholders are shared
            expected = frozenset().union(*(placeholders(str(v)) for v in ours.values()))
            found = frozenset().union(*(placeholders(str(v)) for v in theirs.values()))
            yield from _placeholder_problem(where, expected, found)
            return
        for key in ours:
            if key not in theirs:
                yield f"missing key {_join(where, key)!r}"
        for key in theirs:
            if key not in ours:
                yield f"extra key {_join(where, key)!r} (not in English)"
        for key in ours:  # in the file's order, so the report reads top to bottom
            if key in theirs:
                yield from _compare_tree(ours[key], theirs[key], _join(where, key), file)
    elif isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            yield f"{where!r} has {len(theirs)} items, English has {len(ours)}"
        for index, (a, b) in enumerate(zip(ours, theirs, strict=False)):
            yield from _compare_tree(a, b, f"{where}[{index}]", file)
    elif isinstance(ours, str) and isinstance(theirs, str):
        yield from _placeholder_problem(where, placeholders(ours), placeholders(theirs))
    elif type(ours) is not type(theirs):
        yield f"{where!r} should be {type(ours).__name__} like English"


def _placeholder_problem(
    where: str, expected: frozenset[str], found: frozenset[str]
) -> Iterator[str]:
    if expected != found:
        parts = []
        if expected - found:
            parts.append(f"missing {', '.join(sorted(expected - found))}")
        if found - expected:
            parts.append(f"unknown {', '.join(sorted(found - expected))}")
        yield f"{where!r} placeholders differ from English: {'; '.join(parts)}"


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
