"""content/zh/ mirrors content/ exactly, is valid, and keeps the article's sentences and hedges.

Standalone on purpose: the mirror checks read the TOML with tomllib and compare it with the
English file value by value (data must be copied as it is), beyond what `sleepbot
check-content` compares (keys, items and placeholders; tests/test_i18n.py). The loader is
still used once, on the zh directory, because it renders and checks every message the bot
could send from it (valid Telegram HTML, at most 4096 characters).
"""

from __future__ import annotations

import re
import shutil
import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from bot.content import Content, ContentError, load_content
from bot.content_schema import PLACEHOLDER
from bot.telegram_html import MAX_MESSAGE_LENGTH, check_telegram_html, telegram_length, visible_text
from tests.article_fidelity_zh import CORE_HEDGES, compare_section, missing_hedges, sentences_of

CONTENT_DIR: Final = Path(__file__).resolve().parent.parent / "content"
ZH_DIR: Final = CONTENT_DIR / "zh"
FILES: Final = (
    "article.toml",
    "foods.toml",
    "tips.toml",
    "reminders.toml",
    "messages.toml",
    "safety.toml",
    "sources.toml",
)
DATA_KEYS: Final = frozenset({"id", "slug", "kind", "source", "url", "page"})
"""String values that are data, not words: copied verbatim. Every string inside a list is data
too (aliases, diets, countries, source ids, triage patterns): no list holds text."""
_TAG: Final = re.compile(r"</?[A-Za-z][^>]*>")
_DIGITS: Final = re.compile(r"\d+")
_WEB_SITE: Final = re.compile(r"[\w-]+(?:\.[\w-]+)+")


def _load(directory: Path, name: str) -> dict[str, Any]:
    with (directory / name).open("rb") as file:
        return tomllib.load(file)


@pytest.fixture(scope="module")
def zh_content() -> Content:
    return load_content(ZH_DIR)


@pytest.fixture(scope="module")
def en_content() -> Content:
    return load_content(CONTENT_DIR)


def is_html(file: str, key: str) -> bool:
    return key.endswith("_html") or file == "messages.toml"


def text_pairs(file: str) -> Iterator[tuple[str, str, str, str]]:
    """(path, key, English, Chinese) for every text value; mirror_problems checks the rest."""
    yield from _pairs(file, _load(CONTENT_DIR, file), _load(ZH_DIR, file), file, "")


def _pairs(file: str, en: Any, zh: Any, path: str, key: str) -> Iterator[tuple[str, str, str, str]]:
    if isinstance(en, dict) and isinstance(zh, dict):
        for name in en.keys() & zh.keys():
            yield from _pairs(file, en[name], zh[name], f"{path}.{name}", name)
    elif isinstance(en, list) and isinstance(zh, list):
        for index, (a, b) in enumerate(zip(en, zh, strict=False)):
            if isinstance(a, dict):
                yield from _pairs(file, a, b, f"{path}[{index}]", key)
    elif isinstance(en, str) and isinstance(zh, str) and key not in DATA_KEYS:
        yield path, key, en, zh


def mirror_problems(en: Any, zh: Any, path: str, key: str = "") -> list[str]:
    """How zh departs from en in structure or data: tables, keys, lengths, ids, numbers..."""
    if type(en) is not type(zh):
        return [f"{path}: {type(zh).__name__} where English has {type(en).__name__}"]
    if isinstance(en, dict):
        problems = [f"{path}: missing key {name!r}" for name in en.keys() - zh.keys()]
        problems += [f"{path}: extra key {name!r}" for name in zh.keys() - en.keys()]
        for name in en.keys() & zh.keys():
            problems += mirror_problems(en[name], zh[name], f"{path}.{name}", name)
        return problems
    if isinstance(en, list):
        if len(en) != len(zh):
            return [f"{path}: {len(zh)} items where English has {len(en)}"]
        if all(isinstance(item, dict) for item in en):
            return [
                problem
                for index, (a, b) in enumerate(zip(en, zh, strict=True))
                for problem in mirror_problems(a, b, f"{path}[{index}]", key)
            ]
        return [] if en == zh else [f"{path}: data differs from English ({zh!r} vs {en!r})"]
    if isinstance(en, str) and key not in DATA_KEYS:
        return [] if bool(en) == bool(zh) else [f"{path}: empty in one language only"]
    return [] if en == zh else [f"{path}: {zh!r} where English has {en!r} (data: copy it)"]


