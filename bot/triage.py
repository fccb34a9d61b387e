"""Which kind of message is this free text? Crisis first, then red flags, dose, food and sleep.

Pure and deterministic: no Telegram, no network, no language model. The patterns are data
(content/safety.toml) compiled once by `compile_rules`; this module only knows how to read them.

Text and patterns go through the same `Normaliser`, so editors write plain words and the
matching still survives what people type: Unicode look-alikes and full-width letters (NFKC),
capitals, punctuation, emoji, stretched letters ("dieeee"), "i'm"/"im"/"i am", common
misspellings, and no punctuation at all. Letter runs are collapsed on both sides ("kill" and
"kil" both become "kil"), so a doubled or dropped double letter never decides a match.

Crisis detection is tuned for recall: a false alarm costs one unneeded, kind message; a miss
could cost a life. `is_crisis` is what other parts of the bot (e.g. incoming flood control)
call to make sure such a message is never dropped, deduplicated or rate-limited away.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from pathlib import Path

GAP_WORDS: Final = 3
"""How many words `..` may skip in a pattern ("want .. die": "want to just die")."""
LONG_GAP_WORDS: Final = 6
"""How many words `...` may skip ("cant sleep ... weeks": "can't sleep well for three weeks")."""
MIN_FUZZY_LENGTH: Final = 5
"""Only words this long are corrected by one typo: shorter ones collide with real words."""

_APOSTROPHES: Final = re.compile(r"['’‘`´ʼʻ]")
_NOT_WORD: Final = re.compile(r"[\W_]+")
_DIGIT_THEN_LETTER: Final = re.compile(r"(?<=\d)(?=[^\W\d_])")
_LETTER_RUN: Final = re.compile(r"([a-z])\1+")
_CJK: Final = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_CHAR: Final = re.compile(f"[{_CJK}]")
_SPACE_BETWEEN_CJK: Final = re.compile(f"(?<=[{_CJK}]) (?=[{_CJK}])")
_PATTERN_WORD: Final = re.compile(r"^[^\W_]+\*?\??$")


class Kind(StrEnum):
    """The classes, in priority order: where two match, the earlier one wins."""

    CRISIS = "crisis"
    RED_FLAG = "red_flag"
    DOSE = "dose"
    FOOD = "food"
    SLEEP = "sleep"
    OTHER = "other"


PRIORITY: Final[tuple[Kind, ...]] = tuple(Kind)


@dataclass(frozen=True)
class Triage:
    """The verdict on one message.

    `rule` names what matched: the red flag's id (for its one-line "why"), the sleep topic, the
    crisis rule... ("" for other). `also` holds the other classes that matched, so e.g. a red
    flag reply can add a word about doses. `diet` is a diet the text named ("vegan"), if any.
    """

    kind: Kind
    rule: str = ""
    also: frozenset[Kind] = frozenset()
    diet: str | None = None


OTHER: Final = Triage(Kind.OTHER)


class PatternError(ValueError):
    """A pattern in content that can't work; the message names it and says how to fix it."""


# --------------------------------------------------------------------------------------------
# Normalising


def _skeleton(word: str) -> str:
    """Latin letter runs collapsed to one letter: 'sleeeep' and 'slep' both become 'slep'."""
    return _LETTER_RUN.sub(r"\1", word)


