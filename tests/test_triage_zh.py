"""Chinese free text: crisis recall over every language's safety.toml, and no crisis reply for
everyday Chinese sleep talk. Run with `pytest -s tests/test_triage_zh.py` for the counts."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.content import load_triage_rules
from bot.triage import Kind, Normaliser, TriageRules, compile_rule
from tests.triage_phrases_zh import ZH_CRISIS_PHRASES, ZH_LABELLED, ZH_NOT_CRISIS

ZH_ACCURACY_FLOOR = 0.9
"""Outside crisis a miss costs one less fitting page; the floor catches a class gone missing."""
CONTENT_DIR = Path(__file__).resolve().parent.parent / "content"
SAFETY_DIRS = {"en": CONTENT_DIR, "zh": CONTENT_DIR / "zh"}
"""Every locale's content directory: crisis patterns are shared, so each must catch these."""


@pytest.fixture(scope="module", params=sorted(SAFETY_DIRS))
def rules(request: pytest.FixtureRequest) -> TriageRules:
    return load_triage_rules(SAFETY_DIRS[request.param])


def chinese_perturbations(phrase: str) -> Iterator[str]:
    """How the same words arrive from a phone keyboard: spaces, punctuation, emoji, mixed in."""
    yield phrase
    yield " ".join(phrase)  # a space between every character
    yield f"{phrase}！！！"
    yield f"唉，{phrase}……"
    yield f"  {phrase} 😔 "
    yield f"ok {phrase}"
    yield phrase.replace("，", ",")


def test_every_chinese_crisis_phrase_is_crisis(rules: TriageRules) -> None:
    variants = {
        variant for phrase in ZH_CRISIS_PHRASES for variant in chinese_perturbations(phrase)
    }
    missed = sorted(
        variant for variant in variants if rules.classify(variant).kind is not Kind.CRISIS
    )
    print(f"\nChinese crisis recall over {len(variants)} variations: {len(missed)} missed")
    assert missed == []


def test_everyday_chinese_sleep_talk_is_not_crisis(rules: TriageRules) -> None:
    alarms = [phrase for phrase in ZH_NOT_CRISIS if rules.is_crisis(phrase)]
    assert alarms == []


def test_chinese_patterns_match_exactly_where_one_of_them_is_in_the_text() -> None:
    """Chinese patterns are compiled into one character trie (cheap with hundreds of them): it
    must match a text exactly when one of the literals occurs in it, prefixes of each other
    ("想死", "想死了") and Latin letters ("b12缺乏") included. Random sets, fixed seed."""
    rng = random.Random(8)
    alphabet = "想死不活了自杀消失b1"
    normalise = Normaliser()
    checked = 0
    for _ in range(3000):
        patterns = {
            "".join(rng.choices(alphabet, k=rng.randint(1, 4))) for _ in range(rng.randint(1, 6))
        }
        patterns = {p for p in patterns if any("\u4e00" <= c <= "\u9fff" for c in p)}
        if not patterns:
            continue
        rule = compile_rule(Kind.CRISIS, "crisis", sorted(patterns), normalise)
        literals = [normalise(p).replace(" ", "") for p in patterns]
        for _ in range(5):
            text = normalise("".join(rng.choices(alphabet + " ", k=rng.randint(0, 12))))
            expected = any(literal in text for literal in literals)
            assert rule.search(text) is expected, (sorted(patterns), text)
            checked += 1
    assert checked > 10_000


def test_chinese_questions_get_the_fitting_class(rules: TriageRules) -> None:
    """Prints what was misrouted (pytest -s); asserts the floor and every class present."""
    wrong = [(kind, phrase, rules.classify(phrase).kind) for kind, phrase in ZH_LABELLED]
    wrong = [(kind, phrase, got) for kind, phrase, got in wrong if got is not kind]
    right = len(ZH_LABELLED) - len(wrong)
    print(f"\nChinese labelled set: {right}/{len(ZH_LABELLED)}")
    for kind, phrase, got in wrong:
        print(f"  {phrase!r}: expected {kind.value}, got {got.value}")
    assert {kind for kind, _ in ZH_LABELLED} == set(Kind) - {Kind.CRISIS}
    assert right / len(ZH_LABELLED) >= ZH_ACCURACY_FLOOR


def test_chinese_diet_names_are_understood(rules: TriageRules) -> None:
    assert rules.classify("纯素的人吃什么").diet == "vegan"
    assert rules.classify("我吃素，怎么补B12").diet == "vegetarian"
    assert rules.classify("我吃鱼不吃肉，晚饭吃什么").diet == "pescatarian"
