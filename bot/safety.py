"""content/safety.toml and content/sources.toml: triage patterns, crisis lines, red flags, the dose
reply and the /doctor page, each fact with its source; validated like every content file.

Pure (no Telegram). Loading compiles the triage patterns (bot.triage), so a pattern that can
never match stops start-up with one line naming the file and the pattern.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Final

from pydantic import AfterValidator, Field

from bot.content_schema import (
    ContentError,
    Frozen,
    Html,
    PlainText,
    Slug,
    check_html,
    check_unique,
    load_toml,
)
from bot.telegram_html import escape, visible_text
from bot.triage import Kind, Normaliser, PatternError, TriageRules, compile_rules

SAFETY_FILE: Final = "safety.toml"
SOURCES_FILE: Final = "sources.toml"
MECHANISM_PAGE_PREFIX: Final = "mechanism:"
SLEEP_PAGES: Final = frozenset({"tips", "mechanisms"})
_NUMBER_OUTSIDE_B12: Final = re.compile(r"\d")


def _one_line(value: str) -> str:
    if "\n" in value:
        raise ValueError("must be a single line")
    return value


Pattern = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_one_line)]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
Url = Annotated[str, Field(pattern=r"^https://\S+$")]
SourceIds = Annotated[tuple[Slug, ...], Field(min_length=1)]


# --------------------------------------------------------------------------------------------
# sources.toml


class Source(Frozen):
    """Where a fact from outside the article comes from."""

    id: Slug
    publisher: PlainText
    short: PlainText
    title: PlainText
    url: Url


class Sources(Frozen):
    """Every source a fact in content/ may cite, and when content was last checked against them."""

    reviewed: date
    source: tuple[Source, ...] = Field(min_length=1)

    def get(self, source_id: str) -> Source:
        """The source; KeyError if unknown (loading rules that out for cited ids)."""
        for source in self.source:
            if source.id == source_id:
                return source
        raise KeyError(source_id)

    def cite(self, source_ids: Iterable[str]) -> str:
        """'NHS; AASM': the short names, each once, escaped for HTML."""
        shorts = dict.fromkeys(self.get(source_id).short for source_id in source_ids)
        return escape("; ".join(shorts))

    def link_list(self, source_ids: Iterable[str] | None = None) -> str:
        """One line per publisher, its pages linked: '• NHS: Sleep apnoea, Insomnia'."""
        wanted = None if source_ids is None else set(source_ids)
        by_publisher: dict[str, list[Source]] = {}
        for source in self.source:
            if wanted is None or source.id in wanted:
                by_publisher.setdefault(source.publisher, []).append(source)
        lines = []
        for publisher, sources in by_publisher.items():
            links = ", ".join(f'<a href="{escape(s.url)}">{escape(s.title)}</a>' for s in sources)
            lines.append(f"• {escape(publisher)}: {links}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# safety.toml


FuzzyWord = Annotated[str, Field(pattern=r"^[^\W\d_]{5,}$")]
"""A single word of at least five letters (shorter ones collide with real words)."""


class _Normalise(Frozen):
    replace: tuple[tuple[Pattern, Pattern], ...] = ()
    fuzzy: tuple[FuzzyWord, ...] = ()


class CrisisLine(Frozen):
    """A crisis line for people in these countries, and their emergency number."""

    countries: tuple[CountryCode, ...] = Field(min_length=1)
    where: PlainText
    emergency: PlainText
    text_html: Html
    source: Slug


class Crisis(Frozen):
    patterns: tuple[Pattern, ...] = Field(min_length=1)
    look_alikes: tuple[Pattern, ...] = ()
    message_html: Html
    emergency_unknown: PlainText
    list_item_html: Html
    line: tuple[CrisisLine, ...] = Field(min_length=1)


class RedFlag(Frozen):
    """A sign worth seeing a doctor about: its patterns, its one-line why, its sources."""

    id: Slug
    patterns: tuple[Pattern, ...] = Field(min_length=1)
    sign_html: str = ""
    why_html: Html
    sources: SourceIds


class DoseQuestions(Frozen):
    patterns: tuple[Pattern, ...] = Field(min_length=1)
    reply_html: Html
    sources: SourceIds


class FoodQuestions(Frozen):
    patterns: tuple[Pattern, ...] = Field(min_length=1)
    lead_html: Html
    diets: dict[str, tuple[Pattern, ...]]


class SleepTopic(Frozen):
    """A sleep question's topic and the page that answers it."""

    id: Slug
    page: str = Field(min_length=1)
    patterns: tuple[Pattern, ...] = Field(min_length=1)
    lead_html: Html


class DoctorFact(Frozen):
    text_html: Html
    sources: SourceIds


class DoctorSection(Frozen):
    heading: PlainText
    fact: tuple[DoctorFact, ...] = Field(min_length=1)


