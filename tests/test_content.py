"""content/ loads, renders valid Telegram HTML, rejects broken edits clearly, and stays faithful
to the article."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.capacity import Window
from bot.capacity_plan import windows_from
from bot.content import (
    ARTICLE_SOURCE,
    DIETS,
    MAX_BUTTON_LABEL_LENGTH,
    MIN_MEAL_B12_PERCENT_DV,
    MIN_MEALS_PER_DIET,
    Content,
    ContentError,
    default_content_dir,
    load_content,
)
from bot.telegram_html import (
    MAX_MESSAGE_LENGTH,
    check_telegram_html,
    escape,
    telegram_length,
    visible_text,
)
from bot.triage import OTHER
from tests.article_fidelity import (
    article_lead_sentences,
    article_sentences,
    best_match,
    find_article,
    missing_sentences,
)

CONTENT_DIR = Path(__file__).resolve().parent.parent / "content"
NO_ARTICLE = "shared/source-article.txt not found in any parent directory of the tests"


@pytest.fixture(scope="module")
def content() -> Content:
    return load_content(CONTENT_DIR)


def all_renders(content: Content) -> list[str]:
    """Every message built through the public render_* API."""
    messages = [
        content.render_start(),
        content.render_help(),
        content.render_about(),
        content.render_unknown(OTHER),
        content.render_tips(),
        content.render_doctor(),
        content.render_dose(),
        content.render_crisis(None),
        content.render_mechanism_index(),
    ]
    messages += [content.render_mechanism(m.number) for m in content.mechanisms]
    for diet in DIETS:
        messages += [content.render_foods(diet, i) for i in range(len(content.meals_for(diet)))]
    for reminder in content.reminder_kinds:
        messages.append(content.render_reminder(reminder.kind, None))
        messages.append(content.render_reminder_why(reminder.kind))
    messages += [content.render_reminder("meal", meal) for meal in content.meal_ideas]
    return messages


# --------------------------------------------------------------------------------------------
# The real content


def test_real_content_loads(content: Content) -> None:
    assert [m.number for m in content.mechanisms] == [1, 2, 3, 4, 5]
    assert [m.slug for m in content.mechanisms] == [
        "melatonin",
        "nervous-system",
        "circadian",
        "anemia",
        "special-populations",
    ]
    assert len(content.meal_ideas) >= 14
    assert content.sources.get("nih-ods-b12-consumer").short == "NIH ODS"
    assert {r.kind for r in content.reminder_kinds} == {"meal", "exercise", "wind_down"}


def test_every_rendered_message_is_valid_and_fits(content: Content) -> None:
    messages = all_renders(content)
    messages += [html for _, _, html in content.rendered_messages()]
    for html in messages:
        check_telegram_html(html)
        assert 0 < telegram_length(html) <= MAX_MESSAGE_LENGTH
        assert not re.search(r"\{[a-z_]+\}", html), html


def test_labels_fit_buttons(content: Content) -> None:
    labels = [m.label for m in content.mechanisms] + [r.label for r in content.reminder_kinds]
    for label in labels:
        assert 0 < len(label) <= MAX_BUTTON_LABEL_LENGTH
        assert len(label) <= 24, f"keep button labels short: {label!r}"


@pytest.mark.parametrize(
    ("key", "slug"),
    [
        ("1", "melatonin"),
        (" 3 ", "circadian"),
        ("#2", "nervous-system"),
        ("circadian", "circadian"),
        ("Circadian Rhythm", "circadian"),
        ("circadian_rhythm", "circadian"),
        ("nerves", "nervous-system"),
        ("Nervous system", "nervous-system"),
        ("ANEMIA", "anemia"),
        ("anaemia", "anemia"),
        ("elderly", "special-populations"),
        ("special populations", "special-populations"),
    ],
)
def test_find_mechanism(content: Content, key: str, slug: str) -> None:
    found = content.find_mechanism(key)
    assert found is not None
    assert found.slug == slug


@pytest.mark.parametrize("key", ["", "0", "6", "vitamin", "melatonin secretion extra"])
def test_find_mechanism_unknown(content: Content, key: str) -> None:
    assert content.find_mechanism(key) is None


def test_lookups(content: Content) -> None:
    first = content.meal_ideas[0]
    assert content.meal(first.id) == first
    assert content.meal("no-such-meal") is None
    assert content.reminder_kind("wind_down").default_offset_minutes == 60
    assert content.reminder_kind("exercise").default_offset_minutes == 180
    assert content.reminder_kind("meal").default_offset_minutes == 240
    with pytest.raises(KeyError):
        content.reminder_kind("nap")
    with pytest.raises(KeyError):
        content.render_mechanism(6)


def test_mechanism_page_has_title_body_and_caveat(content: Content) -> None:
    page = content.render_mechanism(3)
    assert page.startswith("<b>3. ")
    assert content.mechanisms[2].body_html in page
    assert content.caveat_html in page


def test_caveat_footer_on_start_foods_and_mechanisms(content: Content) -> None:
    pages = [content.render_start(), *(content.render_foods(diet, 0) for diet in DIETS)]
    pages += [content.render_mechanism(n) for n in range(1, 4)]
    for page in pages:
        assert page.count(content.caveat_html) == 1
    assert "/doctor" in content.caveat_html


def test_the_caveat_says_what_the_article_says_once_per_screen(content: Content) -> None:
    """The footer limits *supplementing* (not anemic) and *blind supplementation* (healthy);
    pages 4 and 5 quote the article's own caveat, so they carry no footer on top of it."""
    footer = visible_text(content.caveat_html).lower()
    assert "supplementing" in footer and "not anemic" in footer and "limited" in footer
    assert "blind supplementation" in footer and "still unclear" in footer
    for number in (4, 5):
        assert content.caveat_html not in content.render_mechanism(number)
    screens = [content.render_start(), content.render_tips(), content.render_foods("vegan", 0)]
    screens += [content.render_mechanism(m.number) for m in content.mechanisms]
    for screen in screens:
        text = visible_text(screen).lower()
        assert text.count("still unclear") <= 1, screen[:60]
        assert text.count("limited") <= 1, screen[:60]


