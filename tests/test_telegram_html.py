"""Telegram HTML rules, checked offline: whatever passes here must not fail at send time."""

from __future__ import annotations

import pytest

from bot.telegram_html import (
    MAX_CALLBACK_ANSWER_LENGTH,
    MAX_CALLBACK_DATA_BYTES,
    MAX_MESSAGE_LENGTH,
    TelegramHTMLError,
    check_telegram_html,
    escape,
    telegram_length,
    utf16_length,
    visible_text,
)

VALID = [
    "",
    "plain text, no markup",
    "a > b is fine for Telegram",
    "<b>bold</b> <strong>strong</strong> <i>it</i> <em>em</em>",
    "<u>u</u> <ins>ins</ins> <s>s</s> <strike>strike</strike> <del>del</del>",
    '<span class="tg-spoiler">spoiler</span> <tg-spoiler>spoiler</tg-spoiler>',
    '<a href="https://example.com/?a=1&amp;b=2">link</a>',
    "<a href='tg://user?id=123'>mention</a>",
    "<code>x = 1 &lt; 2</code>",
    "<pre>block</pre>",
    '<pre><code class="language-python">print("hi")</code></pre>',
    "<blockquote>quote <b>bold</b></blockquote>",
    "<blockquote expandable>long quote</blockquote>",
    '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>',
    "<b>bold <i>italic <u>underline <s>struck</s></u></i></b>",
    '<b><a href="https://example.com">bold link</a></b>',
    '<a href="https://example.com"><b>link with bold</b></a>',
    "<B>upper-case tag names</B>",
    "line one\nline two\n\n<b>multi\nline</b>",
    "&lt;&gt;&amp;&quot; &#65; &#x1F600; &#X1f600;",
]


@pytest.mark.parametrize("html", VALID)
def test_valid_markup_passes(html: str) -> None:
    check_telegram_html(html)


@pytest.mark.parametrize(
    ("html", "message", "offset"),
    [
        ("<p>paragraph</p>", "unsupported tag <p>", 0),
        ("text <br> more", "unsupported tag <br>", 5),
        ("<div>x</div>", "unsupported tag <div>", 0),
        ("0123456789ab<b>never closed", "unclosed <b> opened at offset 12", 12),
        ("<b><i>x</i>", "unclosed <b> opened at offset 0", 0),
        ("text</i>", "unexpected end tag </i>", 4),
        ("<b><i>x</b></i>", "unexpected end tag </b> at offset 7, expected </i>", 7),
        ("<b>x</strong>", "unexpected end tag </strong>", 4),
        ("a < b", "bare '<'", 2),
        ("a <", "bare '<'", 2),
        ("x <b", "bare '<'", 2),
        ("a</>b", "bare '<'", 1),
        ("</ b>", "bare '<'", 0),
        ("<!-- comment -->", "bare '<'", 0),
        ("fish & chips", "bare '&'", 5),
        ("&nbsp;", "unsupported entity", 0),
        ("&copy;", "unsupported entity", 0),
        ("&amp no semicolon", "unsupported entity", 0),
        ("&#;", "unsupported entity", 0),
        ("&#0;", "not a valid character", 0),
        ("&#xD800;", "not a valid character", 0),
        ("&#x110000;", "not a valid character", 0),
        ("<span>x</span>", 'class="tg-spoiler"', 0),
        ('<span class="other">x</span>', 'class="tg-spoiler"', 0),
        ("<a>no href</a>", "href", 0),
        ('<a href="">empty href</a>', "href", 0),
        ("<a href='https://e.com/?a&b'>x</a>", "bare '&'", 25),
        ('<b class="x">x</b>', "unsupported attribute 'class' on <b>", 0),
        ('<a href="x" title="t">x</a>', "unsupported attribute 'title' on <a>", 0),
        ('<a href="x" href="y">x</a>', "duplicate attribute 'href'", 0),
        ("<tg-emoji>x</tg-emoji>", "emoji-id", 0),
        ('<blockquote expandable="no">q</blockquote>', "expandable", 0),
        ("<blockquote>a<blockquote>b</blockquote></blockquote>", "cannot be nested", 13),
        ('<a href="x">a<a href="y">b</a></a>', "cannot be nested", 13),
        ("<code><b>x</b></code>", "not allowed inside <code>", 6),
        ("<pre><b>x</b></pre>", "not allowed inside <pre>", 5),
        ('<code class="language-py">x</code>', "only allowed directly inside <pre>", 0),
        ('<pre><code class="python">x</code></pre>', 'class="language-NAME"', 5),
        ("<pre><code>a</code><code>b</code></pre>", "only one <code>", 19),
        ("<b/>", "self-closing", 0),
        ("<b>x</b >", "bare '<'", 4),
    ],
)
def test_invalid_markup_says_what_and_where(html: str, message: str, offset: int) -> None:
    with pytest.raises(TelegramHTMLError) as caught:
        check_telegram_html(html)
    assert message in str(caught.value)
    assert caught.value.offset == offset
    assert isinstance(caught.value, ValueError)


