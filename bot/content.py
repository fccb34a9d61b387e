"""Everything the bot says, loaded once from content/*.toml and validated before it is ever sent.

Non-programmers edit the TOML files, so every mistake must surface at start-up as one clear line
naming the file and the problem (ContentError), never as a Telegram "can't parse entities"
error in front of a user at 22:00. Validation therefore runs on every *rendered* message, not
just on the fragments, because that is what Telegram sees. Pure: no Telegram imports.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from bot.telegram_html import (
    MAX_MESSAGE_LENGTH,
    TelegramHTMLError,
    check_telegram_html,
    escape,
    telegram_length,
)

Diet = Literal["omnivore", "pescatarian", "vegetarian"]
DIETS: Final[tuple[Diet, ...]] = ("omnivore", "pescatarian", "vegetarian")
ReminderKindName = Literal["meal", "exercise", "wind_down"]
REMINDER_KINDS: Final[frozenset[str]] = frozenset({"meal", "exercise", "wind_down"})
MECHANISM_NUMBERS: Final = (1, 2, 3, 4, 5)
MAX_BUTTON_LABEL_LENGTH: Final = 64
MIN_MEALS_PER_DIET: Final = 8
"""Eight ideas per diet, so nobody is offered the same meal twice within seven nights."""
MEAL_PLACEHOLDER: Final = "{meal}"
ARTICLE_SOURCE: Final = "article"
"""The `source` value of foods the article itself names."""

_PLACEHOLDER: Final = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
_LOOKS_LIKE_HTML: Final = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*[\s>/]|&(?:[A-Za-z]+|#\w+);")
_SLUG_PATTERN: Final = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
# Which diets each diet implies: a vegetarian dish is also fine for pescatarians and omnivores.
_IMPLIED_DIETS: Final[dict[Diet, frozenset[Diet]]] = {
    "vegetarian": frozenset({"pescatarian", "omnivore"}),
    "pescatarian": frozenset({"omnivore"}),
    "omnivore": frozenset(),
}


class ContentError(Exception):
    """A problem in content/: str() is one line, '<file>: <what is wrong>'."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


# --------------------------------------------------------------------------------------------
# Field types


def _plain_text(value: str) -> str:
    """Plain-text fields are escaped when shown, so HTML there would appear literally."""
    if _LOOKS_LIKE_HTML.search(value):
        raise ValueError("plain text only, no HTML tags or entities here (only *_html fields)")
    return value


def _single_line(value: str) -> str:
    if "\n" in value:
        raise ValueError("must be a single line")
    return value


def normalise_key(key: str) -> str:
    """How people's typed keys and aliases compare: case-, space- and '_'-insensitive."""
    key = key.strip().lower().lstrip("#").rstrip(".")
    return re.sub(r"[\s_-]+", "-", key).strip("-")


def _normalise_alias(value: object) -> object:
    return normalise_key(value) if isinstance(value, str) else value


def _slug(value: str) -> str:
    if not re.fullmatch(_SLUG_PATTERN, value):
        raise ValueError(
            "use only lowercase letters, digits and single hyphens, like 'salmon-rice'"
        )
    return value


def _alias(value: str) -> str:
    _slug(value)
    if value.isdigit():
        raise ValueError("an alias can't be just a number (numbers already pick mechanisms)")
    return value


def _diets(value: frozenset[Diet]) -> frozenset[Diet]:
    if not value:
        raise ValueError('list at least one diet, e.g. ["omnivore", "pescatarian"]')
    return value