def test_closing_advice_is_on_special_populations_page(content: Content) -> None:
    page = visible_text(content.render_mechanism(5))
    assert "What the article recommends" in page
    assert "cannot replace professional sleep treatment" in page
    assert "seek medical attention promptly" in page


def test_foods_page_cycles_meal_ideas_of_the_diet(content: Content) -> None:
    ideas = content.meals_for("omnivore")
    total = len(ideas)
    first = visible_text(content.render_foods("omnivore", 0))
    assert f"Meal idea 1 of {total}" in first
    assert ideas[0].name in first
    last = visible_text(content.render_foods("omnivore", total - 1))
    assert f"Meal idea {total} of {total}" in last
    assert visible_text(content.render_foods("omnivore", total)) == first
    assert f"Meal idea {total} of {total}" in visible_text(content.render_foods("omnivore", -1))
    for food in ("Animal liver", "Fish", "Eggs", "Milk"):
        assert food in first


@pytest.mark.parametrize("diet", ["vegetarian", "vegan"])
def test_a_vegetarian_or_vegan_never_sees_liver_or_fish(content: Content, diet: str) -> None:
    ideas = content.meals_for(diet)
    for index in range(len(ideas)):
        page = visible_text(content.render_foods(diet, index)).lower()
        assert "liver" not in page and "salmon" not in page and "clams" not in page
        assert f"of {len(ideas)}" in page
    assert all(diet in idea.diets for idea in ideas)


def test_vegan_foods_are_fortified_and_come_with_the_nih_line(content: Content) -> None:
    page = visible_text(content.render_foods("vegan", 0))
    assert "Plant foods have no vitamin B12 unless it has been added (fortified)" in page
    assert "Ask a doctor about vitamin B12" in page
    assert "NIH ODS" in page
    assert "Eggs" not in page and "Milk\n" not in page
    for idea in content.meals_for("vegan"):
        assert "fortified" in idea.b12.lower() or "added b12" in idea.b12.lower(), idea.id


def test_every_meal_idea_names_a_rich_b12_source_in_plain_words(content: Content) -> None:
    for idea in content.meal_ideas:
        assert idea.b12_daily_value_percent >= MIN_MEAL_B12_PERCENT_DV, idea.id
        assert idea.b12.strip(), idea.id
        assert f"B12 from: {idea.b12}." in visible_text(content.render_reminder("meal", idea))
    assert content.meal("chicken-vegetable-soup") is None  # ~0.3 mcg a portion: not B12-rich