class DoctorPage(Frozen):
    title: PlainText
    intro_html: Html
    signs_heading: PlainText
    crisis_html: Html
    sources_heading: PlainText
    section: tuple[DoctorSection, ...] = ()


class _SafetyFile(Frozen):
    normalise: _Normalise
    crisis: Crisis
    red_flag_html: Html
    dose_note_html: Html
    red_flag: tuple[RedFlag, ...] = Field(min_length=1)
    dose: DoseQuestions
    food: FoodQuestions
    sleep: tuple[SleepTopic, ...] = Field(min_length=1)
    doctor: DoctorPage


@dataclass(frozen=True)
class Safety:
    """The validated safety content, its compiled triage rules, and the messages built from it."""

    sources: Sources
    spec: _SafetyFile
    triage: TriageRules

    def red_flag(self, flag_id: str) -> RedFlag:
        """The red flag; KeyError if unknown."""
        for flag in self.spec.red_flag:
            if flag.id == flag_id:
                return flag
        raise KeyError(flag_id)

    def sleep_topic(self, topic_id: str) -> SleepTopic:
        """The sleep topic; KeyError if unknown."""
        for topic in self.spec.sleep:
            if topic.id == topic_id:
                return topic
        raise KeyError(topic_id)

    def crisis_lines(self, country: str | None) -> tuple[CrisisLine, ...]:
        """The lines for this country; empty when it has none (then everyone's are shown)."""
        if country is None:
            return ()
        return tuple(line for line in self.spec.crisis.line if country in line.countries)

    def render_crisis(self, country: str | None) -> str:
        """The crisis message: the country's emergency number and line(s), else all of them."""
        crisis = self.spec.crisis
        local = self.crisis_lines(country)
        if local:
            emergency = f"<b>{escape(local[0].emergency)}</b>"
            lines = "\n".join(f"• {line.text_html}" for line in local)
        else:
            emergency = escape(crisis.emergency_unknown)
            lines = "\n".join(
                "• "
                + _fill(
                    crisis.list_item_html,
                    where=escape(line.where),
                    line=line.text_html,
                    emergency=escape(line.emergency),
                )
                for line in crisis.line
            )
        return _fill(crisis.message_html, emergency=emergency, lines=lines)

    def render_red_flag(self, flag_id: str, *, with_dose: bool = False) -> str:
        """'Worth seeing a doctor about', the flag's one-line why with its source, /doctor."""
        flag = self.red_flag(flag_id)
        why = f"{flag.why_html} <i>({self.sources.cite(flag.sources)})</i>"
        dose = f"{self.spec.dose_note_html}\n" if with_dose else ""
        return _fill(self.spec.red_flag_html, why=why, dose=dose)

    def render_dose(self) -> str:
        return self.spec.dose.reply_html

    def render_doctor(self) -> str:
        """/doctor: the red flags' signs, the sections, the crisis line, the sources cited."""
        page = self.spec.doctor
        cited: list[str] = []
        signs = []
        for flag in self.spec.red_flag:
            if flag.sign_html:
                signs.append(f"• {flag.sign_html} <i>({self.sources.cite(flag.sources)})</i>")
                cited.extend(flag.sources)
        parts = [f"<b>{escape(page.title)}</b>", page.intro_html]
        if signs:
            parts.append(f"<b>{escape(page.signs_heading)}</b>\n" + "\n".join(signs))
        for section in page.section:
            facts = []
            for fact in section.fact:
                facts.append(f"• {fact.text_html} <i>({self.sources.cite(fact.sources)})</i>")
                cited.extend(fact.sources)
            parts.append(f"<b>{escape(section.heading)}</b>\n" + "\n".join(facts))
        parts.append(page.crisis_html)
        parts.append(f"<b>{escape(page.sources_heading)}</b>\n{self.sources.link_list(cited)}")
        return "\n\n".join(parts)

    def rendered_messages(self) -> Iterator[tuple[str, str, str]]:
        """Every message built only from safety content: (file name, what, html)."""
        yield SAFETY_FILE, "the crisis message for an unknown country", self.render_crisis(None)
        for line in self.spec.crisis.line:
            for country in line.countries:
                where = f"the crisis message for {country}"
                yield SAFETY_FILE, where, self.render_crisis(country)
        for flag in self.spec.red_flag:
            for with_dose in (False, True):
                where = f"red flag {flag.id!r}" + (" with a dose question" if with_dose else "")
                yield SAFETY_FILE, where, self.render_red_flag(flag.id, with_dose=with_dose)
        yield SAFETY_FILE, "dose reply_html", self.render_dose()
        yield SAFETY_FILE, "the /doctor page", self.render_doctor()


def _fill(template: str, **values: str) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


# --------------------------------------------------------------------------------------------
# Loading


