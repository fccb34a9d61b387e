"""Locales: which one a person gets, plural forms, dates, and `sleepbot check-content`'s report
of every way a translation differs from English (missing or extra keys, placeholders)."""

from __future__ import annotations

import shutil
from datetime import date, datetime, time
from pathlib import Path

import pytest

from bot.cli import main
from bot.content import ContentError, load_locales
from bot.i18n import compare_locale, load_catalogue, locale_from_telegram
from tests.catalogue import CONTENT_DIR, EN, ZH


@pytest.mark.parametrize(
    ("code", "locale"),
    [
        ("zh", "zh"),
        ("zh-hans", "zh"),
        ("zh-Hans", "zh"),
        ("zh-cn", "zh"),
        ("zh-CN", "zh"),
        ("zh-sg", "zh"),
        ("zh_CN", "zh"),
        ("zh-hans-cn", "zh"),
        ("zh-hant", "en"),  # Traditional script: the catalogue is Simplified
        ("zh-tw", "en"),
        ("zh-hk", "en"),
        ("en", "en"),
        ("en-GB", "en"),
        ("de", "en"),
        ("zu", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_telegram_language_codes_map_to_a_locale(code: str | None, locale: str) -> None:
    assert locale_from_telegram(code) == locale


def test_plural_forms_follow_each_locales_rule() -> None:
    assert EN.plural("button.pause", 1) == "Pause 1 night"
    assert EN.plural("button.pause", 7) == "Pause 7 nights"
    assert EN.plural("button.pause", 0) == "Pause 0 nights"
    assert ZH.plural("button.pause", 1) == "暂停 1 晚"
    assert ZH.plural("button.pause", 7) == "暂停 7 晚"


def test_dates_and_times_are_written_per_locale() -> None:
    friday = datetime(2026, 11, 27, 12, 0)
    assert EN.day_and_time(friday) == "Fri 27 Nov 12:00"
    assert ZH.day_and_time(friday) == "11月27日 周五 12:00"
    assert EN.long_date(date(2026, 11, 29)) == "29 November 2026"
    assert ZH.long_date(date(2026, 11, 29)) == "2026年11月29日"
    assert EN.relative_day(friday, date(2026, 11, 26)) == "tomorrow"
    assert ZH.relative_day(friday, date(2026, 11, 27)) == "今天"
    assert EN.clock(time(7, 5)) == ZH.clock(time(7, 5)) == "07:05"
    assert ZH.offset(90) == "就寝前 1 小时 30 分钟"


def test_html_messages_escape_what_they_are_given() -> None:
    assert EN.text("setup.timezone_chosen_html", timezone="<b>&") == (
        "Timezone: <b>&lt;b&gt;&amp;</b>"
    )
    assert EN.text("problem.time_range", typed="<b>") == (
        "<b> is not a time of day. Use 00:00–23:59, e.g. 22:30."
    )  # plain text: escaped by whoever sends it with a parse mode


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    directory = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, directory)
    return directory


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"test setup: {old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_shipped_locales_mirror_english() -> None:
    assert compare_locale(CONTENT_DIR, CONTENT_DIR / "zh") == []


def test_a_missing_key_is_reported(copy: Path) -> None:
    _edit(copy / "zh" / "ui.toml", 'erase_yes = "是，删除"\n', "")
    problems = compare_locale(copy, copy / "zh")
    assert problems == [f"{copy / 'zh' / 'ui.toml'}: missing key 'button.erase_yes'"]


def test_an_extra_key_is_reported(copy: Path) -> None:
    _edit(copy / "zh" / "messages.toml", 'unknown = "', 'unknwon = "x"\nunknown = "')
    problems = compare_locale(copy, copy / "zh")
    assert problems == [f"{copy / 'zh' / 'messages.toml'}: extra key 'unknwon' (not in English)"]


def test_a_placeholder_mismatch_is_reported(copy: Path) -> None:
    _edit(copy / "zh" / "ui.toml", "时区已设为 <b>{timezone}</b>", "时区已设为 <b>{zone}</b>")
    _edit(copy / "zh" / "reminders.toml", "\n{meal}\n", "\n{meals}\n")
    problems = compare_locale(copy, copy / "zh")
    assert problems == [
        f"{copy / 'zh' / 'reminders.toml'}: 'reminder[0].text_html' placeholders differ from "
        "English: missing {meal}; unknown {meals}",
        f"{copy / 'zh' / 'ui.toml'}: 'setup.timezone_set_html' placeholders differ from "
        "English: missing {timezone}; unknown {zone}",
    ]


def test_a_missing_file_and_a_missing_list_item_are_reported(copy: Path) -> None:
    (copy / "zh" / "tips.toml").unlink()
    article = copy / "zh" / "article.toml"
    text = article.read_text(encoding="utf-8")
    article.write_text(text[: text.rindex("[[mechanism]]")], encoding="utf-8")
    problems = compare_locale(copy, copy / "zh")
    assert f"{copy / 'zh' / 'tips.toml'}: missing file (translate {copy / 'tips.toml'})" in problems
    assert f"{copy / 'zh' / 'article.toml'}: 'mechanism' has 4 items, English has 5" in problems


def test_plural_forms_must_match_the_locales_rule(copy: Path) -> None:
    _edit(
        copy / "zh" / "ui.toml",
        'pause = { other = "暂停 {count} 晚" }',
        'pause = { one = "暂停 1 晚", other = "暂停 {count} 晚" }',
    )
    with pytest.raises(ContentError, match=r"button\.pause: the plural rule 'other' needs exactly"):
        load_catalogue(copy / "zh", "zh")
    # A different plural rule is no mismatch: the placeholders are compared, not the forms.
    assert compare_locale(copy, copy / "zh") == []


def test_start_up_refuses_an_incomplete_locale(copy: Path) -> None:
    _edit(copy / "zh" / "ui.toml", 'erase_yes = "是，删除"\n', "")
    with pytest.raises(ContentError, match=r"missing key 'button\.erase_yes'"):
        load_locales(copy)


def test_check_content_lists_every_difference_for_every_locale(
    copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONTENT_DIR", str(copy))
    assert main(["check-content"]) == 0
    assert f"{copy / 'zh'}: OK — zh" in capsys.readouterr().out
    _edit(copy / "zh" / "ui.toml", 'erase_yes = "是，删除"\n', "")
    _edit(copy / "zh" / "ui.toml", 'cleared = "已清除"', 'cleared = "已清除"\nclearde = "x"')
    _edit(copy / "zh" / "ui.toml", "{bedtime}。其他", "{time}。其他")
    assert main(["check-content"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert errors == [
        f"sleepbot: content error: {copy / 'zh' / 'ui.toml'}: missing key 'button.erase_yes'",
        f"sleepbot: content error: {copy / 'zh' / 'ui.toml'}: extra key 'setup.clearde' "
        "(not in English)",
        f"sleepbot: content error: {copy / 'zh' / 'ui.toml'}: "
        "'setup.weekend_then_weekday_html' placeholders differ from English: "
        "missing {bedtime}; unknown {time}",
    ]