def test_liver_ideas_carry_the_pregnancy_caution(content: Content) -> None:
    livers = [i for i in content.meal_ideas if "liver" in (i.name + i.text_html).lower()]
    assert livers
    for idea in livers:
        shown = visible_text(content.render_reminder("meal", idea))
        assert "pregnan" in shown.lower() and "(NHS)" in shown
        assert "once a week" in shown


def test_added_foods_name_an_authoritative_source(content: Content) -> None:
    named = {food.name for food in content.foods if food.source == ARTICLE_SOURCE}
    assert named == {"Animal liver", "Fish", "Eggs", "Milk"}
    for food in content.foods:
        if food.source != ARTICLE_SOURCE:
            source = content.sources.get(food.source)
            assert source.publisher in {"NIH Office of Dietary Supplements", "NHS"}
            note = food.note_html.replace("B12", "")
            assert not re.search(r"\d", note), "no amounts in food notes"


def test_diet_coverage(content: Content) -> None:
    assert DIETS == ("omnivore", "pescatarian", "vegetarian", "vegan")
    for diet in DIETS:
        ids = [meal.id for meal in content.meals_for(diet)]
        assert len(set(ids)) >= MIN_MEALS_PER_DIET >= 8, diet
    for meal in content.meal_ideas:
        if "vegan" in meal.diets:
            assert meal.diets == {"vegan", "vegetarian", "pescatarian", "omnivore"}
        if "vegetarian" in meal.diets:
            assert {"vegetarian", "pescatarian", "omnivore"} <= meal.diets
        if "pescatarian" in meal.diets:
            assert "omnivore" in meal.diets


def test_meal_reminder_inserts_the_meal(content: Content) -> None:
    meal = content.meal_ideas[0]
    text = content.render_reminder("meal", meal)
    assert f"<b>{escape(meal.name)}</b>" in text
    assert meal.text_html in text
    assert "{meal}" not in text
    fallback = content.render_reminder("meal", None)
    assert content.meal_fallback_html in fallback
    assert "{meal}" not in fallback


def test_meal_names_are_escaped(content: Content) -> None:
    meal = content.meal_ideas[0].model_copy(update={"name": "Fish & <chips>"})
    text = content.render_reminder("meal", meal)
    check_telegram_html(text)
    assert "Fish & <chips>" in visible_text(text)


def test_reminder_why_quotes_the_article(content: Content) -> None:
    why = visible_text(content.render_reminder_why("wind_down"))
    assert "strong light" in why
    assert "Melatonin" in why
    assert "intense exercise" in visible_text(content.render_reminder_why("exercise"))
    meal_why = visible_text(content.render_reminder_why("meal"))
    assert "guidance of a doctor" in meal_why
    assert "cannot replace" in meal_why


def test_tips_keep_advice_and_caveats(content: Content) -> None:
    tips = visible_text(content.render_tips()).lower()
    for phrase in (
        "regular schedule",
        "strong light",
        "intense exercise",
        "quiet and comfortable",
        "moderate",
        "varies from person to person",
        "limited",
        "still unclear",
        "seek medical attention promptly",
        "doctor's guidance",
        "cannot replace professional sleep treatment",
    ):
        assert phrase in tips, phrase
    assert 1 <= content.caveat_html.count(". ") + 1 <= 2, "the caveat footer: one or two sentences"
    assert "/doctor" in content.render_tips()


def test_help_lists_every_command(content: Content) -> None:
    text = content.render_help()
    for command in (
        "mechanisms",
        "foods",
        "tips",
        "doctor",
        "diet",
        "settings",
        "bedtime",
        "timezone",
        "pause",
        "resume",
        "stop",
        "mydata",
        "deletedata",
        "about",
        "help",
    ):
        assert re.search(rf"/{command}\b", text), command


def test_about_explains_source_and_stored_data(content: Content) -> None:
    about = visible_text(content.render_about())
    assert content.article.title in about
    for phrase in ("chat id", "time zone", "bedtime", "diet", "reminder settings", "limited time"):
        assert phrase in about, phrase
    assert "30 days by default" in about
    assert "/mydata" in about
    assert "/deletedata" in about


def test_about_says_what_the_source_is_and_where_other_facts_come_from(content: Content) -> None:
    about = visible_text(content.render_about())
    assert "consumer health article" in about and "translated" in about
    assert "cites no studies" in about
    assert "29 November 2026" in about  # the review date, from sources.toml
    for source in content.sources.source:
        assert source.publisher in about and source.title in about
    assert f"“{content.article.title}”" not in about.split("I call it")[0]