def _basic(text: str) -> str:
    """NFKC, casefold, apostrophes dropped, punctuation/emoji to spaces, letter runs collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _APOSTROPHES.sub("", text)
    text = _DIGIT_THEN_LETTER.sub(" ", text)  # "1000mcg" → "1000 mcg" (but "b12" stays)
    text = _NOT_WORD.sub(" ", text)
    return _skeleton(" ".join(text.split()))


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _within_one_edit(word: str, target: str) -> bool:
    """Damerau–Levenshtein distance ≤ 1 (one insertion, deletion, substitution or swap)."""
    if word == target:
        return True
    if abs(len(word) - len(target)) > 1:
        return False
    if len(word) == len(target):
        diffs = [i for i, (a, b) in enumerate(zip(word, target, strict=True)) if a != b]
        if len(diffs) == 1:
            return True
        if len(diffs) == 2 and diffs[1] == diffs[0] + 1:
            i = diffs[0]
            return word[i] == target[i + 1] and word[i + 1] == target[i]
        return False
    shorter, longer = sorted((word, target), key=len)
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


@dataclass(frozen=True)
class Normaliser:
    """Turns what people type into the canonical text the patterns are written against.

    `replacements` are whole-word phrase rewrites ("i am" → "im", "wanna" → "want to",
    "kms" → "kill myself"); `fuzzy_words` are long key words corrected when one typo away
    ("suicde" → "suicide").
    """

    replacements: tuple[tuple[str, str], ...] = ()
    fuzzy_words: frozenset[str] = frozenset()
    _rewrite: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _targets: dict[str, str] = field(init=False, repr=False, compare=False)
    _fuzzy: frozenset[str] = field(init=False, repr=False, compare=False)
    _near: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Read the key words as the text will be read ("numbness" → "numbnes"), and index them
        # by themselves and every one-letter deletion: a word one edit away shares a key with
        # its key word, so correcting costs a few look-ups per word, not one test per key word.
        fuzzy = frozenset(_basic(word) for word in self.fuzzy_words)
        near: dict[str, set[str]] = {}
        for word in fuzzy:
            for key in (word, *_deletions(word)):
                near.setdefault(key, set()).add(word)
        object.__setattr__(self, "_fuzzy", fuzzy)
        object.__setattr__(self, "_near", {key: tuple(sorted(v)) for key, v in near.items()})
        # One pass for all rewrites, longest source first ("i am not" wins over "i am").
        targets = {_basic(source): _basic(target) for source, target in self.replacements}
        sources = sorted(targets, key=len, reverse=True)
        pattern = "|".join(re.escape(source) for source in sources)
        rewrite = re.compile(rf"(?<!\S)(?:{pattern})(?!\S)") if sources else None
        object.__setattr__(self, "_rewrite", rewrite)
        object.__setattr__(self, "_targets", targets)

    def __call__(self, text: str) -> str:
        text = _basic(text)
        if self._rewrite is not None:
            text = self._rewrite.sub(lambda match: self._targets[match.group(0)], text)
        if self._fuzzy:
            seen: dict[str, str] = {}  # per message: long messages repeat their words
            words = text.split()
            text = " ".join(
                seen[word] if word in seen else seen.setdefault(word, self._correct(word))
                for word in words
            )
        return _SPACE_BETWEEN_CJK.sub("", text)

    def _correct(self, word: str) -> str:
        if len(word) < MIN_FUZZY_LENGTH or word in self._fuzzy:
            return word
        candidates = {
            target
            for key in (word, *_deletions(word))
            for target in self._near.get(key, ())
            if _within_one_edit(word, target)
        }
        # Sorted, so a typo one edit away from two key words is always read the same way.
        return min(candidates) if candidates else word


# --------------------------------------------------------------------------------------------
# Patterns


def _element_regex(element: str, *, first: bool) -> str:
    """One space-separated element of a pattern as a regex fragment (with its leading space)."""
    lead = "" if first else " "
    if element in {"..", "..."}:
        if first:
            raise PatternError("can't start with '..' (a gap needs a word before it)")
        words = GAP_WORDS if element == ".." else LONG_GAP_WORDS
        return rf"(?: \S+){{0,{words}}}"
    optional = element.endswith("?") and element != "?"
    body = element.removesuffix("?") if optional else element
    choices = []
    for choice in body.split("|"):
        if choice == "#":
            choices.append(r"\d+")
            continue
        if not _PATTERN_WORD.fullmatch(choice) or choice.endswith("?"):
            raise PatternError(
                f"{choice!r} is not a word; use words, a|b, word*, word?, # and .. (see README)"
            )
        prefix = choice.endswith("*")
        word = _skeleton(choice.removesuffix("*"))
        choices.append(re.escape(word) + (r"\S*" if prefix else ""))
    alternatives = choices[0] if len(choices) == 1 else f"(?:{'|'.join(choices)})"
    if optional:
        if first:
            raise PatternError("the first word can't be optional; start with a required one")
        return f"(?: {alternatives})?"
    return lead + alternatives


def compile_pattern(pattern: str, normaliser: Normaliser) -> str:
    """A pattern as a regex over normalised text; PatternError says what is wrong with it.

    Syntax: words separated by spaces, matched as whole words in order. `a|b` is either word,
    `word*` any word starting so, `word?` an optional word, `#` any number, `..` up to three
    words in between, `...` up to six. A pattern containing Chinese characters is matched as it
    is, anywhere in the text (Chinese has no spaces between words).
    """
    body, at_word_start = _pattern_body(pattern, normaliser)
    return rf"(?<!\S){body}" if at_word_start else body


def _pattern_body(pattern: str, normaliser: Normaliser) -> tuple[str, bool]:
    """The regex without its leading word-boundary check, and whether it needs one."""
    stripped = pattern.strip()
    if not stripped:
        raise PatternError("empty pattern")
    if _CJK_CHAR.search(stripped):
        return re.escape(_chinese_literal(stripped, normaliser)), False
    elements = stripped.casefold().split()
    if elements[-1] in {"..", "..."}:
        raise PatternError("can't end with '..' (a gap needs a word after it)")
    body = "".join(
        _element_regex(element, first=index == 0) for index, element in enumerate(elements)
    )
    _check_against_normaliser(elements, normaliser)
    return rf"{body}(?!\S)", True


def _chinese_literal(pattern: str, normaliser: Normaliser) -> str:
    """A Chinese pattern as the text it matches: read like typed text, spaces dropped."""
    literal = normaliser(pattern).replace(" ", "")
    if not literal or not _CJK_CHAR.search(literal):
        raise PatternError("a Chinese pattern must keep its Chinese characters")
    return literal


def _literal_trie(literals: Iterable[str]) -> str:
    """One regex for many literals, branching one character at a time ("想死|想消失" becomes
    "想(?:死|消失)"), so a position is rejected after one look at its first character instead
    of one try per literal: hundreds of Chinese patterns then cost about what a few do."""
    trie: dict[str, dict[str, Any]] = {}
    for literal in literals:
        node = trie
        for char in literal:
            node = node.setdefault(char, {})
        node[""] = {}

    def branch(node: dict[str, dict[str, Any]]) -> str:
        children = [re.escape(char) + branch(node[char]) for char in sorted(node) if char]
        if not children:
            return ""
        alternatives = children[0] if len(children) == 1 else f"(?:{'|'.join(children)})"
        if "" not in node:
            return alternatives
        return f"(?:{alternatives})?" if len(children) == 1 else f"{alternatives}?"

    # The look-ahead rejects a position whose character starts no literal in one step.
    first = "".join(re.escape(char) for char in sorted(trie))
    return f"(?=[{first}]){branch(trie)}"


def _check_against_normaliser(elements: Sequence[str], normaliser: Normaliser) -> None:
    """A word the normaliser rewrites in the text (wanna → want to) can never match: say so."""
    words: list[list[str] | None] = [
        None
        if element in {"..", "..."}
        else [
            word
            for word in (c.removesuffix("?").removesuffix("*") for c in element.split("|"))
            if word and word != "#"
        ]
        for element in elements
    ]
    for choices in words:
        for word in choices or ():
            seen_as = normaliser(word)
            if seen_as != _skeleton(word):
                raise PatternError(
                    f"'{word}' is read as '{seen_as}' in what people type; write '{seen_as}'"
                )
    for left, right in itertools.pairwise(words):
        for a in left or ():
            for b in right or ():
                phrase = f"{a} {b}"
                seen_as = normaliser(phrase)
                if seen_as != _skeleton(phrase):
                    raise PatternError(
                        f"'{phrase}' is read as '{seen_as}' in what people type; write '{seen_as}'"
                    )


@dataclass(frozen=True)
class Rule:
    """One named rule: its patterns compiled into one regex (any of them matches)."""

    kind: Kind
    id: str
    regex: re.Pattern[str]

    def search(self, text: str) -> bool:
        return self.regex.search(text) is not None


def compile_rule(kind: Kind, rule_id: str, patterns: Iterable[str], normaliser: Normaliser) -> Rule:
    """All of a rule's patterns in one regex; PatternError names the failing pattern."""
    at_word_start: list[str] = []
    anywhere: list[str] = []
    for pattern in patterns:
        try:
            body, bounded = _pattern_body(pattern, normaliser)
            if bounded:
                at_word_start.append(f"(?:{body})")
            else:
                anywhere.append(_chinese_literal(pattern.strip(), normaliser))
        except PatternError as error:
            raise PatternError(f"pattern {pattern!r}: {error}") from None
    if not at_word_start and not anywhere:
        raise PatternError("needs at least one pattern")
    # One word-boundary check in front of all the word patterns: the regex then rejects every
    # position inside a word at once instead of once per pattern (long messages stay cheap).
    branches = [rf"(?<!\S)(?:{'|'.join(at_word_start)})"] if at_word_start else []
    if anywhere:
        branches.append(_literal_trie(anywhere))
    return Rule(kind, rule_id, re.compile("|".join(branches)))


