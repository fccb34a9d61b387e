"""The building blocks every content/ file is validated with: field types, one-line errors.

Shared by bot.content (the article, foods, tips, reminders, messages) and bot.safety (sources,
triage patterns, crisis lines, /doctor), so every file reports problems the same way:
one line naming the file and the problem (ContentError). Pure: no Telegram imports.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from bot.telegram_html import (
    MAX_MESSAGE_LENGTH,
    TelegramHTMLError,
    check_telegram_html,
    telegram_length,
)

MAX_BUTTON_LABEL_LENGTH: Final = 64
# Send windows (bot/capacity.py) stay well inside a message's purpose: an hour early a "bedtime
# is getting close" reminder would not be true any more, and the dispatcher's grace period
# (30 min by default) expires what is later than that anyway.
MAX_WINDOW_BEFORE_MINUTES: Final = 60
MAX_WINDOW_AFTER_MINUTES: Final = 30

PLACEHOLDER: Final = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
_LOOKS_LIKE_HTML: Final = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*[\s>/]|&(?:[A-Za-z]+|#\w+);")
_SLUG_PATTERN: Final = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


class ContentError(Exception):
    """A problem in content/: str() is one line, '<file>: <what is wrong>'."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


# --------------------------------------------------------------------------------------------
# Field types


def _plain_text(value: str) -> str:
    """Plain-text fields are escaped when shown, so HTML there would appear literally."""
    if _LOOKS_LIKE_HTML.search(value):
        raise ValueError("plain text only, no HTML tags or entities here (only *_html fields)")
    return value


def _single_line(value: str) -> str:
    if "\n" in value:
        raise ValueError("must be a single line")
    return value


def _slug(value: str) -> str:
    if not re.fullmatch(_SLUG_PATTERN, value):
        raise ValueError(
            "use only lowercase letters, digits and single hyphens, like 'salmon-rice'"
        )
    return value


Html = Annotated[str, Field(min_length=1)]
PlainText = Annotated[str, Field(min_length=1), AfterValidator(_plain_text)]
Label = Annotated[
    str,
    Field(min_length=1, max_length=MAX_BUTTON_LABEL_LENGTH),
    AfterValidator(_single_line),
    AfterValidator(_plain_text),
]
Slug = Annotated[str, Field(max_length=40), AfterValidator(_slug)]
WindowBeforeMinutes = Annotated[int, Field(strict=True, ge=0, le=MAX_WINDOW_BEFORE_MINUTES)]
"""How many minutes before its time a scheduled message may go out (levelling a busy minute)."""
WindowAfterMinutes = Annotated[int, Field(strict=True, ge=0, le=MAX_WINDOW_AFTER_MINUTES)]
"""How many minutes after its time a scheduled message still counts as on time."""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


_M = TypeVar("_M", bound=BaseModel)


def load_toml(path: Path, schema: type[_M]) -> _M:
    """Parse one TOML file into its schema, turning every failure into a one-line ContentError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ContentError(path, "file not found") from None
    except OSError as exc:
        raise ContentError(path, f"cannot read file: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContentError(path, f"not valid UTF-8 (byte {exc.start}); save as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ContentError(path, f"TOML syntax error: {exc}") from None
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ContentError(path, _describe_validation_error(exc, data)) from None


def _describe_validation_error(exc: ValidationError, data: Mapping[str, Any]) -> str:
    """Pydantic's multi-line report as one line an editor can act on."""
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        kind = error["type"]
        if kind == "missing":
            where, message = _describe_loc(loc[:-1], data), f"missing field {loc[-1]!r}"
        elif kind == "extra_forbidden":
            where, message = _describe_loc(loc[:-1], data), f"unknown field {loc[-1]!r} (typo?)"
        else:
            where, message = _describe_loc(loc, data), _friendly_message(error)
        problems.append(f"{where}: {message}" if where else message)
    shown = problems[:3]
    if len(problems) > len(shown):
        shown.append(f"and {len(problems) - len(shown)} more")
    return "; ".join(shown)


_TYPE_HINTS: Final = {
    "frozen_set_type": 'should be a list in square brackets, e.g. ["omnivore"]',
    "tuple_type": "should be a list in square brackets",
    "list_type": "should be a list in square brackets",
    "string_type": "should be text in quotes",
    "int_type": "should be a whole number",
    "int_parsing": "should be a whole number",
    "int_from_float": "should be a whole number",
    "model_type": "should be a table of keys and values",
    "dict_type": "should be a table of keys and values",
}


def _friendly_message(error: ErrorDetails) -> str:
    kind = error["type"]
    given = error.get("input")
    if kind in _TYPE_HINTS:
        message = _TYPE_HINTS[kind]
    elif kind == "string_too_long" and isinstance(given, str):
        limit = (error.get("ctx") or {}).get("max_length")
        return f"too long: at most {limit} characters, this one has {len(given)}"
    elif kind == "string_too_short":
        return "must not be empty"
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
    if isinstance(given, str | int | float | bool) and len(repr(given)) <= 40:
        message += f" (got {given!r})"
    return message


def _describe_loc(loc: tuple[int | str, ...], data: Mapping[str, Any]) -> str:
    """('meal', 3, 'diets') -> "meal 'salmon-rice': diets" using the item's own id."""
    parts: list[str] = []
    node: Any = data
    index = 0
    while index < len(loc):
        key = loc[index]
        child = node.get(key) if isinstance(node, Mapping) else None
        following = loc[index + 1] if index + 1 < len(loc) else None
        if isinstance(key, str) and isinstance(following, int) and isinstance(child, list):
            item = child[following] if following < len(child) else None
            parts.append(_item_name(key, item, following) + ":")
            node = item
            index += 2
            continue
        parts.append(f"[{key}]" if isinstance(key, int) else str(key))
        node = child
        index += 1
    return " ".join(parts).rstrip(":")


def _item_name(table: str, item: object, index: int) -> str:
    if isinstance(item, Mapping):
        for key in ("id", "slug", "kind", "name", "title"):
            value = item.get(key)
            if isinstance(value, str) and value.strip():
                return f"{table} {value.strip()!r}"
    return f"{table} #{index + 1}"


def check_html(path: Path, where: str, html: str) -> None:
    try:
        check_telegram_html(html)
    except TelegramHTMLError as exc:
        raise ContentError(path, f"{where}: {exc}") from None


def check_unique(path: Path, what: str, values: Sequence[str]) -> None:
    duplicates = sorted(value for value, count in Counter(values).items() if count > 1)
    if duplicates:
        raise ContentError(path, f"duplicate {what}: {', '.join(map(repr, duplicates))}")


def check_rendered(path: Path, where: str, html: str) -> None:
    """The final check, on exactly what Telegram will receive."""
    check_html(path, where, html)
    leftover = PLACEHOLDER.search(html)
    if leftover:
        raise ContentError(path, f"{where}: unknown placeholder {leftover.group(0)}")
    length = telegram_length(html)
    if length > MAX_MESSAGE_LENGTH:
        raise ContentError(
            path, f"{where}: {length} characters, over Telegram's limit of {MAX_MESSAGE_LENGTH}"
        )