def test_start_says_it_does_not_diagnose(content: Content) -> None:
    assert "diagnose" in visible_text(content.render_start())
    assert "/help" in content.render_unknown(OTHER)


def test_default_content_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_content_dir() == CONTENT_DIR
    (tmp_path / "content").mkdir()
    assert default_content_dir() == Path("content")


# --------------------------------------------------------------------------------------------
# Broken content: one clear line naming the file and the problem


def test_unbalanced_html_in_a_meal(broken: Callable[[str, str, str], str]) -> None:
    message = broken(
        "foods.toml",
        'text_html = "A salmon fillet',
        'text_html = "<b>A salmon fillet',
    )
    assert message.endswith("foods.toml: meal 'salmon-rice': unclosed <b> opened at offset 0")


def test_the_evening_message_needs_both_reminder_texts(
    broken: Callable[[str, str, str], str],
) -> None:
    message = broken("reminders.toml", "🏃 {exercise_text}", "🏃 and some exercise")
    assert "evening: text_html must contain {exercise_text} exactly once" in message


def test_the_evening_message_names_no_exact_time(broken: Callable[[str, str, str], str]) -> None:
    message = broken("reminders.toml", "🍽 {meal_text}", "🍽 In 60 minutes: {meal_text}")
    assert "evening: text_html names an exact time" in message


def test_duplicate_meal_id(broken: Callable[[str, str, str], str]) -> None:
    message = broken("foods.toml", 'id = "tuna-bean-salad"', 'id = "salmon-rice"')
    assert "duplicate meal id: 'salmon-rice'" in message


def test_missing_mechanism(broken: Callable[[str, str, str], str]) -> None:
    text = (CONTENT_DIR / "article.toml").read_text(encoding="utf-8")
    start = text.index("[[mechanism]]\nnumber = 3")
    end = text.index("[[mechanism]]\nnumber = 4")
    message = broken("article.toml", text[start:end], "")
    assert "missing mechanism 3" in message


def test_mechanisms_out_of_order(broken: Callable[[str, str, str], str]) -> None:
    message = broken("article.toml", "number = 1\n", "number = 6\n")
    assert "number" in message
    assert "mechanism 'melatonin'" in message


def test_toml_syntax_error(broken: Callable[[str, str, str], str]) -> None:
    message = broken("tips.toml", 'title = "Sleep tips from the article"', 'title = "Sleep tips')
    assert "TOML syntax error" in message
    assert re.search(r"line \d+", message)


def test_unknown_field_is_called_out(broken: Callable[[str, str, str], str]) -> None:
    message = broken(
        "foods.toml", 'text_html = "Spaghetti with clams', 'txt_html = "Spaghetti with clams'
    )
    assert "meal 'clam-spaghetti'" in message
    assert "unknown field 'txt_html'" in message
    assert "missing field 'text_html'" in message


def test_unknown_diet(broken: Callable[[str, str, str], str]) -> None:
    message = broken(
        "foods.toml",
        'id = "salmon-tray-bake"\nname = "Salmon and potato tray bake"\n'
        'diets = ["omnivore", "pescatarian"]',
        'id = "salmon-tray-bake"\nname = "Salmon and potato tray bake"\n'
        'diets = ["omnivore", "keto"]',
    )
    assert "meal 'salmon-tray-bake': diets" in message
    assert "'keto'" in message


def test_vegetarian_dish_must_list_all_diets(broken: Callable[[str, str, str], str]) -> None:
    message = broken(
        "foods.toml",
        'id = "vegetable-frittata"\nname = "Vegetable frittata"\n'
        'diets = ["omnivore", "pescatarian", "vegetarian"]',
        'id = "vegetable-frittata"\nname = "Vegetable frittata"\ndiets = ["vegetarian"]',
    )
    assert "meal 'vegetable-frittata'" in message
    assert "omnivore and pescatarian" in message


def test_too_few_vegan_meals(broken: Callable[[str, str, str], str]) -> None:
    vegan = 'diets = ["omnivore", "pescatarian", "vegetarian", "vegan"]'
    message = broken(
        "foods.toml",
        f'id = "pea-soup-yeast"\nname = "Pea and potato soup"\n{vegan}',
        'id = "pea-soup-yeast"\nname = "Pea and potato soup"\n'
        'diets = ["omnivore", "pescatarian", "vegetarian"]',
    )
    assert "only 7 meal ideas suit vegans; at least 8 are needed" in message