@dataclass(frozen=True)
class TriageRules:
    """Everything `classify` needs, compiled; build it with `compile_rules`."""

    normaliser: Normaliser
    crisis: Rule
    look_alikes: Rule | None
    rules: tuple[Rule, ...]  # red flags, dose, food, sleep: each kind's rules in content order
    diets: tuple[Rule, ...]  # Rule.id is the diet

    def classify(self, text: str | None) -> Triage:
        """The class of `text` (None or empty: other) and the rule that decided it."""
        normalised = self.normaliser(text or "")
        if not normalised:
            return OTHER
        if self._is_crisis(normalised):
            matched = frozenset(rule.kind for rule in self.rules if rule.search(normalised))
            return Triage(Kind.CRISIS, "crisis", matched)
        first: Rule | None = None
        kinds: set[Kind] = set()
        for rule in self.rules:
            if rule.search(normalised):
                kinds.add(rule.kind)
                if first is None or PRIORITY.index(rule.kind) < PRIORITY.index(first.kind):
                    first = rule
        if first is None:
            return OTHER
        diet = next((rule.id for rule in self.diets if rule.search(normalised)), None)
        return Triage(first.kind, first.id, frozenset(kinds - {first.kind}), diet)

    def is_crisis(self, text: str | None) -> bool:
        """True when `text` may express suicidal thoughts or self-harm (false alarms allowed)."""
        normalised = self.normaliser(text or "")
        return bool(normalised) and self._is_crisis(normalised)

    def _is_crisis(self, normalised: str) -> bool:
        if self.crisis.search(normalised):
            if self.look_alikes is None:
                return True
            # Mask figures of speech ("dying to", "killing it") and look again: masking, not a
            # veto, so "I'm dying to sleep and I want to die" is still a crisis.
            masked = self.look_alikes.regex.sub(" ~ ", normalised)
            return self.crisis.search(" ".join(masked.split()))
        return False