# --------------------------------------------------------------------------------------------
# The mirror


@pytest.mark.parametrize("file", FILES)
def test_zh_file_mirrors_the_english_one(file: str) -> None:
    assert mirror_problems(_load(CONTENT_DIR, file), _load(ZH_DIR, file), file) == []


@pytest.mark.parametrize("file", FILES)
def test_zh_text_keeps_every_placeholder(file: str) -> None:
    problems = [
        f"{path}: {sorted(Counter(PLACEHOLDER.findall(zh)).elements())} vs English "
        f"{sorted(Counter(PLACEHOLDER.findall(en)).elements())}"
        for path, _, en, zh in text_pairs(file)
        if Counter(PLACEHOLDER.findall(en)) != Counter(PLACEHOLDER.findall(zh))
    ]
    assert problems == []


@pytest.mark.parametrize("file", FILES)
def test_zh_html_is_valid_with_the_english_tags(file: str) -> None:
    """Same tags, attributes (link targets) and order; every HTML field valid on its own."""
    checked = 0
    for path, key, en, zh in text_pairs(file):
        if not is_html(file, key) or not zh:
            continue
        check_telegram_html(zh)
        assert _TAG.findall(zh) == _TAG.findall(en), path
        checked += 1
    assert checked > 0 or file == "sources.toml"


@pytest.mark.parametrize("file", FILES)
def test_zh_plain_text_is_chinese(file: str) -> None:
    """A text value left in English is a missed translation (names and web sites aside)."""
    untranslated = [
        path
        for path, key, en, zh in text_pairs(file)
        if zh == en
        and key != "short"  # "NHS", "Samaritans": the names shown next to facts
        and not _WEB_SITE.fullmatch(zh)
        # {placeholders} are not words: a template of placeholders only is the same in zh
        and re.search(r"[a-z]{4,}", PLACEHOLDER.sub("", visible_text(zh)))
    ]
    assert untranslated == []


def test_crisis_lines_keep_their_numbers() -> None:
    en = _load(CONTENT_DIR, "safety.toml")["crisis"]["line"]
    zh = _load(ZH_DIR, "safety.toml")["crisis"]["line"]
    for a, b in zip(en, zh, strict=True):
        for field in ("emergency", "text_html"):
            assert _DIGITS.findall(b[field]) == _DIGITS.findall(a[field]), (a["countries"], field)


def test_the_cn_crisis_line_and_its_source() -> None:
    for directory in (CONTENT_DIR, ZH_DIR):
        lines = _load(directory, "safety.toml")["crisis"]["line"]
        china = [line for line in lines if line["countries"] == ["CN"]]
        assert len(china) == 1 and "<b>12356</b>" in china[0]["text_html"]
        assert _DIGITS.findall(china[0]["emergency"]) == ["120", "110"]
        sources = {s["id"]: s for s in _load(directory, "sources.toml")["source"]}
        assert sources[china[0]["source"]]["url"] == "https://www.nhc.gov.cn/"


# --------------------------------------------------------------------------------------------
# What the bot would send


def test_every_zh_message_is_valid_and_fits(zh_content: Content) -> None:
    """load_content already refuses anything else; this says so, message by message."""
    messages = list(zh_content.rendered_messages())
    assert len(messages) > 100
    for _, where, html in messages:
        check_telegram_html(html)
        assert 0 < telegram_length(html) <= MAX_MESSAGE_LENGTH, where


