"""Does the Chinese article say what the English one says, sentence for sentence, as hedged?

The article survives only in English (content/article.toml, checked against the source by
tests/article_fidelity.py), so the Chinese text (content/zh/article.toml) is held to it: the
same sentences per section in the same order, and for every hedge in an English sentence the
Chinese hedge in the aligned sentence. A Chinese sentence must also add no strengthening word
its English sentence lacks. Used by tests/test_content_zh.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from bot.telegram_html import visible_text
from tests.article_fidelity import split_sentences

_ZH_SENTENCE: Final = re.compile(r"[^。！？]+[。！？]?")

Hedge = tuple[str, re.Pattern[str], tuple[str, ...]]
"""A hedge's name, how the English says it, and how the Chinese must say it (any of these)."""

HEDGES: Final[tuple[Hedge, ...]] = (
    ("may", re.compile(r"\bmay\b", re.I), ("可能",)),
    (
        "some studies suggest",
        re.compile(r"\bsome studies (?:suggest|show)", re.I),
        ("一些研究表明",),
    ),
    (
        "varies from person to person",
        re.compile(r"\bvaries from person to person", re.I),
        ("因人而异",),
    ),
    ("limited", re.compile(r"\blimited\b", re.I), ("有限",)),
    ("still unclear", re.compile(r"\bstill unclear\b", re.I), ("尚不明确",)),
    ("moderate", re.compile(r"\bmoderate\b", re.I), ("适量",)),
    ("no additional benefits", re.compile(r"\bno additional benefits?\b", re.I), ("没有额外益处",)),
    ("potentially", re.compile(r"\bpotentially\b", re.I), ("潜在",)),
    ("indirectly", re.compile(r"\bindirectly\b", re.I), ("间接",)),
    ("to some extent", re.compile(r"\bto some extent\b", re.I), ("一定程度",)),
    ("some", re.compile(r"\bsome\b(?! extent)", re.I), ("一些",)),
    ("mainly", re.compile(r"\bmainly\b", re.I), ("主要",)),
    ("excessive", re.compile(r"\bexcessive\b", re.I), ("过量",)),
    ("should", re.compile(r"\bshould\b", re.I), ("应",)),
    ("cannot", re.compile(r"\bcannot\b", re.I), ("不能",)),
    ("not / non-", re.compile(r"\bnot\b|\bnon-", re.I), ("不", "没", "非")),
)
"""The brief's table (may 可能 ... indirectly 间接) plus the words that bound a claim's scope."""

CORE_HEDGES: Final = HEDGES[:10]
"""The article's own hedges, required wherever any text restates it (tips, reminders, ...)."""

STRENGTHENERS: Final = (
    "一定会",
    "肯定",
    "必定",
    "必然",
    "证实",
    "证明",
    "治愈",
    "保证",
    "显著",
    "总是",
    "确保",
    "彻底",
)


@dataclass(frozen=True)
class Mismatch:
    """One way a Chinese sentence (or section) departs from its English counterpart."""

    where: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


def split_zh_sentences(text: str) -> list[str]:
    """Lines, then sentences ending in 。！？ within lines (a heading line is one sentence)."""
    sentences: list[str] = []
    for line in text.splitlines():
        sentences.extend(part.strip() for part in _ZH_SENTENCE.findall(line) if part.strip())
    return sentences


def sentences_of(html: str, *, chinese: bool) -> list[str]:
    text = visible_text(html)
    return split_zh_sentences(text) if chinese else split_sentences(text)


def missing_hedges(english: str, chinese: str, table: tuple[Hedge, ...] = HEDGES) -> list[str]:
    """The hedges the English text has and the Chinese text lacks."""
    return [
        f"{name!r} needs {' or '.join(wanted)}"
        for name, pattern, wanted in table
        if pattern.search(english) and not any(word in chinese for word in wanted)
    ]


def added_strength(chinese: str) -> list[str]:
    return [word for word in STRENGTHENERS if word in chinese]


def compare_section(where: str, english_html: str, chinese_html: str) -> list[Mismatch]:
    """Same sentence count; per aligned pair, every hedge kept and nothing strengthened."""
    english = sentences_of(english_html, chinese=False)
    chinese = sentences_of(chinese_html, chinese=True)
    if len(english) != len(chinese):
        return [
            Mismatch(
                where,
                f"{len(english)} English sentences but {len(chinese)} Chinese ones: {chinese}",
            )
        ]
    problems: list[Mismatch] = []
    for number, (en, zh) in enumerate(zip(english, chinese, strict=True), start=1):
        here = f"{where}, sentence {number} ({zh})"
        problems += [Mismatch(here, f"hedge {missing}") for missing in missing_hedges(en, zh)]
        problems += [Mismatch(here, f"adds {word!r}") for word in added_strength(zh)]
    return problems
