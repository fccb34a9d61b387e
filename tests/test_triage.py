"""Triage of free text: the labelled set, crisis recall, look-alikes, the pattern language, and
the rule that crisis text can never reach the generic "didn't understand" reply.

Run with `pytest -s tests/test_triage.py` to see the accuracy report.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot import triage
from bot.content import Content, load_content, load_triage_rules
from bot.countries import country_for_zone, parse_links, parse_zone_tab
from bot.replies import Page, plan_reply, prompt_yields_to_triage
from bot.telegram_html import visible_text
from bot.triage import (
    OTHER,
    Kind,
    Normaliser,
    PatternError,
    Triage,
    TriageRules,
    compile_pattern,
    compile_rules,
)
from tests.triage_phrases import CRISIS_PHRASES, HELD_OUT, LABELLED, LOOK_ALIKES

CONTENT_DIR = Path(__file__).resolve().parent.parent / "content"
ACCURACY_FLOOR = 0.95
"""At most 5% of the labelled set misrouted, and each class at least CLASS_RECALL_FLOOR.

Outside crisis a miss costs one less fitting page, never harm, and keyword patterns are not
a language model: demanding 100% would only force patterns that fit this set and nothing else.
The floor still catches a broken class (losing any one class of ≥ 20 phrases drops below it)."""
CLASS_RECALL_FLOOR = 0.85


@pytest.fixture(scope="module")
def content() -> Content:
    return load_content(CONTENT_DIR)


@pytest.fixture(scope="module")
def rules(content: Content) -> TriageRules:
    return content.triage


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def perturbations(phrase: str) -> Iterator[str]:
    """How the same words arrive when typed in a hurry, on another keyboard, or in distress."""
    yield phrase
    yield re.sub(r"[^\w\s]", "", phrase).lower()  # no punctuation, no capitals
    yield phrase.upper()
    yield f"  {phrase}   😔😔 "
    yield phrase + phrase[-1] * 4  # a stretched last letter
    yield _full_width(phrase)
    yield phrase.replace("'", "’")
    yield (
        phrase.replace("I'm", "I am")
        .replace("don't", "do not")
        .replace("can't", "cannot")
        .replace("I've", "I have")
    )
    yield f"honestly {phrase} tbh"


# --------------------------------------------------------------------------------------------
# The labelled set


def test_the_labelled_set_is_big_and_covers_every_class() -> None:
    counts = Counter(kind for kind, _ in LABELLED)
    assert len(LABELLED) >= 200
    assert counts[Kind.CRISIS] >= 40
    assert len(LOOK_ALIKES) >= 40
    assert all(counts[kind] >= 20 for kind in Kind), counts
    phrases = [phrase for _, phrase in (*LABELLED, *HELD_OUT)]
    assert len(phrases) == len(set(phrases)), "a phrase is listed twice"


def test_crisis_recall_is_total(rules: TriageRules) -> None:
    missed = [p for p in CRISIS_PHRASES if rules.classify(p).kind is not Kind.CRISIS]
    missed += [p for kind, p in HELD_OUT if kind is Kind.CRISIS and not rules.is_crisis(p)]
    assert missed == []


def test_crisis_recall_survives_typing_variations(rules: TriageRules) -> None:
    phrases = [*CRISIS_PHRASES, *(p for kind, p in HELD_OUT if kind is Kind.CRISIS)]
    variants = {variant for phrase in phrases for variant in perturbations(phrase)}
    missed = sorted(v for v in variants if not rules.is_crisis(v))
    print(f"\ncrisis recall over {len(variants)} typing variations: {len(missed)} missed")
    assert missed == []


def test_look_alikes_are_not_crisis(rules: TriageRules) -> None:
    alarms = [phrase for _, phrase in LOOK_ALIKES if rules.is_crisis(phrase)]
    alarms += [p for kind, p in HELD_OUT if kind is not Kind.CRISIS and rules.is_crisis(p)]
    assert alarms == []


@pytest.mark.parametrize(
    "phrase", ["I'm dying to sleep", "this alarm kills me", "dead tired", "killing it at work"]
)
def test_the_issues_look_alikes_by_name(rules: TriageRules, phrase: str) -> None:
    assert not rules.is_crisis(phrase)
    assert not triage.is_crisis(phrase)  # the module-level predicate, shipped rules


def test_overall_accuracy(rules: TriageRules) -> None:
    """Prints the per-class report (pytest -s); asserts the floors explained above."""
    confusion: Counter[tuple[Kind, Kind]] = Counter()
    for expected, phrase in LABELLED:
        confusion[expected, rules.classify(phrase).kind] += 1
    total = len(LABELLED)
    correct = sum(n for (expected, got), n in confusion.items() if expected is got)
    crisis_alarms = sum(
        n for (expected, got), n in confusion.items() if got is Kind.CRISIS and expected is not got
    )
    print(f"\ntriage over {total} labelled phrases: accuracy {correct / total:.1%}")
    recalls = {}
    for kind in Kind:
        support = sum(n for (expected, _), n in confusion.items() if expected is kind)
        recalls[kind] = confusion[kind, kind] / support
        wrong = {got.value: n for (exp, got), n in confusion.items() if exp is kind and got != kind}
        print(
            f"  {kind.value:9} {confusion[kind, kind]:3}/{support:<3} {recalls[kind]:.0%} {wrong}"
        )
    print(f"  false crisis alarms: {crisis_alarms}")
    held = sum(rules.classify(phrase).kind is kind for kind, phrase in HELD_OUT)
    print(f"  held-out set: {held}/{len(HELD_OUT)}")
    assert recalls[Kind.CRISIS] == 1.0
    assert correct / total >= ACCURACY_FLOOR
    assert all(recall >= CLASS_RECALL_FLOOR for recall in recalls.values()), recalls


@pytest.mark.parametrize(
    ("phrase", "kind", "rule"),
    [
        ("I want to kill myself", Kind.CRISIS, "crisis"),
        ("how much B12 should I take", Kind.DOSE, "dose"),
        ("my partner says I stop breathing at night", Kind.RED_FLAG, "breathing"),
        ("numb feet", Kind.RED_FLAG, "nerves"),
        ("what should a vegan eat for B12", Kind.FOOD, "food"),
        ("I cannot sleep for weeks, how much B12 should I take?", Kind.RED_FLAG, "long-insomnia"),
        ("does melatonin help me sleep", Kind.SLEEP, "melatonin"),
        ("hello", Kind.OTHER, ""),
    ],
)
def test_the_issues_examples(rules: TriageRules, phrase: str, kind: Kind, rule: str) -> None:
    verdict = rules.classify(phrase)
    assert (verdict.kind, verdict.rule) == (kind, rule)


def test_crisis_wins_and_the_other_classes_are_kept(rules: TriageRules) -> None:
    verdict = rules.classify("I want to die, how much B12 should I take")
    assert verdict.kind is Kind.CRISIS and Kind.DOSE in verdict.also
    insomnia = rules.classify("I cannot sleep for weeks, how much B12 should I take?")
    assert insomnia.kind is Kind.RED_FLAG and Kind.DOSE in insomnia.also


def test_food_questions_name_their_diet(rules: TriageRules) -> None:
    assert rules.classify("what should a vegan eat for B12").diet == "vegan"
    assert rules.classify("I'm vegetarian, where do I get B12?").diet == "vegetarian"
    assert rules.classify("foods rich in b12").diet is None


@pytest.mark.parametrize("text", [None, "", "   ", "😀😀", "!!!"])
def test_nothing_to_read_is_other(rules: TriageRules, text: str | None) -> None:
    assert rules.classify(text) == OTHER
    assert not rules.is_crisis(text)


# --------------------------------------------------------------------------------------------
# Crisis never reaches the generic reply


@pytest.mark.parametrize("kind", [kind for kind in Kind if kind is not Kind.OTHER])
def test_the_generic_reply_refuses_anything_but_other(content: Content, kind: Kind) -> None:
    with pytest.raises(ValueError, match="only for 'other'"):
        content.render_unknown(Triage(kind, "x"))


def test_crisis_text_can_never_reach_the_generic_reply(
    content: Content, rules: TriageRules
) -> None:
    """Every crisis phrase, in every typing variation and for every country, plans the crisis
    message with no buttons — never "Sorry, I didn't understand"."""
    generic = content.render_unknown(OTHER)
    phrases = [*CRISIS_PHRASES, *(p for kind, p in HELD_OUT if kind is Kind.CRISIS)]
    countries = [None, "DE", "US", "GB", "FR"]
    checked = 0
    for phrase in phrases:
        for variant in perturbations(phrase):
            for country in countries:
                planned = plan_reply(rules.classify(variant), content, country=country)
                assert planned.kind is Kind.CRISIS, variant
                assert planned.html == content.render_crisis(country)
                assert planned.html != generic and planned.page is Page.NONE
                checked += 1
    assert checked >= 40 * 5


def test_plan_reply_by_class(content: Content) -> None:
    red = plan_reply(content.triage.classify("numb feet"), content)
    assert "worth seeing a doctor" in visible_text(red.html) and "/doctor" in red.html
    assert "(NIH ODS)" in visible_text(red.html)
    dose = plan_reply(content.triage.classify("how much B12 should I take"), content)
    assert not re.search(r"\d", visible_text(dose.html).replace("B12", ""))
    food = plan_reply(content.triage.classify("what should a vegan eat"), content, diet="omnivore")
    assert (food.page, food.diet) == (Page.FOODS, "vegan")
    sleep = plan_reply(content.triage.classify("does melatonin help"), content)
    assert (sleep.page, sleep.mechanism) == (Page.MECHANISM, 1)
    other = plan_reply(OTHER, content)
    assert other.html == content.render_unknown(OTHER)


def test_an_open_prompt_yields_only_to_something_triage_understood() -> None:
    assert prompt_yields_to_triage(Triage(Kind.RED_FLAG, "breathing"))
    assert not prompt_yields_to_triage(OTHER)


# --------------------------------------------------------------------------------------------
# Crisis lines by country


@pytest.mark.parametrize(
    ("zone", "country", "expected", "absent"),
    [
        ("Europe/Berlin", "DE", ["0800 111 0 111", "112"], ["988", "116 123"]),
        ("America/New_York", "US", ["988", "911"], ["116 123"]),
        ("America/Toronto", "CA", ["988", "911"], ["116 123"]),
        ("Europe/London", "GB", ["116 123", "999"], ["988"]),
        ("Europe/Dublin", "IE", ["116 123", "112 or 999"], ["988"]),
        ("Australia/Sydney", "AU", ["13 11 14", "000"], ["988"]),
        ("Asia/Shanghai", "CN", ["12356", "120 (ambulance) or 110 (police)"], ["988"]),
        ("Asia/Calcutta", "IN", ["988", "116 123", "your local emergency number"], []),
        (
            "UTC+05:30",
            None,
            ["988", "116 123", "13 11 14", "12356", "your local emergency number"],
            [],
        ),
    ],
)
def test_crisis_lines_follow_the_timezones_country(
    content: Content, zone: str, country: str | None, expected: list[str], absent: list[str]
) -> None:
    assert country_for_zone(zone) == country
    message = visible_text(content.render_crisis(country))
    for text in [*expected, "findahelpline.com"]:
        assert text in message, text
    for text in absent:
        assert text not in message, text


def test_the_zone_tables_are_parsed() -> None:
    tab = "# comment\nDE\t+5230+01322\tEurope/Berlin\tmost of Germany\nGB\t+51-00\tEurope/London\n"
    assert parse_zone_tab(tab) == {"Europe/Berlin": "DE", "Europe/London": "GB"}
    assert parse_links("Z Europe/London 0:00 ...\nL Europe/London GB\n") == {"GB": "Europe/London"}
    assert country_for_zone("US/Eastern") == "US"  # a legacy alias, followed to its zone
    assert country_for_zone(None) is None and country_for_zone("Mars/Olympus") is None


# --------------------------------------------------------------------------------------------
# Normalising and the pattern language


@pytest.fixture(scope="module")
def normaliser(rules: TriageRules) -> Normaliser:
    return rules.normaliser


@pytest.mark.parametrize(
    ("typed", "seen"),
    [
        ("I'm SO tired!!!", "im so tired"),
        ("I am tired", "im tired"),
        ("I don’t want to", "i dont want to"),
        ("I do not want to", "i dont want to"),
        ("i wanna dieeeee", "i want to die"),
        ("Ｉ　ａｍ", "im"),
        ("kms", "kil myself"),
        ("suicde", "suicide"),
        ("1000mcg of B-12", "1000 mcg of b12"),
        ("我 不想活 了", "我不想活了"),
        ("sleep 😴 now", "slep now"),
    ],
)
def test_normalising(normaliser: Normaliser, typed: str, seen: str) -> None:
    assert normaliser(typed) == seen


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("kill myself", "i want to kill myself now", True),
        ("kill myself", "i killed myself laughing", False),
        ("want .. die", "i want to just die", True),
        ("want .. die", "i want to eat before i die", False),
        ("cant sleep ... weeks", "i cant sleep well for three long weeks", True),
        ("tingl* .. feet", "tingling in my feet", True),
        ("how much|many b12", "how many b12", True),
        ("my own? life", "my life", True),
        ("# mcg", "500 mcg", True),
        ("# mcg", "lots mcg", False),
        ("自杀", "我想自杀了", True),
    ],
)
def test_the_pattern_language(pattern: str, text: str, matches: bool) -> None:
    regex = re.compile(compile_pattern(pattern, Normaliser()))
    assert bool(regex.search(Normaliser()(text))) is matches


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("", "empty pattern"),
        (".. die", "can't start with '..'"),
        ("die ..", "can't end with '..'"),
        ("die? now", "first word can't be optional"),
        ("kill (myself)", "is not a word"),
        ("i'm sad", "is not a word"),
        ("wanna die", "'wanna' is read as 'want to'"),
        ("i am sad", "'i am' is read as 'im'"),
    ],
)
def test_a_pattern_that_cannot_work_is_explained(pattern: str, problem: str) -> None:
    normaliser = Normaliser(replacements=(("wanna", "want to"), ("i am", "im")))
    with pytest.raises(PatternError, match=re.escape(problem)):
        compile_pattern(pattern, normaliser)


def test_rules_keep_priority_and_names() -> None:
    rules = compile_rules(
        normaliser=Normaliser(),
        crisis=["want to die"],
        look_alikes=["dying to"],
        rules=[(Kind.SLEEP, "any-sleep", ["sleep"]), (Kind.RED_FLAG, "snoring", ["snore"])],
        diets={"vegan": ["vegan"]},
    )
    verdict = rules.classify("I snore in my sleep")
    assert (verdict.kind, verdict.rule, verdict.also) == (
        Kind.RED_FLAG,
        "snoring",
        frozenset({Kind.SLEEP}),
    )
    assert rules.classify("dying to sleep").kind is Kind.SLEEP
    assert rules.classify("dying to sleep, I want to die").kind is Kind.CRISIS  # masked, not vetoed


def test_install_makes_the_module_predicate_follow_the_bot(tmp_path: Path) -> None:
    directory = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, directory)
    path = directory / "safety.toml"
    path.write_text(path.read_text().replace('"noose",', '"noose", "purple elephant",'))
    custom = load_triage_rules(directory)
    assert not triage.is_crisis("purple elephant")
    try:
        triage.install(custom)
        assert triage.is_crisis("purple elephant")
        assert triage.classify("purple elephant").kind is Kind.CRISIS
    finally:
        triage.install(load_triage_rules(CONTENT_DIR))


# --------------------------------------------------------------------------------------------
# safety.toml and sources.toml: broken edits get one clear line


def test_a_broken_pattern_names_its_rule(broken: Callable[[str, str, str], str]) -> None:
    old, new = '"numbness", "tingling", "pins', '"numbness", "tingling ..", "pins'
    message = broken("safety.toml", old, new)
    assert "red_flag 'nerves': pattern 'tingling ..': can't end with '..'" in message


def test_a_pattern_with_a_rewritten_word(broken: Callable[[str, str, str], str]) -> None:
    message = broken("safety.toml", '"suicide*", "suicidal",', '"suicide*", "i wanna die",')
    assert "'wanna' is read as 'want to'" in message


def test_a_red_flag_needs_a_known_source(broken: Callable[[str, str, str], str]) -> None:
    message = broken("safety.toml", 'sources = ["cdc-drowsy-driving"]', 'sources = ["cdc"]')
    assert "red flag 'drowsy-driving': unknown source 'cdc'" in message


def test_the_dose_reply_may_not_give_a_number(broken: Callable[[str, str, str], str]) -> None:
    message = broken("safety.toml", "I can't suggest an amount", "Take 1000 mcg, or")
    assert "no numbers in the dose replies" in message


def test_the_crisis_message_needs_its_lines(broken: Callable[[str, str, str], str]) -> None:
    message = broken("safety.toml", "confidential:\n{lines}", "confidential:")
    assert "crisis message_html must contain {lines}" in message


def test_a_crisis_line_needs_a_country_code(broken: Callable[[str, str, str], str]) -> None:
    message = broken("safety.toml", 'countries = ["DE"]', 'countries = ["Germany"]')
    assert "crisis line #5: countries" in message or "countries" in message


def test_a_sleep_topic_needs_a_real_page(broken: Callable[[str, str, str], str]) -> None:
    message = broken("safety.toml", 'page = "mechanism:melatonin"', 'page = "mechanism:sheep"')
    assert "sleep 'melatonin': page 'mechanism:sheep'" in message


def test_a_source_needs_an_https_url(broken: Callable[[str, str, str], str]) -> None:
    message = broken(
        "sources.toml", 'url = "https://www.nhs.uk/conditions/insomnia/"', 'url = "nhs.uk"'
    )
    assert "source 'nhs-insomnia': url" in message


def test_a_fuzzy_word_must_be_one_long_word(broken: Callable[[str, str, str], str]) -> None:
    message = broken("safety.toml", 'fuzzy = [\n    "suicide",', 'fuzzy = [\n    "kill",')
    assert "normalise fuzzy" in message