def test_zh_meal_ideas_keep_their_safety_words(zh_content: Content) -> None:
    """B12 source named in every idea; vegan ones fortified; liver ones warn about pregnancy."""
    for idea in zh_content.meal_ideas:
        assert idea.b12.strip(), idea.id
        if "vegan" in idea.diets:
            assert "添加了 B12" in idea.b12 or "强化" in idea.b12, idea.id
        if "肝" in idea.name + idea.text_html:
            assert "孕" in idea.caution_html and idea.caution_sources, idea.id
    vegan = zh_content.foods_page.diet["vegan"]
    assert "植物性食物不含维生素 B12，除非额外添加（强化）" in visible_text(vegan.intro_html)
    assert "医生" in vegan.note_html and vegan.note_sources == ("nih-ods-b12-consumer",)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "两汤匙添加了 B12 的营养酵母（请看标签）",
            "两汤匙营养酵母",
            "meal 'pasta-nutritional-yeast': a vegan idea's b12 must be a fortified food",
        ),
        (
            'caution_html = "怀孕期间不要吃',
            'caution_html = "每周最多吃一次。" # "',
            "meal 'liver-onions': an idea with liver needs a caution_html about pregnancy",
        ),
    ],
    ids=["vegan-b12-not-fortified", "liver-without-pregnancy"],
)
def test_the_loader_checks_chinese_meal_ideas_too(
    tmp_path: Path, old: str, new: str, problem: str
) -> None:
    """The same safety rules as in English: 强化 / 添加了 B12 for vegan B12, 孕 for liver."""
    directory = tmp_path / "zh"
    shutil.copytree(ZH_DIR, directory)
    load_content(directory)  # the Chinese words are understood as they stand...
    foods = directory / "foods.toml"
    text = foods.read_text(encoding="utf-8")
    assert old in text
    foods.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ContentError, match=re.escape(problem)):  # ...and missed when gone
        load_content(directory)


def test_zh_dose_replies_name_no_amount(zh_content: Content) -> None:
    """The loader rejects digits; Chinese numerals are words it can't see, so check those too."""
    spec = zh_content.safety.spec
    text = visible_text(spec.dose.reply_html + spec.dose_note_html).replace("B12", "")
    assert not re.search(r"\d|[一二三四五六七八九十百千]\s*(?:微克|毫克|片|粒|mcg|mg)", text)


# --------------------------------------------------------------------------------------------
# Fidelity to the article


def test_zh_article_keeps_every_sentence_and_hedge(
    en_content: Content, zh_content: Content
) -> None:
    """Per section: as many sentences as the English, and each aligned sentence as hedged."""
    problems = compare_section("lead", en_content.lead_html, zh_content.lead_html)
    for en, zh in zip(en_content.mechanisms, zh_content.mechanisms, strict=True):
        problems += compare_section(f"mechanism {en.number}", en.body_html, zh.body_html)
    assert [str(problem) for problem in problems] == []


def test_zh_quotations_are_the_zh_article_word_for_word(
    en_content: Content, zh_content: Content
) -> None:
    """A <blockquote> quoting an English article sentence quotes its Chinese sentence."""
    translation: dict[str, str] = {}
    pairs = [(en_content.lead_html, zh_content.lead_html)]
    pairs += [
        (a.body_html, b.body_html)
        for a, b in zip(en_content.mechanisms, zh_content.mechanisms, strict=True)
    ]
    for en, zh in pairs:
        english = sentences_of(en, chinese=False)
        chinese = sentences_of(zh, chinese=True)
        translation.update(zip(english, chinese, strict=True))
    quote = re.compile(r"<blockquote>(.*?)</blockquote>", re.S)
    checked = 0
    for file in ("reminders.toml", "tips.toml"):
        for path, _, en, zh in text_pairs(file):
            for english, chinese in zip(quote.findall(en), quote.findall(zh), strict=True):
                if visible_text(english) in translation:
                    assert visible_text(chinese) == translation[visible_text(english)], path
                    checked += 1
    assert checked >= 5


@pytest.mark.parametrize("file", [name for name in FILES if name != "article.toml"])
def test_zh_restatements_keep_the_articles_hedges(file: str) -> None:
    """Wherever a text says 'may', 'limited', 'still unclear'... the Chinese says it too."""
    problems = [
        f"{path}: {missing}"
        for path, _, en, zh in text_pairs(file)
        for missing in missing_hedges(visible_text(en) if "<" in en else en, zh, CORE_HEDGES)
    ]
    assert problems == []


def test_lists_are_joined_the_way_each_language_writes_them(
    zh_content: Content, en_content: Content
) -> None:
    assert "荤素都吃、吃鱼不吃肉、蛋奶素、纯素" in zh_content.render_diet_unknown("keto")
    assert "omnivore, pescatarian, vegetarian, vegan" in en_content.render_diet_unknown("keto")
