"""Everything the bot says, loaded once from content/*.toml and validated before it is ever sent.

Non-programmers edit the TOML files, so every mistake must surface at start-up as one clear line
naming the file and the problem (ContentError), never as a Telegram "can't parse entities"
error in front of a user at 22:00. Validation therefore runs on every *rendered* message, not
just on the fragments, because that is what Telegram sees. Pure: no Telegram imports.

Safety content (sources.toml, safety.toml) is loaded by bot.safety and held here as `safety`.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Final, Literal, get_args

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field

from bot.content_schema import MAX_BUTTON_LABEL_LENGTH as MAX_BUTTON_LABEL_LENGTH
from bot.content_schema import MAX_WINDOW_AFTER_MINUTES as MAX_WINDOW_AFTER_MINUTES
from bot.content_schema import MAX_WINDOW_BEFORE_MINUTES as MAX_WINDOW_BEFORE_MINUTES
from bot.content_schema import ContentError as ContentError
from bot.content_schema import (
    Frozen,
    Html,
    Label,
    PlainText,
    Slug,
    WindowAfterMinutes,
    WindowBeforeMinutes,
    check_html,
    check_rendered,
    check_unique,
    load_toml,
)
from bot.diary.text import DIARY_FILE, DiaryText, load_diary_text
from bot.diary.wake import CHECKIN_KIND
from bot.diary.weekly import WEEKLY_KIND
from bot.i18n import DEFAULT_LOCALE, LOCALES, Catalogue, compare_locale, load_catalogue
from bot.meals import EXERCISE_KIND, MEAL_KIND, is_evening_message
from bot.safety import MECHANISM_PAGE_PREFIX, Safety, Sources, load_safety, load_sources
from bot.telegram_html import escape
from bot.triage import OTHER, Kind, Triage, TriageRules

Diet = Literal["omnivore", "pescatarian", "vegetarian", "vegan"]
DIETS: Final[tuple[Diet, ...]] = ("omnivore", "pescatarian", "vegetarian", "vegan")
"""The one list of diets: content tags meals with them, people choose one (storage reuses it)."""
DEFAULT_DIET: Final[Diet] = "omnivore"
ReminderKindName = Literal["meal", "exercise", "wind_down"]
# A new kind: one member here, one [[reminder]] entry in content/reminders.toml (and zh/).
REMINDER_KINDS: Final[frozenset[str]] = frozenset(get_args(ReminderKindName))
MECHANISM_NUMBERS: Final = (1, 2, 3, 4, 5)
MIN_MEALS_PER_DIET: Final = 8
"""Eight ideas per diet, so nobody is offered the same meal twice within seven nights."""
MIN_MEAL_B12_PERCENT_DV: Final = 20
"""A meal idea is "rich in" B12 only at 20% of the Daily Value or more (the FDA's definition)."""
MEAL_PLACEHOLDER: Final = "{meal}"
# The one evening message's template holds both reminders' texts, each once.
EVENING_PLACEHOLDERS: Final = ("{meal_text}", "{exercise_text}")
# "in 60 minutes", "2 hours", "30 分钟", "一小时": a reminder text naming a duration stops being
# true when the reminder goes out early or late within its send window.
_EXACT_DURATION: Final = re.compile(
    r"\d+\s*(?:min|minute|minutes|hour|hours|hrs?|h)\b|[\d一二两三四五六七八九十半]+\s*(?:个)?(?:分钟|小时|钟头)",
    re.IGNORECASE,
)
ARTICLE_SOURCE: Final = "article"
"""The `source` value of foods the article itself names."""

# Which diets each diet implies: a vegan dish also suits everyone else, and so on down.
_IMPLIED_DIETS: Final[dict[Diet, frozenset[Diet]]] = {
    "vegan": frozenset({"vegetarian", "pescatarian", "omnivore"}),
    "vegetarian": frozenset({"pescatarian", "omnivore"}),
    "pescatarian": frozenset({"omnivore"}),
    "omnivore": frozenset(),
}
_MOST_RESTRICTIVE_FIRST: Final[tuple[Diet, ...]] = (
    "vegan",
    "vegetarian",
    "pescatarian",
    "omnivore",
)
# The words that show a meal idea is safe to offer, in each language content is written in
# (content/ and content/zh/): a vegan idea's B12 is fortified; a liver idea warns about pregnancy.
_FORTIFIED_WORDS: Final = ("fortified", "added b12", "强化", "添加了 b12", "添加了b12")
_LIVER_WORDS: Final = ("liver", "肝")
_PREGNANCY_WORDS: Final = ("pregnan", "孕")


# --------------------------------------------------------------------------------------------
# Field types


def normalise_key(key: str) -> str:
    """How people's typed keys and aliases compare: case-, space- and '_'-insensitive."""
    key = key.strip().lower().lstrip("#").rstrip(".")
    return re.sub(r"[\s_-]+", "-", key).strip("-")


def _normalise_alias(value: object) -> object:
    return normalise_key(value) if isinstance(value, str) else value


def _alias(value: str) -> str:
    if value.isdigit():
        raise ValueError("an alias can't be just a number (numbers already pick mechanisms)")
    return value


def _diets(value: frozenset[Diet]) -> frozenset[Diet]:
    if not value:
        raise ValueError('list at least one diet, e.g. ["omnivore", "pescatarian"]')
    return value


Alias = Annotated[Slug, BeforeValidator(_normalise_alias), AfterValidator(_alias)]
Diets = Annotated[frozenset[Diet], AfterValidator(_diets)]
SourceIds = tuple[Slug, ...]


# --------------------------------------------------------------------------------------------
# Public models


class Mechanism(Frozen):
    """One of the article's five numbered sections, as a page in /mechanisms."""

    number: int = Field(ge=1, le=5)
    slug: Slug
    aliases: tuple[Alias, ...] = ()
    title: PlainText
    label: Label
    body_html: Html
    caveat_footer: bool = True
    """False where the page already carries the article's own caveat, so it shows once."""


class Food(Frozen):
    """A B12-rich food; `source` is "article" or the id of the source (sources.toml) naming it."""

    name: PlainText
    note_html: str = ""
    note_sources: SourceIds = ()
    diets: Diets
    source: Slug


class MealIdea(Frozen):
    """An evening meal idea; `diets` lists everyone who can eat it, `b12` its source in words."""

    id: Slug
    name: Annotated[PlainText, Field(max_length=MAX_BUTTON_LABEL_LENGTH)]
    diets: Diets
    text_html: Html
    b12: PlainText
    b12_daily_value_percent: int = Field(ge=0, le=100_000)
    caution_html: str = ""
    caution_sources: SourceIds = ()


class ReminderKind(Frozen):
    """One of the three nightly reminders and the article passage that justifies it."""

    kind: ReminderKindName
    title: PlainText
    label: Label
    default_offset_minutes: int = Field(gt=0, le=720)  # the scheduler caps offsets at 12 h
    # The send window (bot/capacity.py): how many minutes before and after its time this
    # reminder may go out when the bot spreads a busy minute's sending. Early must stay true
    # to the text, so the text never names an exact time ("in 60 minutes").
    window_before_minutes: WindowBeforeMinutes
    window_after_minutes: WindowAfterMinutes
    text_html: Html
    why_html: Html


class EveningMessage(Frozen):
    """The one evening message (/settings): the meal idea and the exercise note as one."""

    title: PlainText
    text_html: Html  # {meal_text} and {exercise_text}: those reminders' texts, filled


class Tip(Frozen):
    """One piece of the article's sleep advice (/tips)."""

    title: PlainText
    text_html: Html


class Messages(Frozen):
    """The bot's own copy (messages.toml); all values are Telegram HTML templates."""

    start: Html
    help: Html
    about: Html
    unknown: Html
    mechanisms_index: Html
    slow_down: Html


class ArticleInfo(Frozen):
    """What the bot says about its single source."""

    title: PlainText
    note: PlainText


class DietInfo(Frozen):
    """One diet a person can choose: how it is named, chosen, labelled and introduced."""

    name: PlainText
    button: Label
    label: PlainText
    intro_html: Html
    note_html: str = ""
    note_sources: SourceIds = ()


class DietText(Frozen):
    """The words around /diet and the diet question that ends the first set-up."""

    setup_question_html: Html
    skip_label: Label
    current_html: Html
    saved_html: Html
    unknown_html: Html
    footer_html: Html
    back_label: Label
    stale_button: Annotated[PlainText, Field(max_length=200)]


class FoodsPage(Frozen):
    """Wording around the food list on /foods, per diet."""

    title: PlainText
    article_heading: PlainText
    other_heading: PlainText
    meal_heading: PlainText
    b12_label: PlainText
    sources_label: PlainText
    diet: dict[Diet, DietInfo]
    diet_text: DietText


class TipsPage(Frozen):
    """Wording of /tips and the caveats that must always accompany it."""

    title: PlainText
    intro_html: Html
    tips: tuple[Tip, ...]
    caveats_title: PlainText
    caveats_html: Html
    doctor_html: Html


# --------------------------------------------------------------------------------------------
# File schemas (the TOML layout; keys are singular because each [[table]] is one item)


class _ArticleFile(Frozen):
    source: ArticleInfo
    lead_html: Html
    mechanism: tuple[Mechanism, ...]


class _FoodsFile(Frozen):
    title: PlainText
    article_heading: PlainText
    other_heading: PlainText
    meal_heading: PlainText
    b12_label: PlainText
    sources_label: PlainText
    meal_b12_sources: SourceIds = Field(min_length=1)
    diet: dict[Diet, DietInfo]
    diet_text: DietText
    food: tuple[Food, ...] = Field(min_length=1)
    meal: tuple[MealIdea, ...] = Field(min_length=1)


class _TipsFile(Frozen):
    caveat_html: Html
    title: PlainText
    intro_html: Html
    tip: tuple[Tip, ...] = Field(min_length=1)
    caveats_title: PlainText
    caveats_html: Html
    doctor_html: Html


class _RemindersFile(Frozen):
    meal_fallback_html: Html
    why_heading: PlainText = "Why this reminder?"
    evening: EveningMessage
    reminder: tuple[ReminderKind, ...]


# --------------------------------------------------------------------------------------------
# Content


class Content(Frozen):
    """All bot content, validated; render_* return Telegram HTML that is known to be valid."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    article: ArticleInfo
    lead_html: str
    caveat_html: str
    mechanisms: tuple[Mechanism, ...]
    foods: tuple[Food, ...]
    meal_ideas: tuple[MealIdea, ...]
    reminder_kinds: tuple[ReminderKind, ...]
    evening: EveningMessage
    foods_page: FoodsPage
    tips_page: TipsPage
    messages: Messages
    meal_fallback_html: str
    why_heading: str
    safety: Safety
    ui: Catalogue
    """This locale's interface words (ui.toml): buttons, prompts, errors, dates, commands."""

    @property
    def locale(self) -> str:
        return self.ui.locale

    diary: DiaryText  # content/diary.toml: the sleep diary's words (bot.diary.text)

    # -- look-ups ------------------------------------------------------------------------

    @property
    def sources(self) -> Sources:
        return self.safety.sources

    @property
    def triage(self) -> TriageRules:
        return self.safety.triage

    def find_mechanism(self, key: str) -> Mechanism | None:
        """By number ("3"), slug or alias; case-, space- and underscore-insensitive."""
        wanted = normalise_key(key)
        for mechanism in self.mechanisms:
            if wanted in (str(mechanism.number), mechanism.slug, *mechanism.aliases):
                return mechanism
        return None

    def mechanism(self, number: int) -> Mechanism:
        """The mechanism with this number; KeyError if there is none (e.g. from callback data)."""
        for mechanism in self.mechanisms:
            if mechanism.number == number:
                return mechanism
        raise KeyError(number)

    def meal(self, meal_id: str) -> MealIdea | None:
        for idea in self.meal_ideas:
            if idea.id == meal_id:
                return idea
        return None

    def meals_for(self, diet: str) -> tuple[MealIdea, ...]:
        """Meal ideas a person with this diet can eat, in file order."""
        return tuple(idea for idea in self.meal_ideas if diet in idea.diets)

    def send_windows(self) -> dict[str, tuple[int, int]]:
        """Every scheduled kind's send window as (minutes before, minutes after): the nightly
        reminders' (reminders.toml), then the morning check-in's and weekly chart's
        (diary.toml). The one list the dispatcher, `sleepbot capacity` and check-content use."""
        windows: dict[str, tuple[int, int]] = {
            kind.kind: (kind.window_before_minutes, kind.window_after_minutes)
            for kind in self.reminder_kinds
        }
        for kind, morning in ((CHECKIN_KIND, self.diary.checkin), (WEEKLY_KIND, self.diary.weekly)):
            windows[kind] = (morning.window_before_minutes, morning.window_after_minutes)
        return windows

    def reminder_kind(self, kind: str) -> ReminderKind:
        """The reminder kind; KeyError if unknown."""
        for reminder in self.reminder_kinds:
            if reminder.kind == kind:
                return reminder
        raise KeyError(kind)

    def known_diet(self, diet: str | None) -> Diet:
        """`diet` if it is one of DIETS, else the default (omnivore)."""
        for known in DIETS:
            if diet == known:
                return known
        return DEFAULT_DIET

    def find_diet(self, typed: str) -> Diet | None:
        """A diet from what a person typed: its id, its name or a word the triage knows it by."""
        wanted = normalise_key(typed)
        for diet in DIETS:
            if wanted in (diet, normalise_key(self.foods_page.diet[diet].name)):
                return diet
        named = self.triage.classify(typed).diet
        return self.known_diet(named) if named in DIETS else None

    def diet_name(self, diet: str | None) -> str:
        """How the diet is shown to people (plain text)."""
        return self.foods_page.diet[self.known_diet(diet)].name

    # -- rendering -----------------------------------------------------------------------

    @functools.cached_property
    def placeholder_values(self) -> dict[str, str]:
        """What ``_fill`` puts in every template; built once (the source list alone is
        ~30 escaped links, and every reminder sent is filled)."""
        return {
            "{source_title}": escape(self.article.title),
            "{sources}": self.sources.link_list(),
            "{reviewed}": escape(self.ui.long_date(self.sources.reviewed)),
        }

    def _fill(self, template: str, **extra: str) -> str:
        values = self.placeholder_values
        if extra:
            values = {**values, **{"{" + name + "}": value for name, value in extra.items()}}
        for placeholder, value in values.items():
            template = template.replace(placeholder, value)
        return template

    def _footer(self) -> str:
        return f"<i>{self.caveat_html}</i>"

    def render_start(self) -> str:
        return f"{self._fill(self.messages.start)}\n\n{self._footer()}"

    def render_help(self) -> str:
        return self._fill(self.messages.help)

    def render_about(self) -> str:
        return self._fill(self.messages.about)

    def render_unknown(self, verdict: Triage) -> str:
        """The short pointer to /help, only ever for text that triage found to be nothing else.

        Taking the verdict (and refusing any but "other") is what makes it impossible for a
        crisis message, or a red flag, to be answered with "Sorry, I didn't understand".
        """
        if verdict.kind is not Kind.OTHER:
            raise ValueError(f"the generic reply is only for 'other', not {verdict.kind.value!r}")
        return self._fill(self.messages.unknown)

    def render_slow_down(self) -> str:
        """The one notice a chat gets when it floods the bot (bot/flood.py)."""
        return self._fill(self.messages.slow_down)

    def render_tips(self) -> str:
        page = self.tips_page
        tips = "\n".join(f"• <b>{escape(tip.title)}.</b> {tip.text_html}" for tip in page.tips)
        return (
            f"<b>{escape(page.title)}</b>\n\n{page.intro_html}\n\n{tips}\n\n"
            f"<b>{escape(page.caveats_title)}</b>\n{page.caveats_html}\n\n{page.doctor_html}"
        )

    def render_mechanism_index(self) -> str:
        return self._fill(self.messages.mechanisms_index, lead=self.lead_html)

    def render_mechanism(self, number: int) -> str:
        """Title + the article's text (+ the caveat footer); KeyError for an unknown number."""
        mechanism = self.mechanism(number)
        page = f"<b>{mechanism.number}. {escape(mechanism.title)}</b>\n\n{mechanism.body_html}"
        return f"{page}\n\n{self._footer()}" if mechanism.caveat_footer else page

    def render_foods(self, diet: str, meal_index: int) -> str:
        """B12-rich foods for this diet plus its meal idea number meal_index (wrapping around)."""
        page = self.foods_page
        known = self.known_diet(diet)
        info = page.diet[known]
        foods = [food for food in self.foods if known in food.diets]
        named = [food for food in foods if food.source == ARTICLE_SOURCE]
        others = [food for food in foods if food.source != ARTICLE_SOURCE]
        parts = [f"<b>{escape(page.title)}</b>", info.intro_html]
        cited: list[str] = []
        if named:
            parts.append(f"<b>{escape(page.article_heading)}</b>\n{self._food_list(named)}")
        if others:
            parts.append(f"<b>{escape(page.other_heading)}</b>\n{self._food_list(others)}")
            cited.extend(food.source for food in others)
        if info.note_html:
            parts.append(info.note_html)
            cited.extend(info.note_sources)
        if cited:
            parts.append(f"<i>{escape(page.sources_label)}: {self.sources.cite(cited)}</i>")
        ideas = self.meals_for(known)
        position = meal_index % len(ideas)
        idea = ideas[position]
        heading = page.meal_heading.replace("{number}", str(position + 1)).replace(
            "{count}", str(len(ideas))
        )
        label = escape(page.diet[_most_restrictive(idea.diets)].label)
        parts.append(f"<b>{escape(heading)}</b> ({label})\n{self._meal_html(idea)}")
        diet_line = page.diet_text.footer_html.replace("{diet}", escape(info.name))
        parts.append(f"{diet_line}\n\n{self._footer()}")
        return "\n\n".join(parts)

    def render_reminder(self, kind: str, meal: MealIdea | None) -> str:
        """The reminder message; for "meal", `meal` fills {meal} (None: a generic fallback)."""
        title = self.reminder_kind(kind).title
        return f"<b>{escape(title)}</b>\n\n{self._reminder_text(kind, meal)}"

    def render_evening(self, meal: MealIdea | None) -> str:
        """The one evening message: the meal reminder's and the exercise note's texts in the
        catalogue's template, under its own title."""
        text = self.evening.text_html
        for placeholder, kind in zip(EVENING_PLACEHOLDERS, (MEAL_KIND, EXERCISE_KIND), strict=True):
            text = text.replace(placeholder, self._reminder_text(kind, meal))
        return f"<b>{escape(self.evening.title)}</b>\n\n{text}"

    def render_delivery(self, kind: str, meal_id: str | None) -> str:
        """What a delivery says: its reminder, or the evening message when the exercise note
        carries a meal idea (bot.meals.is_evening_message)."""
        meal = self.meal(meal_id) if meal_id else None
        if is_evening_message(kind, meal_id):
            return self.render_evening(meal)
        return self.render_reminder(kind, meal)

    def render_reminder_why(self, kind: str, meal_id: str | None = None) -> str:
        """The article passage behind a reminder (the "Why?" button); both passages for the
        evening message."""
        kinds = (MEAL_KIND, EXERCISE_KIND) if is_evening_message(kind, meal_id) else (kind,)
        passages = "\n\n".join(self._fill(self.reminder_kind(k).why_html) for k in kinds)
        return f"<b>{escape(self.why_heading)}</b>\n\n{passages}"

    def _reminder_text(self, kind: str, meal: MealIdea | None) -> str:
        """A reminder's text without its title; the meal's fills {meal} (None: the fallback)."""
        reminder = self.reminder_kind(kind)
        text = reminder.text_html
        if reminder.kind == MEAL_KIND:
            meal_html = self._meal_html(meal) if meal is not None else self.meal_fallback_html
            text = text.replace(MEAL_PLACEHOLDER, meal_html)
        return self._fill(text)

    # -- safety and diets ----------------------------------------------------------------

    def render_crisis(self, country: str | None) -> str:
        return self.safety.render_crisis(country)

    def render_red_flag(self, flag_id: str, *, with_dose: bool = False) -> str:
        return self.safety.render_red_flag(flag_id, with_dose=with_dose)

    def render_dose(self) -> str:
        return self.safety.render_dose()

    def render_doctor(self) -> str:
        return self.safety.render_doctor()

    def render_food_reply(self, diet: str, meal_index: int) -> str:
        """A food question's answer: one line, then /foods for that diet."""
        lead = self.safety.spec.food.lead_html.replace("{diet}", escape(self.diet_name(diet)))
        return f"{lead}\n\n{self.render_foods(diet, meal_index)}"

    def render_sleep_reply(self, topic_id: str) -> str:
        """A sleep question's answer: one line, then the topic's page (KeyError if unknown)."""
        topic = self.safety.sleep_topic(topic_id)
        if topic.page == "tips":
            page = self.render_tips()
        elif topic.page == "mechanisms":
            page = self.render_mechanism_index()
        else:
            page = self.render_mechanism(self.sleep_mechanism(topic_id))
        return f"{topic.lead_html}\n\n{page}"

    def sleep_mechanism(self, topic_id: str) -> int:
        """The mechanism number a sleep topic points to; KeyError if it points elsewhere."""
        page = self.safety.sleep_topic(topic_id).page
        mechanism = self.find_mechanism(page.removeprefix(MECHANISM_PAGE_PREFIX))
        if not page.startswith(MECHANISM_PAGE_PREFIX) or mechanism is None:
            raise KeyError(topic_id)
        return mechanism.number

    def render_diet_question(self) -> str:
        return self.foods_page.diet_text.setup_question_html

    def render_diet_current(self, diet: str) -> str:
        text = self.foods_page.diet_text.current_html
        return text.replace("{diet}", escape(self.diet_name(diet)))

    def render_diet_saved(self, diet: str) -> str:
        return self.foods_page.diet_text.saved_html.replace("{diet}", escape(self.diet_name(diet)))

    def render_diet_unknown(self, typed: str) -> str:
        choices = self.ui.join([escape(self.diet_name(diet)) for diet in DIETS])
        text = self.foods_page.diet_text.unknown_html.replace("{choices}", choices)
        return text.replace("{typed}", escape(typed[:40]))

    def _food_list(self, foods: Sequence[Food]) -> str:
        lines = []
        for food in foods:
            note = f" — {food.note_html}" if food.note_html else ""
            if food.note_sources:
                note += f" <i>({self.sources.cite(food.note_sources)})</i>"
            lines.append(f"• {escape(food.name)}{note}")
        return "\n".join(lines)

    def _meal_html(self, idea: MealIdea) -> str:
        """Name, text, its B12 source in plain words, and any caution with its source."""
        b12 = f"{escape(self.foods_page.b12_label)}: {escape(idea.b12)}."
        html = f"<b>{escape(idea.name)}</b> — {idea.text_html}\n<i>{b12}</i>"
        if idea.caution_html:
            cite = self.sources.cite(idea.caution_sources)
            html += f"\n⚠️ {idea.caution_html} <i>({cite})</i>"
        return html

    def rendered_messages(self) -> Iterator[tuple[str, str, str]]:
        """Every message the bot can send from this content: (file name, what, html)."""
        yield "messages.toml", "message 'start'", self.render_start()
        yield "messages.toml", "message 'help'", self.render_help()
        yield "messages.toml", "message 'about'", self.render_about()
        yield "messages.toml", "message 'unknown'", self.render_unknown(OTHER)
        yield "messages.toml", "message 'mechanisms_index'", self.render_mechanism_index()
        yield "messages.toml", "message 'slow_down'", self.render_slow_down()
        yield "tips.toml", "the /tips page", self.render_tips()
        for mechanism in self.mechanisms:
            where = f"mechanism {mechanism.slug!r} page"
            yield "article.toml", where, self.render_mechanism(mechanism.number)
        for diet in DIETS:
            for index, idea in enumerate(self.meals_for(diet)):
                where = f"the {diet} /foods page with meal {idea.id!r}"
                yield "foods.toml", where, self.render_foods(diet, index)
            yield "safety.toml", f"the food reply for {diet}s", self.render_food_reply(diet, 0)
            yield "foods.toml", f"the /diet page for {diet}s", self.render_diet_current(diet)
            yield "foods.toml", f"diet_text saved_html for {diet}s", self.render_diet_saved(diet)
        yield "foods.toml", "diet_text setup_question_html", self.render_diet_question()
        yield "foods.toml", "diet_text unknown_html", self.render_diet_unknown("<carnivore>")
        for topic in self.safety.spec.sleep:
            where = f"the reply to sleep topic {topic.id!r}"
            yield "safety.toml", where, self.render_sleep_reply(topic.id)
        yield from self.safety.rendered_messages()
        for reminder in self.reminder_kinds:
            meals: Sequence[MealIdea | None] = (None,)
            if reminder.kind == "meal":
                meals = (None, *self.meal_ideas)
            for meal in meals:
                with_meal = f" with meal {meal.id!r}" if meal is not None else ""
                where = f"reminder {reminder.kind!r}{with_meal}"
                yield "reminders.toml", where, self.render_reminder(reminder.kind, meal)
            why = self.render_reminder_why(reminder.kind)
            yield "reminders.toml", f"reminder {reminder.kind!r} why_html", why
        for meal in (None, *self.meal_ideas):
            with_meal = f" with meal {meal.id!r}" if meal is not None else ""
            yield "reminders.toml", f"the evening message{with_meal}", self.render_evening(meal)
        yield (
            "reminders.toml",
            "the evening message's why",
            self.render_reminder_why(EXERCISE_KIND, self.meal_ideas[0].id),
        )


def _most_restrictive(diets: frozenset[Diet]) -> Diet:
    for diet in _MOST_RESTRICTIVE_FIRST:
        if diet in diets:
            return diet
    raise ValueError("a meal idea needs at least one diet")  # schema guarantees one


# --------------------------------------------------------------------------------------------
# Loading


def default_content_dir() -> Path:
    """Where content lives unless CONTENT_DIR says otherwise.

    ./content when run from a checkout (editors see their change at once), else the checkout's
    content/ next to the package (editable install), else the copy `pip install .` put under
    <prefix>/share/sleepbot/content.
    """
    local = Path("content")
    if local.is_dir():
        return local
    beside_package = Path(__file__).resolve().parent.parent / "content"
    if beside_package.is_dir():
        return beside_package
    return Path(sys.prefix) / "share" / "sleepbot" / "content"


def load_triage_rules(directory: Path) -> TriageRules:
    """Only the compiled triage patterns (safety.toml, checked against sources.toml)."""
    return load_safety(directory, diets=DIETS).triage


def locale_directory(directory: Path, locale: str) -> Path:
    """content/ holds English; every other locale its own folder, content/zh/."""
    return directory if locale == DEFAULT_LOCALE else directory / locale


def load_locales(directory: Path) -> dict[str, Content]:
    """One validated Content per locale the bot speaks; English is required, and every other
    locale's ui.toml must have English's keys and placeholders (else ContentError)."""
    if directory.name in LOCALES and directory.name != DEFAULT_LOCALE:
        # CONTENT_DIR=content/zh: try one locale's files alone, as everyone's language.
        return {DEFAULT_LOCALE: load_content(directory)}
    english = load_content(directory, locale=DEFAULT_LOCALE)
    locales = {DEFAULT_LOCALE: english}
    for locale in LOCALES:
        if locale != DEFAULT_LOCALE:
            folder = locale_directory(directory, locale)
            problems = compare_locale(directory, folder)
            if problems:
                path, problem = problems[0].split(": ", 1)
                raise ContentError(path, problem)
            locales[locale] = load_content(folder, locale=locale)
    return locales


def load_content(directory: Path, *, locale: str | None = None) -> Content:
    """Load and validate every content file; raise ContentError on the first problem found.

    `locale` defaults to the folder's name when it is one (content/zh), else English.
    """
    if locale is None:
        locale = directory.name if directory.name in LOCALES else DEFAULT_LOCALE
    article_path = directory / "article.toml"
    foods_path = directory / "foods.toml"
    tips_path = directory / "tips.toml"
    reminders_path = directory / "reminders.toml"
    messages_path = directory / "messages.toml"

    article = load_toml(article_path, _ArticleFile)
    foods = load_toml(foods_path, _FoodsFile)
    tips = load_toml(tips_path, _TipsFile)
    reminders = load_toml(reminders_path, _RemindersFile)
    messages = load_toml(messages_path, Messages)
    sources = load_sources(directory)
    ui = load_catalogue(directory, locale)

    _check_article(article_path, article)
    _check_foods(foods_path, foods, sources)
    _check_tips(tips_path, tips)
    _check_reminders(reminders_path, reminders)
    _check_messages(messages_path, messages)
    safety = load_safety(
        directory,
        diets=DIETS,
        mechanism_slugs=[mechanism.slug for mechanism in article.mechanism],
        sources=sources,
    )

    content = Content(
        article=article.source,
        lead_html=article.lead_html,
        caveat_html=tips.caveat_html,
        mechanisms=article.mechanism,
        foods=foods.food,
        meal_ideas=foods.meal,
        reminder_kinds=reminders.reminder,
        evening=reminders.evening,
        foods_page=FoodsPage(
            title=foods.title,
            article_heading=foods.article_heading,
            other_heading=foods.other_heading,
            meal_heading=foods.meal_heading,
            b12_label=foods.b12_label,
            sources_label=foods.sources_label,
            diet=foods.diet,
            diet_text=foods.diet_text,
        ),
        tips_page=TipsPage(
            title=tips.title,
            intro_html=tips.intro_html,
            tips=tips.tip,
            caveats_title=tips.caveats_title,
            caveats_html=tips.caveats_html,
            doctor_html=tips.doctor_html,
        ),
        messages=messages,
        meal_fallback_html=reminders.meal_fallback_html,
        why_heading=reminders.why_heading,
        safety=safety,
        ui=ui,
        diary=load_diary_text(directory),
    )
    _check_morning_messages(directory / DIARY_FILE, content.diary)
    for file_name, where, html in content.rendered_messages():
        check_rendered(directory / file_name, where, html)
    return content


def _check_article(path: Path, article: _ArticleFile) -> None:
    numbers = [mechanism.number for mechanism in article.mechanism]
    missing = [str(number) for number in MECHANISM_NUMBERS if number not in numbers]
    repeated = sorted({str(number) for number in numbers if numbers.count(number) > 1})
    if missing or repeated:
        problems = [f"missing mechanism {', '.join(missing)}"] if missing else []
        problems += [f"duplicate mechanism {', '.join(repeated)}"] if repeated else []
        raise ContentError(path, f"{'; '.join(problems)}: there must be exactly 1 to 5")
    if tuple(numbers) != MECHANISM_NUMBERS:
        raise ContentError(path, f"mechanisms must be listed in order 1 to 5, found {numbers}")
    owners: dict[str, str] = {}
    for mechanism in article.mechanism:
        for key in (mechanism.slug, *mechanism.aliases):
            if key in owners:
                raise ContentError(
                    path,
                    f"mechanism {mechanism.slug!r}: slug or alias {key!r} is already used by "
                    f"mechanism {owners[key]!r}",
                )
            owners[key] = mechanism.slug
    check_html(path, "lead_html", article.lead_html)
    for mechanism in article.mechanism:
        check_html(path, f"mechanism {mechanism.slug!r}", mechanism.body_html)


def _check_diets(path: Path, where: str, diets: frozenset[Diet]) -> None:
    for diet in diets:
        absent = _IMPLIED_DIETS[diet] - diets
        if absent:
            raise ContentError(
                path,
                f"{where}: a {diet} dish also suits {' and '.join(sorted(absent))}; "
                f"list all of them in diets",
            )


def _check_cited(path: Path, where: str, source_ids: Iterable[str], sources: Sources) -> None:
    known = {source.id for source in sources.source}
    for source_id in source_ids:
        if source_id not in known:
            raise ContentError(
                path, f"{where}: unknown source {source_id!r}; add it to sources.toml"
            )


def _check_foods(path: Path, foods: _FoodsFile, sources: Sources) -> None:
    missing_diets = [diet for diet in DIETS if diet not in foods.diet]
    if missing_diets:
        raise ContentError(path, f"diet: missing [diet.{missing_diets[0]}]")
    _check_cited(path, "meal_b12_sources", foods.meal_b12_sources, sources)
    for diet, info in foods.diet.items():
        check_html(path, f"diet {diet!r}: intro_html", info.intro_html)
        if info.note_html:
            check_html(path, f"diet {diet!r}: note_html", info.note_html)
            if not info.note_sources:
                raise ContentError(path, f"diet {diet!r}: a note_html needs its note_sources")
        _check_cited(path, f"diet {diet!r}", info.note_sources, sources)
    check_unique(path, "food name", [food.name.casefold() for food in foods.food])
    for food in foods.food:
        where = f"food {food.name!r}"
        _check_diets(path, where, food.diets)
        if food.note_html:
            check_html(path, where, food.note_html)
        if food.source != ARTICLE_SOURCE:
            _check_cited(path, where, [food.source], sources)
        _check_cited(path, where, food.note_sources, sources)
    check_unique(path, "meal id", [idea.id for idea in foods.meal])
    check_unique(path, "meal name", [idea.name.casefold() for idea in foods.meal])
    for idea in foods.meal:
        _check_meal(path, idea, sources)
    for diet in DIETS:
        count = sum(1 for idea in foods.meal if diet in idea.diets)
        if count < MIN_MEALS_PER_DIET:
            raise ContentError(
                path,
                f"only {count} meal ideas suit {diet}s; at least {MIN_MEALS_PER_DIET} are needed "
                "so nobody gets a repeat within 7 nights",
            )


def _check_meal(path: Path, idea: MealIdea, sources: Sources) -> None:
    where = f"meal {idea.id!r}"
    _check_diets(path, where, idea.diets)
    check_html(path, where, idea.text_html)
    if MEAL_PLACEHOLDER in idea.text_html:
        raise ContentError(path, f"{where}: {MEAL_PLACEHOLDER} only belongs in reminders.toml")
    if idea.b12_daily_value_percent < MIN_MEAL_B12_PERCENT_DV:
        raise ContentError(
            path,
            f"{where}: b12_daily_value_percent {idea.b12_daily_value_percent} is under "
            f"{MIN_MEAL_B12_PERCENT_DV}, so it is not B12-rich (FDA: 'rich in' means at least "
            f"{MIN_MEAL_B12_PERCENT_DV}% of the Daily Value); add a richer source or drop it",
        )
    if "vegan" in idea.diets and not any(word in idea.b12.casefold() for word in _FORTIFIED_WORDS):
        raise ContentError(
            path,
            f"{where}: a vegan idea's b12 must be a fortified food and say so ('fortified' or "
            "'added B12'; 强化 or 添加了 B12): plant foods have no B12 unless fortified",
        )
    dish = f"{idea.name} {idea.text_html}".casefold()
    caution = idea.caution_html.casefold()
    if any(word in dish for word in _LIVER_WORDS) and not any(
        word in caution for word in _PREGNANCY_WORDS
    ):
        raise ContentError(
            path, f"{where}: an idea with liver needs a caution_html about pregnancy (NHS)"
        )
    if idea.caution_html:
        check_html(path, f"{where}: caution_html", idea.caution_html)
        if not idea.caution_sources:
            raise ContentError(path, f"{where}: a caution_html needs its caution_sources")
    _check_cited(path, where, idea.caution_sources, sources)


def _check_tips(path: Path, tips: _TipsFile) -> None:
    check_html(path, "caveat_html", tips.caveat_html)
    check_html(path, "intro_html", tips.intro_html)
    check_html(path, "caveats_html", tips.caveats_html)
    check_html(path, "doctor_html", tips.doctor_html)
    for tip in tips.tip:
        check_html(path, f"tip {tip.title!r}", tip.text_html)


def _check_reminders(path: Path, reminders: _RemindersFile) -> None:
    kinds = [reminder.kind for reminder in reminders.reminder]
    check_unique(path, "reminder kind", kinds)
    if set(kinds) != REMINDER_KINDS:
        missing = ", ".join(sorted(REMINDER_KINDS - set(kinds)))
        raise ContentError(path, f"missing reminder kind(s): {missing}")
    check_html(path, "meal_fallback_html", reminders.meal_fallback_html)
    _check_evening(path, reminders.evening)
    for reminder in reminders.reminder:
        where = f"reminder {reminder.kind!r}"
        check_html(path, f"{where}: text_html", reminder.text_html)
        check_html(path, f"{where}: why_html", reminder.why_html)
        count = reminder.text_html.count(MEAL_PLACEHOLDER)
        if reminder.kind == "meal" and count != 1:
            raise ContentError(
                path, f"{where}: text_html must contain {MEAL_PLACEHOLDER} exactly once"
            )
        if reminder.kind != "meal" and MEAL_PLACEHOLDER in reminder.why_html + reminder.text_html:
            raise ContentError(path, f"{where}: {MEAL_PLACEHOLDER} only works in the meal reminder")
        if reminder.window_before_minutes >= reminder.default_offset_minutes:
            raise ContentError(
                path,
                f"{where}: window_before_minutes ({reminder.window_before_minutes}) must be "
                f"less than default_offset_minutes ({reminder.default_offset_minutes}): "
                "a reminder sent early must still come before bedtime",
            )
        duration = _EXACT_DURATION.search(reminder.text_html)
        if duration:
            raise ContentError(
                path,
                f"{where}: text_html names an exact time ({duration.group(0)!r}); reminders may "
                "go out a few minutes early or late (their send window), so say 'getting "
                "close' rather than 'in 60 minutes'",
            )


def _check_morning_messages(path: Path, diary: DiaryText) -> None:
    """The morning check-in and weekly chart have send windows too: their texts must stay true
    anywhere in them, like the reminders'."""
    for where, text in (
        ("checkin question_html", diary.checkin.question_html),
        ("weekly heading_html", diary.weekly.heading_html),
    ):
        duration = _EXACT_DURATION.search(text)
        if duration:
            raise ContentError(
                path,
                f"{where} names an exact time ({duration.group(0)!r}); it may go out a few "
                "minutes late (its send window), so it must stay true then too",
            )


def _check_evening(path: Path, evening: EveningMessage) -> None:
    check_html(path, "evening: text_html", evening.text_html)
    for placeholder in EVENING_PLACEHOLDERS:
        if evening.text_html.count(placeholder) != 1:
            raise ContentError(path, f"evening: text_html must contain {placeholder} exactly once")
    if MEAL_PLACEHOLDER in evening.text_html:
        raise ContentError(path, f"evening: {MEAL_PLACEHOLDER} belongs in the meal reminder")
    duration = _EXACT_DURATION.search(evening.text_html)
    if duration:
        raise ContentError(
            path,
            f"evening: text_html names an exact time ({duration.group(0)!r}); it may go out a "
            "few minutes early or late, like the reminders it combines",
        )


def _check_messages(path: Path, messages: Messages) -> None:
    for name, html in messages.model_dump().items():
        check_html(path, f"message {name!r}", html)
    if "{lead}" not in messages.mechanisms_index:
        raise ContentError(
            path, "message 'mechanisms_index' must contain {lead} (the article's opening)"
        )