def test_a_meal_idea_must_be_b12_rich(broken: Callable[[str, str, str], str]) -> None:
    # Chicken soup: ~0.3 mcg (14% of the Daily Value) a portion, the reason it was dropped.
    message = broken(
        "foods.toml", "b12_daily_value_percent = 100\n", "b12_daily_value_percent = 14\n"
    )
    assert "meal 'beef-broccoli': b12_daily_value_percent 14 is under 20" in message


def test_a_vegan_meal_must_name_a_fortified_source(broken: Callable[[str, str, str], str]) -> None:
    message = broken(
        "foods.toml",
        "with added B12 (check the label), plus the soya milk if it is fortified",
        "and a glass of soya milk",
    )
    assert "meal 'fortified-cereal-soy-milk'" in message


def test_liver_needs_the_pregnancy_caution(broken: Callable[[str, str, str], str]) -> None:
    caution = "Not if you are pregnant: the NHS advises avoiding liver in pregnancy "
    message = broken("foods.toml", caution, "")
    assert "meal 'liver-onions': an idea with liver needs a caution_html about pregnancy" in message


def test_an_unknown_source_is_rejected(broken: Callable[[str, str, str], str]) -> None:
    message = broken("foods.toml", 'source = "nhs-vegan"', 'source = "my-blog"')
    assert "unknown source 'my-blog'; add it to sources.toml" in message


def test_meal_reminder_needs_placeholder(broken: Callable[[str, str, str], str]) -> None:
    message = broken("reminders.toml", "\n{meal}\n", "\na meal\n")
    assert "reminder 'meal'" in message
    assert "{meal}" in message


def test_missing_reminder_kind(broken: Callable[[str, str, str], str]) -> None:
    message = broken("reminders.toml", 'kind = "exercise"', 'kind = "meal"')
    assert "duplicate reminder kind: 'meal'" in message


def test_send_windows_are_loaded_and_stay_before_bedtime(content: Content) -> None:
    windows = {
        kind.kind: (kind.window_before_minutes, kind.window_after_minutes)
        for kind in content.reminder_kinds
    }
    assert windows == {"meal": (30, 10), "exercise": (20, 10), "wind_down": (5, 5)}
    for kind in content.reminder_kinds:
        assert kind.window_before_minutes < kind.default_offset_minutes


def test_a_window_reaching_past_bedtime_is_rejected(
    broken: Callable[[str, str, str], str],
) -> None:
    message = broken(
        "reminders.toml",
        "default_offset_minutes = 60\nwindow_before_minutes = 5",
        "default_offset_minutes = 60\nwindow_before_minutes = 60",
    )
    assert "reminder 'wind_down': window_before_minutes (60) must be less than" in message


def test_a_missing_window_is_rejected(broken: Callable[[str, str, str], str]) -> None:
    message = broken("reminders.toml", "window_after_minutes = 5\n", "")
    assert "reminder 'wind_down': missing field 'window_after_minutes'" in message


def test_the_morning_messages_have_send_windows_from_diary_toml(content: Content) -> None:
    # Never early (nobody is buzzed before the time they asked), late within the window.
    windows = content.send_windows()
    assert windows["checkin"] == (0, 15) and windows["weekly"] == (0, 30)
    assert windows["wind_down"] == (5, 5)  # the nightly reminders' stay in the same list
    assert list(windows) == ["meal", "exercise", "wind_down", "checkin", "weekly"]


def test_windows_from_levels_every_scheduled_kind(content: Content) -> None:
    windows = windows_from(content)
    assert windows["checkin"] == Window(0, 15 * 60)
    assert windows["weekly"] == Window(0, 30 * 60)
    assert set(windows) == set(content.send_windows())


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "window_before_minutes = 0\nwindow_after_minutes = 15",
            "window_before_minutes = 0\nwindow_after_minutes = -5",
            "checkin window_after_minutes: Input should be greater than or equal to 0",
        ),
        (
            "window_before_minutes = 0\nwindow_after_minutes = 30",
            'window_before_minutes = 0\nwindow_after_minutes = "30"',
            "weekly window_after_minutes: should be a whole number",
        ),
        (
            "window_before_minutes = 0\nwindow_after_minutes = 15",
            "window_before_minutes = 90\nwindow_after_minutes = 15",
            "checkin window_before_minutes: Input should be less than or equal to 60",
        ),
        (
            "window_before_minutes = 0\nwindow_after_minutes = 30\n",
            "window_before_minutes = 0\n",
            "missing field 'window_after_minutes'",
        ),
        (  # the text must stay true anywhere in the window
            "Good morning.",
            "Good morning, 5 min after your alarm.",
            "checkin question_html names an exact time ('5 min')",
        ),
    ],
)
def test_a_malformed_morning_window_is_rejected(
    broken: Callable[[str, str, str], str], old: str, new: str, problem: str
) -> None:
    message = broken("diary.toml", old, new)
    assert problem in message, message