def test_offsets_count_characters_across_lines() -> None:
    html = "first line\nsecond <p>x</p>"
    with pytest.raises(TelegramHTMLError) as caught:
        check_telegram_html(html)
    assert caught.value.offset == html.index("<p>")
    assert f"at offset {html.index('<p>')}" in str(caught.value)


def test_visible_text_removes_tags_and_decodes_entities() -> None:
    html = '<b>Fish</b> &amp; <a href="https://e.com/?a=1&amp;b=2">chips</a> &lt;3 &#x1F600;&#33;'
    assert visible_text(html) == "Fish & chips <3 😀!"


def test_visible_text_keeps_newlines_and_quotes() -> None:
    assert visible_text("<i>a</i>\n\n&quot;b&quot; > c") == 'a\n\n"b" > c'


def test_visible_text_rejects_invalid_markup() -> None:
    with pytest.raises(TelegramHTMLError):
        visible_text("<b>unclosed")


@pytest.mark.parametrize(
    ("html", "length"),
    [
        ("", 0),
        ("hello", 5),
        ("<b>hello</b>", 5),
        ("&amp;&lt;", 2),
        ("café", 4),  # BMP: one code unit each
        ("😀", 2),  # outside the BMP: a surrogate pair
        ("&#x1F600;", 2),
        ("<b>👍🏽</b>", 4),  # emoji + skin-tone modifier, both outside the BMP
        ("🌙 Sleep", 8),
        ('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>', 2),
    ],
)
def test_telegram_length_counts_utf16_code_units(html: str, length: int) -> None:
    assert telegram_length(html) == length


def test_length_limit_is_about_visible_text() -> None:
    html = "<b>" + "x" * MAX_MESSAGE_LENGTH + "</b>"
    assert len(html) > MAX_MESSAGE_LENGTH
    assert telegram_length(html) == MAX_MESSAGE_LENGTH
    assert telegram_length("😀" * 2048) == MAX_MESSAGE_LENGTH


def test_utf16_length() -> None:
    assert utf16_length("a😀b") == 4


def test_limits() -> None:
    assert MAX_MESSAGE_LENGTH == 4096
    assert MAX_CALLBACK_DATA_BYTES == 64
    assert MAX_CALLBACK_ANSWER_LENGTH == 200


@pytest.mark.parametrize("text", ["Fish & chips", "a < b > c", "<b>not a tag</b>", 'it\'s "fine"'])
def test_escape_makes_any_text_safe(text: str) -> None:
    escaped = escape(text)
    check_telegram_html(escaped)
    assert visible_text(escaped) == text
    quoted = escape(text, quote=True)
    check_telegram_html(f'<a href="https://e.com/?q={quoted}">x</a>')
