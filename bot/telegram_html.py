"""Offline checks for Telegram's HTML parse mode, so bad markup fails at start-up, not at send time.

Telegram rejects a whole message ("can't parse entities") when its HTML is off, and counts the
4096-character limit on the *visible* text in UTF-16 code units. This module mirrors those rules
(https://core.telegram.org/bots/api#html-style) strictly enough that anything it accepts Telegram
accepts too. It is pure: stdlib only, no Telegram imports.

Two passes: a strict lexical scan of every ``<`` and ``&`` (``html.parser`` is lenient and would
silently accept or drop things like ``a < b``, ``</>`` or ``&nbsp``), then ``html.parser`` for the
tag structure, attributes and nesting.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Final

MAX_MESSAGE_LENGTH: Final = 4096
"""Telegram's limit for a text message, counted in UTF-16 code units of the visible text."""
MAX_CALLBACK_DATA_BYTES: Final = 64
"""Telegram's limit for an inline button's callback_data, in UTF-8 bytes."""
MAX_CALLBACK_ANSWER_LENGTH: Final = 200
"""Telegram's limit for the text of answerCallbackQuery (the toast / alert)."""

# Tags Telegram understands, and the attributes each may carry.
_ALLOWED_ATTRIBUTES: Final[dict[str, frozenset[str]]] = {
    "b": frozenset(),
    "strong": frozenset(),
    "i": frozenset(),
    "em": frozenset(),
    "u": frozenset(),
    "ins": frozenset(),
    "s": frozenset(),
    "strike": frozenset(),
    "del": frozenset(),
    "span": frozenset({"class"}),
    "tg-spoiler": frozenset(),
    "a": frozenset({"href"}),
    "code": frozenset({"class"}),
    "pre": frozenset(),
    "blockquote": frozenset({"expandable"}),
    "tg-emoji": frozenset({"emoji-id"}),
}
_NAMED_ENTITIES: Final = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}

_ENTITY: Final = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,6}));")
_ATTRIBUTE: Final = r"""\s+[a-zA-Z][a-zA-Z0-9_-]*(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?"""
_START_TAG: Final = re.compile(rf"<[a-zA-Z][a-zA-Z0-9-]*(?:{_ATTRIBUTE})*\s*/?>")
_END_TAG: Final = re.compile(r"</[a-zA-Z][a-zA-Z0-9-]*>")
_MARKUP_CHAR: Final = re.compile(r"[<&]")
_LANGUAGE_CLASS: Final = re.compile(r"language-[A-Za-z0-9_+#.-]+")