@pytest.mark.parametrize(
    "wording", ["in 60 minutes", "in 1 hour", "30min", "60 分钟后", "一小时后", "半小时"]
)
def test_a_reminder_naming_an_exact_time_is_rejected(
    broken: Callable[[str, str, str], str], wording: str
) -> None:
    """Sent up to its window early, "in 60 minutes" would be a lie; the loader says so."""
    message = broken("reminders.toml", "Bedtime is getting close.", f"Bedtime is {wording}.")
    assert "reminder 'wind_down': text_html names an exact time" in message


def test_label_too_long(broken: Callable[[str, str, str], str]) -> None:
    message = broken("article.toml", 'label = "Melatonin"', f'label = "{"M" * 65}"')
    assert "mechanism 'melatonin': label" in message
    assert "64" in message


def test_html_in_plain_text_field(broken: Callable[[str, str, str], str]) -> None:
    message = broken("foods.toml", 'name = "Spaghetti with clams"', 'name = "<b>Clams</b>"')
    assert "meal 'clam-spaghetti': name" in message
    assert "plain text" in message


def test_rendered_message_too_long(broken: Callable[[str, str, str], str]) -> None:
    message = broken(
        "foods.toml",
        'text_html = "Spaghetti with clams',
        f'text_html = "{"Clams. " * 600}',
    )
    assert "meal 'clam-spaghetti'" in message
    assert "over Telegram's limit of 4096" in message


def test_unknown_placeholder(broken: Callable[[str, str, str], str]) -> None:
    message = broken("messages.toml", "Send /help to see", "Send {command} to see")
    assert "message 'unknown': unknown placeholder {command}" in message


def test_duplicate_alias(broken: Callable[[str, str, str], str]) -> None:
    message = broken("article.toml", '"nerves", ', '"melatonin", ')
    assert "'melatonin' is already used" in message


def test_bad_entity_in_message(broken: Callable[[str, str, str], str]) -> None:
    message = broken("messages.toml", "<b>Reminders</b>", "<b>Reminders & more</b>")
    assert "message 'help'" in message
    assert "bare '&'" in message


def test_missing_file(tmp_path: Path) -> None:
    directory = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, directory)
    (directory / "reminders.toml").unlink()
    with pytest.raises(ContentError, match=r"reminders\.toml: file not found"):
        load_content(directory)


# --------------------------------------------------------------------------------------------
# Faithfulness to the article


def test_article_is_split_into_sentences() -> None:
    sentences = article_sentences()
    if sentences is None:
        pytest.skip(NO_ARTICLE)
    assert sentences[0].startswith("Vitamin B12 is involved in the synthesis")
    assert sentences[-1].startswith("Vitamin B12 supplements should be used")
    assert "Improving sleep requires comprehensive conditioning." in sentences
    assert not any("comment" in s.lower() or "thoughts" in s.lower() for s in sentences)
    assert not any(s.startswith(("1.", "5.")) for s in sentences)


def test_mechanism_pages_keep_every_article_sentence(content: Content) -> None:
    sentences = article_sentences()
    if sentences is None:
        pytest.skip(NO_ARTICLE)
    pages = [content.render_mechanism(m.number) for m in content.mechanisms]
    missing = missing_sentences(sentences, pages)
    report = [f"{s!r}\n  closest: {best_match(s, pages)}" for s in missing]
    assert not missing, "article sentences lost or changed in meaning:\n" + "\n".join(report)


def test_mechanism_index_keeps_the_lead(content: Content) -> None:
    lead = article_lead_sentences()
    if lead is None:
        pytest.skip(NO_ARTICLE)
    assert missing_sentences(lead, [content.render_mechanism_index()]) == []