def compile_rules(
    *,
    normaliser: Normaliser,
    crisis: Sequence[str],
    look_alikes: Sequence[str],
    rules: Sequence[tuple[Kind, str, Sequence[str]]],
    diets: Mapping[str, Sequence[str]],
) -> TriageRules:
    """Compile content's patterns; PatternError names the rule and pattern that can't work."""

    def build(kind: Kind, rule_id: str, patterns: Sequence[str]) -> Rule:
        try:
            return compile_rule(kind, rule_id, patterns, normaliser)
        except PatternError as error:
            raise PatternError(f"{kind.value} {rule_id!r}: {error}") from None

    ordered = sorted(rules, key=lambda item: PRIORITY.index(item[0]))  # stable within a kind
    if any(kind in {Kind.CRISIS, Kind.OTHER} for kind, _, _ in ordered):
        raise PatternError("crisis patterns have their own list; 'other' needs none")
    return TriageRules(
        normaliser=normaliser,
        crisis=build(Kind.CRISIS, "crisis", crisis),
        look_alikes=build(Kind.CRISIS, "look_alikes", look_alikes) if look_alikes else None,
        rules=tuple(build(kind, rule_id, patterns) for kind, rule_id, patterns in ordered),
        diets=tuple(build(Kind.FOOD, diet, patterns) for diet, patterns in diets.items()),
    )


# --------------------------------------------------------------------------------------------
# The rules the running bot uses, for callers without a Content at hand (e.g. flood control)

_installed: TriageRules | None = None


def install(rules: TriageRules) -> None:
    """Make `rules` the default for `classify`/`is_crisis` (build_app installs its content's)."""
    global _installed
    _installed = rules


@functools.cache
def _shipped_rules(directory: Path | None = None) -> TriageRules:
    from bot.content import default_content_dir, load_triage_rules

    return load_triage_rules(directory or default_content_dir())


def default_rules() -> TriageRules:
    """The installed rules, else the shipped content/safety.toml (loaded once)."""
    return _installed if _installed is not None else _shipped_rules()


def classify(text: str | None, rules: TriageRules | None = None) -> Triage:
    """Classify free text with `rules` (default: the bot's own)."""
    return (rules or default_rules()).classify(text)


def is_crisis(text: str | None, rules: TriageRules | None = None) -> bool:
    """The predicate for anything that might drop, merge or delay a message: never do that
    to a message for which this is True."""
    return (rules or default_rules()).is_crisis(text)