def load_sources(directory: Path) -> Sources:
    path = directory / SOURCES_FILE
    sources = load_toml(path, Sources)
    check_unique(path, "source id", [source.id for source in sources.source])
    return sources


def load_safety(
    directory: Path,
    *,
    diets: Sequence[str],
    mechanism_slugs: Sequence[str] | None = None,
    sources: Sources | None = None,
) -> Safety:
    """Load, check and compile safety.toml against sources.toml, the diets and the mechanisms.

    `mechanism_slugs` None skips the check of sleep pages (when only the triage rules are
    needed, e.g. by incoming flood control).
    """
    sources = sources or load_sources(directory)
    path = directory / SAFETY_FILE
    spec = load_toml(path, _SafetyFile)
    _check_spec(path, spec, sources, diets, mechanism_slugs)
    try:
        triage = _compile(spec)
    except PatternError as error:
        raise ContentError(path, str(error)) from None
    return Safety(sources=sources, spec=spec, triage=triage)


def _compile(spec: _SafetyFile) -> TriageRules:
    normaliser = Normaliser(
        replacements=tuple((source, target) for source, target in spec.normalise.replace),
        fuzzy_words=frozenset(spec.normalise.fuzzy),
    )
    rules: list[tuple[Kind, str, Sequence[str]]] = [
        (Kind.RED_FLAG, flag.id, flag.patterns) for flag in spec.red_flag
    ]
    rules.append((Kind.DOSE, "dose", spec.dose.patterns))
    rules.append((Kind.FOOD, "food", spec.food.patterns))
    rules.extend((Kind.SLEEP, topic.id, topic.patterns) for topic in spec.sleep)
    return compile_rules(
        normaliser=normaliser,
        crisis=spec.crisis.patterns,
        look_alikes=spec.crisis.look_alikes,
        rules=rules,
        diets=spec.food.diets,
    )


def _check_spec(
    path: Path,
    spec: _SafetyFile,
    sources: Sources,
    diets: Sequence[str],
    mechanism_slugs: Sequence[str] | None,
) -> None:
    known = {source.id for source in sources.source}

    def cited(where: str, source_ids: Iterable[str]) -> None:
        for source_id in source_ids:
            if source_id not in known:
                raise ContentError(
                    path, f"{where}: unknown source {source_id!r}; add it to {SOURCES_FILE}"
                )

    crisis = spec.crisis
    for name in ("{emergency}", "{lines}"):
        if name not in crisis.message_html:
            raise ContentError(path, f"crisis message_html must contain {name}")
    for name in ("{where}", "{line}"):
        if name not in crisis.list_item_html:
            raise ContentError(path, f"crisis list_item_html must contain {name}")
    check_html(path, "crisis message_html", crisis.message_html)
    for line in crisis.line:
        where = f"crisis line for {', '.join(line.countries)}"
        check_html(path, where, line.text_html)
        cited(where, [line.source])
    check_unique(
        path, "crisis line country", [country for line in crisis.line for country in line.countries]
    )
    for name in ("{why}", "{dose}"):
        if name not in spec.red_flag_html:
            raise ContentError(path, f"red_flag_html must contain {name}")
    check_unique(path, "red flag id", [flag.id for flag in spec.red_flag])
    for flag in spec.red_flag:
        where = f"red flag {flag.id!r}"
        check_html(path, f"{where}: why_html", flag.why_html)
        if flag.sign_html:
            check_html(path, f"{where}: sign_html", flag.sign_html)
        cited(where, flag.sources)
    reply = visible_text(spec.dose.reply_html) + visible_text(spec.dose_note_html)
    if _NUMBER_OUTSIDE_B12.search(re.sub("b12", "", reply, flags=re.IGNORECASE)):
        raise ContentError(
            path, "dose: no numbers in the dose replies (amounts are for a doctor to decide)"
        )
    cited("dose", spec.dose.sources)
    unknown_diets = sorted(set(spec.food.diets) - set(diets))
    if unknown_diets:
        raise ContentError(
            path, f"food.diets: unknown diet {unknown_diets[0]!r}; use {', '.join(diets)}"
        )
    check_unique(path, "sleep topic id", [topic.id for topic in spec.sleep])
    for topic in spec.sleep:
        page = topic.page
        slug = page.removeprefix(MECHANISM_PAGE_PREFIX)
        valid = page in SLEEP_PAGES or (
            page.startswith(MECHANISM_PAGE_PREFIX)
            and (mechanism_slugs is None or slug in mechanism_slugs)
        )
        if not valid:
            raise ContentError(
                path,
                f"sleep {topic.id!r}: page {page!r} should be 'tips', 'mechanisms' or "
                f"'mechanism:<slug>' with a slug from article.toml",
            )
    for section in spec.doctor.section:
        for fact in section.fact:
            cited(f"doctor section {section.heading!r}", fact.sources)