def test_reminder_quotes_are_article_sentences(content: Content) -> None:
    path = find_article()
    if path is None:
        pytest.skip(NO_ARTICLE)
    article_html = escape(path.read_text(encoding="utf-8"))
    for reminder in content.reminder_kinds:
        quotes = re.findall(r"<blockquote>(.*?)</blockquote>", reminder.why_html, re.S)
        assert quotes, reminder.kind
        quoted = [visible_text(quote) for quote in quotes]
        assert missing_sentences(quoted, [article_html]) == [], reminder.kind


ORIGINAL = [
    "Moderate supplementation of vitamin B12 may help maintain normal melatonin levels, "
    "but excessive supplementation has no additional benefits.",
    "However, the effect of supplementing vitamin B12 on sleep improvement is limited for "
    "non anemic individuals.",
    "Long term deficiency may lead to peripheral neuropathy, causing discomfort symptoms such as "
    "limb numbness and tingling, indirectly affecting sleep quality.",
]
FAITHFUL = (
    "<b>Moderate</b> supplementation of vitamin B12 may help maintain normal melatonin levels, "
    "but excessive supplementation has <b>no additional benefits</b>.\n\n"
    "However, the effect of supplementing vitamin B12 on sleep improvement is limited for "
    "non-anemic individuals.\n\n"
    "Long-term deficiency may lead to peripheral neuropathy, causing uncomfortable symptoms such "
    "as numbness and tingling in the limbs and indirectly affecting sleep quality."
)


def test_matcher_accepts_grammar_and_markup_fixes() -> None:
    assert missing_sentences(ORIGINAL, [FAITHFUL]) == []


@pytest.mark.parametrize(
    ("old", "new", "lost"),
    [
        ("may help maintain", "helps maintain", 0),
        ("<b>Moderate</b> supplementation", "Supplementation", 0),
        ("has <b>no additional benefits</b>", "has extra benefits", 0),
        ("is limited for", "is clear for", 1),
        ("is limited for", "is proven and limited for", 1),
        ("and indirectly affecting", "and affecting", 2),
        ("Long-term deficiency may lead", "Long-term deficiency leads", 2),
    ],
)
def test_matcher_rejects_changed_meaning(old: str, new: str, lost: int) -> None:
    assert old in FAITHFUL
    assert missing_sentences(ORIGINAL, [FAITHFUL.replace(old, new)]) == [ORIGINAL[lost]]


def test_matcher_rejects_a_dropped_sentence() -> None:
    shortened = FAITHFUL.split("\n\n")[0]
    assert missing_sentences(ORIGINAL, [shortened]) == ORIGINAL[1:]


def test_matcher_rejects_weakened_real_page(content: Content) -> None:
    sentences = article_sentences()
    if sentences is None:
        pytest.skip(NO_ARTICLE)
    page = content.render_mechanism(4)
    assert "<b>limited</b>" in page
    weakened = page.replace("<b>limited</b>", "significant")
    missing = missing_sentences(sentences, [*map(content.render_mechanism, (1, 2, 3, 5)), weakened])
    assert len(missing) == 1
    assert "limited for non anemic" in missing[0]


def test_every_fact_from_outside_the_article_names_its_source(content: Content) -> None:
    """Red flags, /doctor, the dose reply, crisis lines, foods, diet notes, cautions and the
    meal ideas' B12 amounts: each cites a source id that sources.toml defines."""
    spec = content.safety.spec
    cited = [source for flag in spec.red_flag for source in flag.sources]
    cited += [s for section in spec.doctor.section for fact in section.fact for s in fact.sources]
    cited += [*spec.dose.sources, *(line.source for line in spec.crisis.line)]
    cited += [food.source for food in content.foods if food.source != ARTICLE_SOURCE]
    cited += [s for food in content.foods for s in food.note_sources]
    cited += [s for info in content.foods_page.diet.values() for s in info.note_sources]
    cited += [s for idea in content.meal_ideas for s in idea.caution_sources]
    for source_id in cited:
        content.sources.get(source_id)  # KeyError if unknown
    publishers = {content.sources.get(source_id).short for source_id in cited}
    assert {"NHS", "NIH ODS", "AASM", "CDC"} <= publishers
    for flag in spec.red_flag:
        assert flag.sources, flag.id
    for info in content.foods_page.diet.values():
        assert bool(info.note_html) == bool(info.note_sources)
    for idea in content.meal_ideas:
        assert bool(idea.caution_html) == bool(idea.caution_sources)