Html = Annotated[str, Field(min_length=1)]
PlainText = Annotated[str, Field(min_length=1), AfterValidator(_plain_text)]
Label = Annotated[
    str,
    Field(min_length=1, max_length=MAX_BUTTON_LABEL_LENGTH),
    AfterValidator(_single_line),
    AfterValidator(_plain_text),
]
Slug = Annotated[str, Field(max_length=40), AfterValidator(_slug)]
Alias = Annotated[
    str, BeforeValidator(_normalise_alias), Field(max_length=40), AfterValidator(_alias)
]
Diets = Annotated[frozenset[Diet], AfterValidator(_diets)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


# --------------------------------------------------------------------------------------------
# Public models


class Mechanism(_Frozen):
    """One of the article's five numbered sections, as a page in /mechanisms."""

    number: int = Field(ge=1, le=5)
    slug: Slug
    aliases: tuple[Alias, ...] = ()
    title: PlainText
    label: Label
    body_html: Html


class Food(_Frozen):
    """A B12-rich food; `source` is "article" or the authoritative source naming it."""

    name: PlainText
    note_html: str = ""
    diets: Diets
    source: PlainText


class MealIdea(_Frozen):
    """An evening meal idea; `diets` lists everyone who can eat it."""

    id: Slug
    name: Annotated[PlainText, Field(max_length=MAX_BUTTON_LABEL_LENGTH)]
    diets: Diets
    text_html: Html


class ReminderKind(_Frozen):
    """One of the three nightly reminders and the article passage that justifies it."""

    kind: ReminderKindName
    title: PlainText
    label: Label
    default_offset_minutes: int = Field(gt=0, le=720)  # the scheduler caps offsets at 12 h
    text_html: Html
    why_html: Html


class Tip(_Frozen):
    """One piece of the article's sleep advice (/tips)."""

    title: PlainText
    text_html: Html


class Messages(_Frozen):
    """The bot's own copy (messages.toml); all values are Telegram HTML templates."""

    start: Html
    help: Html
    about: Html
    unknown: Html
    mechanisms_index: Html
    slow_down: Html


class ArticleInfo(_Frozen):
    """What the bot says about its single source."""

    title: PlainText
    note: PlainText


class FoodsPage(_Frozen):
    """Wording around the food list on /foods."""

    title: PlainText
    intro_html: Html
    article_heading: PlainText
    other_heading: PlainText
    diet_labels: dict[Diet, PlainText]


class TipsPage(_Frozen):
    """Wording of /tips and the caveats that must always accompany it."""

    title: PlainText
    intro_html: Html
    tips: tuple[Tip, ...]
    caveats_title: PlainText
    caveats_html: Html


# --------------------------------------------------------------------------------------------
# File schemas (the TOML layout; keys are singular because each [[table]] is one item)


class _ArticleFile(_Frozen):
    source: ArticleInfo
    lead_html: Html
    mechanism: tuple[Mechanism, ...]


class _FoodsFile(_Frozen):
    title: PlainText
    intro_html: Html
    article_heading: PlainText
    other_heading: PlainText
    diet_labels: dict[Diet, PlainText]
    food: tuple[Food, ...] = Field(min_length=1)
    meal: tuple[MealIdea, ...] = Field(min_length=1)


class _TipsFile(_Frozen):
    caveat_html: Html
    title: PlainText
    intro_html: Html
    tip: tuple[Tip, ...] = Field(min_length=1)
    caveats_title: PlainText
    caveats_html: Html


class _RemindersFile(_Frozen):
    meal_fallback_html: Html
    why_heading: PlainText = "Why this reminder?"
    reminder: tuple[ReminderKind, ...]


# --------------------------------------------------------------------------------------------
# Content


class Content(_Frozen):
    """All bot content, validated; render_* return Telegram HTML that is known to be valid."""

    article: ArticleInfo
    lead_html: str
    caveat_html: str
    mechanisms: tuple[Mechanism, ...]
    foods: tuple[Food, ...]
    meal_ideas: tuple[MealIdea, ...]
    reminder_kinds: tuple[ReminderKind, ...]
    foods_page: FoodsPage
    tips_page: TipsPage
    messages: Messages
    meal_fallback_html: str
    why_heading: str

    # -- look-ups ------------------------------------------------------------------------

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

    def reminder_kind(self, kind: str) -> ReminderKind:
        """The reminder kind; KeyError if unknown."""
        for reminder in self.reminder_kinds:
            if reminder.kind == kind:
                return reminder
        raise KeyError(kind)

    # -- rendering -----------------------------------------------------------------------

    def _fill(self, template: str, **extra: str) -> str:
        values = {"{source_title}": escape(self.article.title)}
        values.update({"{" + name + "}": value for name, value in extra.items()})
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

    def render_unknown(self) -> str:
        return self._fill(self.messages.unknown)

    def render_slow_down(self) -> str:
        """The one notice a chat gets when it floods the bot (bot/flood.py)."""
        return self._fill(self.messages.slow_down)

    def render_tips(self) -> str:
        page = self.tips_page
        tips = "\n".join(f"• <b>{escape(tip.title)}.</b> {tip.text_html}" for tip in page.tips)
        return (
            f"<b>{escape(page.title)}</b>\n\n{page.intro_html}\n\n{tips}\n\n"
            f"<b>{escape(page.caveats_title)}</b>\n{page.caveats_html}"
        )

    def render_mechanism_index(self) -> str:
        return self._fill(self.messages.mechanisms_index, lead=self.lead_html)

    def render_mechanism(self, number: int) -> str:
        """Title + the article's text + caveat footer; KeyError for an unknown number."""
        mechanism = self.mechanism(number)
        return (
            f"<b>{mechanism.number}. {escape(mechanism.title)}</b>\n\n"
            f"{mechanism.body_html}\n\n{self._footer()}"
        )

    def render_foods(self, meal_index: int) -> str:
        """The B12-rich food list plus meal idea number meal_index (wrapping around)."""
        page = self.foods_page
        named = [food for food in self.foods if food.source == ARTICLE_SOURCE]
        others = [food for food in self.foods if food.source != ARTICLE_SOURCE]
        parts = [f"<b>{escape(page.title)}</b>", page.intro_html]
        if named:
            parts.append(f"<b>{escape(page.article_heading)}</b>\n{_food_list(named)}")
        if others:
            sources = "; ".join(dict.fromkeys(escape(food.source) for food in others))
            parts.append(
                f"<b>{escape(page.other_heading)}</b>\n{_food_list(others)}\n"
                f"<i>Source: {sources}</i>"
            )
        position = meal_index % len(self.meal_ideas)
        idea = self.meal_ideas[position]
        label = escape(page.diet_labels[_most_restrictive(idea.diets)])
        parts.append(
            f"<b>Meal idea {position + 1} of {len(self.meal_ideas)}</b> ({label})\n"
            f"{_meal_html(idea)}"
        )
        parts.append(self._footer())
        return "\n\n".join(parts)

    def render_reminder(self, kind: str, meal: MealIdea | None) -> str:
        """The reminder message; for "meal", `meal` fills {meal} (None: a generic fallback)."""
        reminder = self.reminder_kind(kind)
        text = reminder.text_html
        if reminder.kind == "meal":
            meal_html = _meal_html(meal) if meal is not None else self.meal_fallback_html
            text = text.replace(MEAL_PLACEHOLDER, meal_html)
        return f"<b>{escape(reminder.title)}</b>\n\n{self._fill(text)}"

    def render_reminder_why(self, kind: str) -> str:
        """The article passage behind a reminder (the "Why?" button)."""
        reminder = self.reminder_kind(kind)
        return f"<b>{escape(self.why_heading)}</b>\n\n{self._fill(reminder.why_html)}"

    def rendered_messages(self) -> Iterator[tuple[str, str, str]]:
        """Every message the bot can send from this content: (file name, what, html)."""
        yield "messages.toml", "message 'start'", self.render_start()
        yield "messages.toml", "message 'help'", self.render_help()
        yield "messages.toml", "message 'about'", self.render_about()
        yield "messages.toml", "message 'unknown'", self.render_unknown()
        yield "messages.toml", "message 'mechanisms_index'", self.render_mechanism_index()
        yield "messages.toml", "message 'slow_down'", self.render_slow_down()
        yield "tips.toml", "the /tips page", self.render_tips()
        for mechanism in self.mechanisms:
            where = f"mechanism {mechanism.slug!r} page"
            yield "article.toml", where, self.render_mechanism(mechanism.number)
        for index, idea in enumerate(self.meal_ideas):
            yield "foods.toml", f"the /foods page with meal {idea.id!r}", self.render_foods(index)
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


def _food_list(foods: Sequence[Food]) -> str:
    lines = []
    for food in foods:
        note = f" — {food.note_html}" if food.note_html else ""
        lines.append(f"• {escape(food.name)}{note}")
    return "\n".join(lines)


def _meal_html(idea: MealIdea) -> str:
    return f"<b>{escape(idea.name)}</b> — {idea.text_html}"


def _most_restrictive(diets: frozenset[Diet]) -> Diet:
    for diet in ("vegetarian", "pescatarian", "omnivore"):
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


_M = TypeVar("_M", bound=BaseModel)


def load_content(directory: Path) -> Content:
    """Load and validate every content file; raise ContentError on the first problem found."""
    article_path = directory / "article.toml"
    foods_path = directory / "foods.toml"
    tips_path = directory / "tips.toml"
    reminders_path = directory / "reminders.toml"
    messages_path = directory / "messages.toml"

    article = _load(article_path, _ArticleFile)
    foods = _load(foods_path, _FoodsFile)
    tips = _load(tips_path, _TipsFile)
    reminders = _load(reminders_path, _RemindersFile)
    messages = _load(messages_path, Messages)

    _check_article(article_path, article)
    _check_foods(foods_path, foods)
    _check_tips(tips_path, tips)
    _check_reminders(reminders_path, reminders)
    _check_messages(messages_path, messages)

    content = Content(
        article=article.source,
        lead_html=article.lead_html,
        caveat_html=tips.caveat_html,
        mechanisms=article.mechanism,
        foods=foods.food,
        meal_ideas=foods.meal,
        reminder_kinds=reminders.reminder,
        foods_page=FoodsPage(
            title=foods.title,
            intro_html=foods.intro_html,
            article_heading=foods.article_heading,
            other_heading=foods.other_heading,
            diet_labels=foods.diet_labels,
        ),
        tips_page=TipsPage(
            title=tips.title,
            intro_html=tips.intro_html,
            tips=tips.tip,
            caveats_title=tips.caveats_title,
            caveats_html=tips.caveats_html,
        ),
        messages=messages,
        meal_fallback_html=reminders.meal_fallback_html,
        why_heading=reminders.why_heading,
    )
    for file_name, where, html in content.rendered_messages():
        _check_rendered(directory / file_name, where, html)
    return content


def _load(path: Path, schema: type[_M]) -> _M:
    """Parse one TOML file into its schema, turning every failure into a one-line ContentError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ContentError(path, "file not found") from None
    except OSError as exc:
        raise ContentError(path, f"cannot read file: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContentError(path, f"not valid UTF-8 (byte {exc.start}); save as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ContentError(path, f"TOML syntax error: {exc}") from None
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ContentError(path, _describe_validation_error(exc, data)) from None


def _describe_validation_error(exc: ValidationError, data: Mapping[str, Any]) -> str:
    """Pydantic's multi-line report as one line an editor can act on."""
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        kind = error["type"]
        if kind == "missing":
            where, message = _describe_loc(loc[:-1], data), f"missing field {loc[-1]!r}"
        elif kind == "extra_forbidden":
            where, message = _describe_loc(loc[:-1], data), f"unknown field {loc[-1]!r} (typo?)"
        else:
            where, message = _describe_loc(loc, data), _friendly_message(error)
        problems.append(f"{where}: {message}" if where else message)
    shown = problems[:3]
    if len(problems) > len(shown):
        shown.append(f"and {len(problems) - len(shown)} more")
    return "; ".join(shown)


_TYPE_HINTS: Final = {
    "frozen_set_type": 'should be a list in square brackets, e.g. ["omnivore"]',
    "tuple_type": "should be a list in square brackets",
    "list_type": "should be a list in square brackets",
    "string_type": "should be text in quotes",
    "int_type": "should be a whole number",
    "int_parsing": "should be a whole number",
    "int_from_float": "should be a whole number",
    "model_type": "should be a table of keys and values",
    "dict_type": "should be a table of keys and values",
}


def _friendly_message(error: ErrorDetails) -> str:
    kind = error["type"]
    given = error.get("input")
    if kind in _TYPE_HINTS:
        message = _TYPE_HINTS[kind]
    elif kind == "string_too_long" and isinstance(given, str):
        limit = (error.get("ctx") or {}).get("max_length")
        return f"too long: at most {limit} characters, this one has {len(given)}"
    elif kind == "string_too_short":
        return "must not be empty"
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
    if isinstance(given, str | int | float | bool) and len(repr(given)) <= 40:
        message += f" (got {given!r})"
    return message


def _describe_loc(loc: tuple[int | str, ...], data: Mapping[str, Any]) -> str:
    """('meal', 3, 'diets') -> "meal 'salmon-rice': diets" using the item's own id."""
    parts: list[str] = []
    node: Any = data
    index = 0
    while index < len(loc):
        key = loc[index]
        child = node.get(key) if isinstance(node, Mapping) else None
        following = loc[index + 1] if index + 1 < len(loc) else None
        if isinstance(key, str) and isinstance(following, int) and isinstance(child, list):
            item = child[following] if following < len(child) else None
            parts.append(_item_name(key, item, following) + ":")
            node = item
            index += 2
            continue
        parts.append(f"[{key}]" if isinstance(key, int) else str(key))
        node = child
        index += 1
    return " ".join(parts).rstrip(":")


def _item_name(table: str, item: object, index: int) -> str:
    if isinstance(item, Mapping):
        for key in ("id", "slug", "kind", "name", "title"):
            value = item.get(key)
            if isinstance(value, str) and value.strip():
                return f"{table} {value.strip()!r}"
    return f"{table} #{index + 1}"


def _check_html(path: Path, where: str, html: str) -> None:
    try:
        check_telegram_html(html)
    except TelegramHTMLError as exc:
        raise ContentError(path, f"{where}: {exc}") from None


def _check_unique(path: Path, what: str, values: Sequence[str]) -> None:
    duplicates = sorted(value for value, count in Counter(values).items() if count > 1)
    if duplicates:
        raise ContentError(path, f"duplicate {what}: {', '.join(map(repr, duplicates))}")


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
    _check_html(path, "lead_html", article.lead_html)
    for mechanism in article.mechanism:
        _check_html(path, f"mechanism {mechanism.slug!r}", mechanism.body_html)


def _check_diets(path: Path, where: str, diets: frozenset[Diet]) -> None:
    for diet in diets:
        absent = _IMPLIED_DIETS[diet] - diets
        if absent:
            raise ContentError(
                path,
                f"{where}: a {diet} dish also suits {' and '.join(sorted(absent))}; "
                f"list all of them in diets",
            )


def _check_foods(path: Path, foods: _FoodsFile) -> None:
    missing_labels = [diet for diet in DIETS if diet not in foods.diet_labels]
    if missing_labels:
        raise ContentError(path, f"diet_labels: missing {', '.join(missing_labels)}")
    _check_html(path, "intro_html", foods.intro_html)
    _check_unique(path, "food name", [food.name.casefold() for food in foods.food])
    for food in foods.food:
        where = f"food {food.name!r}"
        _check_diets(path, where, food.diets)
        if food.note_html:
            _check_html(path, where, food.note_html)
    _check_unique(path, "meal id", [idea.id for idea in foods.meal])
    _check_unique(path, "meal name", [idea.name.casefold() for idea in foods.meal])
    for idea in foods.meal:
        where = f"meal {idea.id!r}"
        _check_diets(path, where, idea.diets)
        _check_html(path, where, idea.text_html)
        if MEAL_PLACEHOLDER in idea.text_html:
            raise ContentError(path, f"{where}: {MEAL_PLACEHOLDER} only belongs in reminders.toml")
    for diet in DIETS:
        count = sum(1 for idea in foods.meal if diet in idea.diets)
        if count < MIN_MEALS_PER_DIET:
            raise ContentError(
                path,
                f"only {count} meal ideas suit {diet}s; at least {MIN_MEALS_PER_DIET} are needed "
                "so nobody gets a repeat within 7 nights",
            )


def _check_tips(path: Path, tips: _TipsFile) -> None:
    _check_html(path, "caveat_html", tips.caveat_html)
    _check_html(path, "intro_html", tips.intro_html)
    _check_html(path, "caveats_html", tips.caveats_html)
    for tip in tips.tip:
        _check_html(path, f"tip {tip.title!r}", tip.text_html)


def _check_reminders(path: Path, reminders: _RemindersFile) -> None:
    kinds = [reminder.kind for reminder in reminders.reminder]
    _check_unique(path, "reminder kind", kinds)
    if set(kinds) != REMINDER_KINDS:
        missing = ", ".join(sorted(REMINDER_KINDS - set(kinds)))
        raise ContentError(path, f"missing reminder kind(s): {missing}")
    _check_html(path, "meal_fallback_html", reminders.meal_fallback_html)
    for reminder in reminders.reminder:
        where = f"reminder {reminder.kind!r}"
        _check_html(path, f"{where}: text_html", reminder.text_html)
        _check_html(path, f"{where}: why_html", reminder.why_html)
        count = reminder.text_html.count(MEAL_PLACEHOLDER)
        if reminder.kind == "meal" and count != 1:
            raise ContentError(
                path, f"{where}: text_html must contain {MEAL_PLACEHOLDER} exactly once"
            )
        if reminder.kind != "meal" and MEAL_PLACEHOLDER in reminder.why_html + reminder.text_html:
            raise ContentError(path, f"{where}: {MEAL_PLACEHOLDER} only works in the meal reminder")


def _check_messages(path: Path, messages: Messages) -> None:
    for name, html in messages.model_dump().items():
        _check_html(path, f"message {name!r}", html)
    if "{lead}" not in messages.mechanisms_index:
        raise ContentError(
            path, "message 'mechanisms_index' must contain {lead} (the article's opening)"
        )


def _check_rendered(path: Path, where: str, html: str) -> None:
    """The final check, on exactly what Telegram will receive."""
    _check_html(path, where, html)
    leftover = _PLACEHOLDER.search(html)
    if leftover:
        raise ContentError(path, f"{where}: unknown placeholder {leftover.group(0)}")
    length = telegram_length(html)
    if length > MAX_MESSAGE_LENGTH:
        raise ContentError(
            path, f"{where}: {length} characters, over Telegram's limit of {MAX_MESSAGE_LENGTH}"
        )