class TelegramHTMLError(ValueError):
    """Markup Telegram would reject; ``offset`` is the character index where the problem is."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


def escape(text: str, *, quote: bool = False) -> str:
    """Escape plain text (a name, a user's input) for insertion into Telegram HTML.

    Text between tags needs only &, < and > escaped; pass quote=True for attribute values.
    """
    return html.escape(text, quote=quote)


def check_telegram_html(text: str) -> None:
    """Raise TelegramHTMLError saying what and where if Telegram would refuse ``text``."""
    _parse(text)


def visible_text(html_text: str) -> str:
    """The text a reader sees: tags removed, entities decoded. Raises on invalid markup."""
    return _parse(html_text)


def telegram_length(html_text: str) -> int:
    """The length Telegram compares with MAX_MESSAGE_LENGTH: UTF-16 code units of visible text."""
    return utf16_length(visible_text(html_text))


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units (an emoji outside the BMP counts as two), as Telegram counts."""
    return len(text.encode("utf-16-le")) // 2


def _parse(text: str) -> str:
    _scan_markup(text)
    parser = _StructureParser(text)
    parser.feed(text)
    parser.close()
    parser.finish()
    return "".join(parser.chunks)


def _check_entity(text: str, offset: int) -> int:
    """Validate the entity starting at ``offset`` (an '&'); return the offset just after it."""
    match = _ENTITY.match(text, offset)
    if match is None:
        snippet = text[offset : offset + 10].split()[0]
        raise TelegramHTMLError(
            f"unsupported entity or bare '&' at offset {offset} ({snippet!r}): write &amp; "
            "for '&'; only &lt; &gt; &amp; &quot; and numeric entities are allowed",
            offset,
        )
    decimal, hexadecimal = match.group(2), match.group(3)
    if decimal is not None or hexadecimal is not None:
        code_point = int(decimal) if decimal is not None else int(hexadecimal, 16)
        if code_point == 0 or code_point > 0x10FFFF or 0xD800 <= code_point <= 0xDFFF:
            raise TelegramHTMLError(
                f"numeric entity {match.group(0)} at offset {offset} is not a valid character",
                offset,
            )
    return match.end()


def _scan_markup(text: str) -> None:
    """Strict lexical pass: every '<' opens a well-formed tag, every '&' a supported entity."""
    position = 0
    while (found := _MARKUP_CHAR.search(text, position)) is not None:
        offset = found.start()
        if found.group(0) == "&":
            position = _check_entity(text, offset)
            continue
        tag = _END_TAG.match(text, offset) or _START_TAG.match(text, offset)
        if tag is None:
            raise TelegramHTMLError(
                f"bare '<' or malformed tag at offset {offset} "
                f"({text[offset : offset + 12]!r}): write &lt; for a literal '<'",
                offset,
            )
        # Entities inside attribute values are decoded by Telegram too: same rules apply.
        inner = offset
        while (amp := text.find("&", inner, tag.end())) != -1:
            inner = _check_entity(text, amp)
        position = tag.end()


@dataclass
class _Open:
    tag: str
    offset: int
    has_children: bool = False


class _StructureParser(HTMLParser):
    """Checks tag names, attributes and nesting; collects the visible text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=False)
        self.chunks: list[str] = []
        self._stack: list[_Open] = []
        # html.parser reports (line, column); Telegram users think in offsets.
        self._line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def _fail(self, message: str, offset: int | None = None) -> TelegramHTMLError:
        where = self._offset() if offset is None else offset
        return TelegramHTMLError(f"{message} at offset {where}", where)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        offset = self._offset()
        if tag not in _ALLOWED_ATTRIBUTES:
            raise self._fail(f"unsupported tag <{tag}>")
        attributes = self._check_attributes(tag, attrs)
        self._check_nesting(tag, attributes)
        if self._stack:
            self._stack[-1].has_children = True
        self._stack.append(_Open(tag, offset))

    def _check_attributes(self, tag: str, attrs: list[tuple[str, str | None]]) -> dict[str, str]:
        attributes: dict[str, str] = {}
        for name, value in attrs:
            if name not in _ALLOWED_ATTRIBUTES[tag]:
                raise self._fail(f"unsupported attribute {name!r} on <{tag}>")
            if name in attributes:
                raise self._fail(f"duplicate attribute {name!r} on <{tag}>")
            attributes[name] = value if value is not None else ""
        if tag == "a" and not attributes.get("href", "").strip():
            raise self._fail('<a> needs a non-empty href="..."')
        if tag == "span" and attributes.get("class") != "tg-spoiler":
            raise self._fail('<span> is only allowed as <span class="tg-spoiler">')
        if tag == "tg-emoji" and not attributes.get("emoji-id", "").isdigit():
            raise self._fail('<tg-emoji> needs a numeric emoji-id="..."')
        if tag == "blockquote" and attributes.get("expandable", "") not in ("", "expandable"):
            raise self._fail("<blockquote expandable> takes no value")
        if tag == "code" and not _LANGUAGE_CLASS.fullmatch(attributes.get("class", "language-x")):
            raise self._fail('<code class="..."> must be class="language-NAME"')
        return attributes

    def _check_nesting(self, tag: str, attributes: dict[str, str]) -> None:
        open_tags = {item.tag for item in self._stack}
        parent = self._stack[-1] if self._stack else None
        if "code" in open_tags:
            raise self._fail(f"<{tag}> is not allowed inside <code>")
        if "pre" in open_tags:
            # The one exception: <pre><code class="language-x">...</code></pre>.
            if not (tag == "code" and parent is not None and parent.tag == "pre"):
                raise self._fail(f"<{tag}> is not allowed inside <pre>")
            if parent.has_children:
                raise self._fail("<pre> may contain only one <code>")
        elif "class" in attributes and tag == "code":
            raise self._fail('<code class="language-..."> is only allowed directly inside <pre>')
        if tag == "blockquote" and "blockquote" in open_tags:
            raise self._fail("<blockquote> cannot be nested")
        if tag == "a" and "a" in open_tags:
            raise self._fail("<a> cannot be nested inside another <a>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise self._fail(f"self-closing tag <{tag}/> is not supported")

    def handle_endtag(self, tag: str) -> None:
        if not self._stack or self._stack[-1].tag != tag:
            expected = f", expected </{self._stack[-1].tag}>" if self._stack else ""
            offset = self._offset()
            raise TelegramHTMLError(
                f"unexpected end tag </{tag}> at offset {offset}{expected}", offset
            )
        self._stack.pop()

    def handle_data(self, data: str) -> None:
        if "<" in data:  # the lexical scan should have caught it; never emit a bare '<'
            raise self._fail("bare '<'")
        if data and self._stack:
            self._stack[-1].has_children = True
        self.chunks.append(data)

    def handle_entityref(self, name: str) -> None:
        self.chunks.append(_NAMED_ENTITIES[name])

    def handle_charref(self, name: str) -> None:
        code_point = int(name[1:], 16) if name[:1] in ("x", "X") else int(name)
        self.chunks.append(chr(code_point))

    def handle_comment(self, data: str) -> None:
        raise self._fail("HTML comments are not supported")

    def handle_decl(self, decl: str) -> None:
        raise self._fail("declarations are not supported")

    def unknown_decl(self, data: str) -> None:
        raise self._fail("declarations are not supported")

    def handle_pi(self, data: str) -> None:
        raise self._fail("processing instructions are not supported")

    def finish(self) -> None:
        """Called after close(): anything still open is an error."""
        if self._stack:
            item = self._stack[-1]
            raise TelegramHTMLError(
                f"unclosed <{item.tag}> opened at offset {item.offset}", item.offset
            )
