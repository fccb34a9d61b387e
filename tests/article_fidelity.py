"""Does what the bot shows still say what the article says? Reused by unit and end-to-end tests.

The article's English is a little rough, so editors may fix grammar and punctuation, but not
meaning or strength. A sentence counts as present when some rendered sentence (or two adjacent
ones) is a close textual match after normalising case, punctuation and whitespace, keeps every
hedge word of the original ("may", "limited", ...) and adds no strengthening word ("proven").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from difflib import SequenceMatcher
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Final

from bot.telegram_html import visible_text

ARTICLE_RELATIVE_PATH: Final = Path("shared") / "source-article.txt"
CHROME_LINES: Final = 3
"""Trailing web-page chrome ("Leave a Comment", ...). A "Comments (0)" line that may precede it
is not prose (no sentence-ending punctuation) and is skipped like the section headings."""
MIN_RATIO: Final = 0.85
HEDGES: Final = (
    "may",
    "some",
    "studies",
    "suggest",
    "limited",
    "unclear",
    "moderate",
    "no additional",
    "potentially",
    "indirectly",
    "not",
    "cannot",
    "should",
)
STRENGTHENERS: Final = (
    "always",
    "certainly",
    "clearly",
    "cure",
    "cures",
    "definitely",
    "guaranteed",
    "guarantees",
    "must",
    "proven",
    "will",
)

_SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(])")
_NUMBERED_HEADING: Final = re.compile(r"^\s*\d+\.\s")
_NON_WORD: Final = re.compile(r"[^a-z0-9]+")


def find_article(start: Path | None = None) -> Path | None:
    """shared/source-article.txt in the nearest parent (the repo's sibling in CI), if any."""
    here = (start or Path(__file__)).resolve()
    for directory in (here, *here.parents):
        candidate = directory / ARTICLE_RELATIVE_PATH
        if candidate.is_file():
            return candidate
    return None


def split_sentences(text: str) -> list[str]:
    """Lines, then sentences within lines; empty pieces dropped."""
    sentences: list[str] = []
    for line in text.splitlines():
        sentences.extend(part.strip() for part in _SENTENCE_END.split(line) if part.strip())
    return sentences


@cache
def _article_lines() -> tuple[str, ...] | None:
    path = find_article()
    if path is None:
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines[:-CHROME_LINES])


def _is_prose(line: str) -> bool:
    """Headings ("1. Regulating ...") and chrome ("Comments (0)") don't end like sentences."""
    is_heading = bool(_NUMBERED_HEADING.match(line)) and len(split_sentences(line)) == 1
    return bool(line) and line[-1] in ".!?" and not is_heading


def article_sentences() -> list[str] | None:
    """Every sentence of the five numbered sections, closing advice included; None if absent."""
    lines = _article_lines()
    if lines is None:
        return None
    first = next(i for i, line in enumerate(lines) if line.startswith("1."))
    prose = [line for line in lines[first:] if _is_prose(line)]
    return [sentence for line in prose for sentence in split_sentences(line)]


def article_lead_sentences() -> list[str] | None:
    """The sentences of the article's opening paragraph (its first line); None if absent."""
    lines = _article_lines()
    if lines is None:
        return None
    return split_sentences(lines[0])


def normalise(text: str) -> str:
    """Lower case, punctuation and dashes as spaces, whitespace collapsed."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def _has_word(normalised: str, word: str) -> bool:
    return f" {word} " in f" {normalised} "


def _candidates(rendered_texts: Sequence[str]) -> list[str]:
    """Normalised rendered sentences, plus adjacent pairs (an editor may split a sentence)."""
    candidates: list[str] = []
    for html in rendered_texts:
        sentences = [normalise(s) for s in split_sentences(visible_text(html))]
        sentences = [s for s in sentences if s]
        candidates.extend(sentences)
        candidates.extend(f"{a} {b}" for a, b in pairwise(sentences))
    return candidates


def _faithful(original: str, candidate: str) -> bool:
    """Keeps every hedge of the original and adds no strengthening word."""
    keeps_hedges = all(_has_word(candidate, h) for h in HEDGES if _has_word(original, h))
    adds_strength = any(
        _has_word(candidate, word) and not _has_word(original, word) for word in STRENGTHENERS
    )
    return keeps_hedges and not adds_strength


def best_match(sentence: str, rendered_texts: Sequence[str]) -> tuple[str, float]:
    """The closest rendered (normalised) sentence and its similarity ratio, for diagnostics."""
    target = normalise(sentence)
    best, best_ratio = "", 0.0
    for candidate in _candidates(rendered_texts):
        ratio = SequenceMatcher(None, target, candidate, autojunk=False).ratio()
        if ratio > best_ratio:
            best, best_ratio = candidate, ratio
    return best, best_ratio


def missing_sentences(article: list[str], rendered_texts: list[str]) -> list[str]:
    """Article sentences with no close, equally hedged counterpart in the rendered messages."""
    candidates = _candidates(rendered_texts)
    missing: list[str] = []
    for sentence in article:
        target = normalise(sentence)
        found = False
        for candidate in candidates:
            matcher = SequenceMatcher(None, target, candidate, autojunk=False)
            if (
                matcher.real_quick_ratio() >= MIN_RATIO
                and matcher.quick_ratio() >= MIN_RATIO
                and matcher.ratio() >= MIN_RATIO
                and _faithful(target, candidate)
            ):
                found = True
                break
        if not found:
            missing.append(sentence)
    return missing
