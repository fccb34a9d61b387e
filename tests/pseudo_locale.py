"""A pseudo-locale built at test time, and the check that text came only from it.

Every text in every content file is transformed: wrapped in ⟦…⟧ and every Latin letter
accented ("Done" → "⟦Đóñé⟧"), keeping what the bot or the loader must still read as it is:
HTML tags and entities, {placeholders}, /commands, URLs, and the few words the content check
reads ("B12" beside a number, a vegan meal's "fortified", a liver dish's "pregnancy" caution).
Data (ids, slugs, lists: aliases, diets, countries, triage patterns) is copied unchanged, as in
test_content_zh.

`foreign_words` then finds, in what the bot sent, every run of letters that is neither
pseudo-transformed nor known data (times, city and zone names, what the person typed): any
word written in Python instead of the catalogue shows up there, even inside a placeholder.
"""

from __future__ import annotations

import html
import re
import shutil
import tomllib
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any, Final

from bot.i18n import LOCALES, MIRRORED_FILES, UI_FILE

# Translated per locale but not compared key for key (its plural and date forms differ).
DIARY_FILE = "diary.toml"
# Lists of words shown to people (diary.toml: month and weekday names, buttons, days).
WORD_LISTS = frozenset({"months", "weekdays", "days", "rating_buttons"})

DATA_KEYS: Final = frozenset({"id", "slug", "kind", "source", "url", "page", "rule"})
_PLAIN: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ACCENTED: Final = "áƀçđéƒĝĥíĵķĺɱñóþʠŕšţúṽŵẋýžÁƁÇĐÉƑĜĤÍĴĶĹṀÑÓÞǪŔŠŢÚṼŴẊÝŽ"
PSEUDO_LETTERS: Final = frozenset(_ACCENTED)
_ACCENT: Final = str.maketrans(_PLAIN, _ACCENTED)
KEEP: Final = re.compile(
    r"<[^>]*>"  # tags
    r"|&(?:#\w+|[A-Za-z]+);"  # entities
    r"|\{[A-Za-z_]\w*\}"  # placeholders
    r"|(?<![\w/])/[a-z][a-z_]*(?:@\w+)?"  # /commands
    r"|https?://[^\s<\"]+"  # URLs
    r"|\b(?:fortified|added b12|b12|liver|pregnan\w*)\b",  # words the content check reads
    re.IGNORECASE,
)
OPEN, CLOSE = "⟦", "⟧"


def pseudo(text: str) -> str:
    """⟦accented text⟧, keeping what must stay readable (see KEEP)."""
    if not text.strip():
        return text
    parts: list[str] = []
    position = 0
    for match in KEEP.finditer(text):
        parts.append(text[position : match.start()].translate(_ACCENT))
        parts.append(match.group(0))
        position = match.end()
    parts.append(text[position:].translate(_ACCENT))
    body = "".join(parts)
    # Leading/trailing line breaks of triple-quoted text stay outside the brackets.
    stripped = body.strip("\n")
    start = body.index(stripped[0]) if stripped else 0
    return f"{body[:start]}{OPEN}{stripped}{CLOSE}{body[start + len(stripped) :]}"


def _transform(node: Any, key: str = "") -> Any:
    if isinstance(node, dict):
        return {name: _transform(value, name) for name, value in node.items()}
    if isinstance(node, list):  # lists hold data (aliases, diets, patterns) or tables...
        if key in WORD_LISTS:  # ...or words the bot shows
            return [pseudo(item) for item in node]
        return [_transform(item, key) if isinstance(item, dict) else item for item in node]
    if isinstance(node, str) and key not in DATA_KEYS:
        return pseudo(node)
    return node


def _toml(value: Any, prefix: str = "") -> str:
    """A minimal TOML writer for content's shapes: tables, arrays of tables, scalars, lists."""
    scalars = []
    tables = []
    for name, item in value.items():
        if isinstance(item, dict) or (
            isinstance(item, list) and item and all(isinstance(i, dict) for i in item)
        ):
            tables.append((name, item))
        else:
            scalars.append(f"{_key(name)} = {_value(item)}")
    out = "\n".join(scalars) + "\n"
    for name, item in tables:
        full = f"{prefix}{_key(name)}"
        if isinstance(item, dict):
            out += f"\n[{full}]\n" + _toml(item, f"{full}.")
        else:
            for element in item:
                out += f"\n[[{full}]]\n" + _toml(element, f"{full}.")
    return out


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _value(name)


def _value(item: Any) -> str:
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int | float):
        return repr(item)
    if isinstance(item, str):
        return '"' + item.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(item, list):
        return "[" + ", ".join(_value(i) for i in item) + "]"
    if isinstance(item, date):  # sources.toml `reviewed`
        return item.isoformat()
    raise TypeError(f"no TOML for {item!r}")


def build_pseudo_content(source: Path, target: Path) -> Path:
    """content/ with every text pseudo-transformed, in `target`; every locale's folder gets
    the same pseudo text (with its own plural rule), so no real translation can leak through."""
    shutil.copytree(source, target)
    for name in (*MIRRORED_FILES, DIARY_FILE):
        data = tomllib.loads((source / name).read_text(encoding="utf-8"))
        (target / name).write_text(_toml(_transform(data)), encoding="utf-8")
        for locale in LOCALES[1:]:
            translated = _transform(data)
            if name == UI_FILE:
                translated["plural"] = {"rule": "other"}
                _only_other_forms(translated)
                translated["language"]["name"] = pseudo(f"Language {locale}")
            (target / locale / name).write_text(_toml(translated), encoding="utf-8")
    return target


def _only_other_forms(node: dict[str, Any]) -> None:
    for name, value in node.items():
        if isinstance(value, dict) and "other" in value:
            node[name] = {"other": value["other"]}
        elif isinstance(value, dict):
            _only_other_forms(value)


_TAG: Final = re.compile(r"<[^>]*>")
_PRE: Final = re.compile(r"<pre>.*?</pre>", re.DOTALL)
_LETTERS: Final = re.compile(r"[^\W\d_]+")


def foreign_words(text: str, data: Iterable[str]) -> list[str]:
    """Runs of letters in `text` that are neither pseudo-transformed nor in `data`.

    /mydata's <pre> block is a JSON export of stored data (field names and values): data.
    """
    allowed = set(data)
    visible = html.unescape(_TAG.sub(" ", _PRE.sub(" ", text)))
    visible = KEEP.sub(" ", visible).replace(OPEN, " ").replace(CLOSE, " ")
    found = []
    for token in _LETTERS.findall(visible):
        for run in re.findall(rf"[^{_ACCENTED}]+", token):
            if run not in allowed and not run.isnumeric():  # "1½ oz": a number, not a word
                found.append(run)
    return found
