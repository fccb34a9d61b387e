"""Turn what a person types or shares into a stored timezone key, and keys back into tzinfo.

Keys are plain strings so storage stays simple and readable: an IANA name ("Europe/Berlin") or a
fixed offset written "UTC+05:30" / "UTC-03:00" / "UTC". Everything here works offline: IANA
names come from zoneinfo/tzdata, cities from GeoNames (population ≥ 15 000, shipped compressed
in bot/data/), coordinates from timezonefinder. Nothing guesses silently: unknown input gets a
problem message, and a city name shared by places in different timezones gets a short "did you
mean" list instead. So does anything less certain than a city's own name: an alternate name
("Bombay", airport codes), an input of three letters or fewer that is not a known abbreviation,
or an abbreviation several regions use (IST: India, Ireland, Israel).

A problem is the key of its message under [problem] in ui.toml (the person's language) plus
what they typed; labels are plain text. Escape both before sending with a Telegram parse mode.
"""

from __future__ import annotations

import bisect
import ctypes
import functools
import gc
import lzma
import math
import re
import threading
import unicodedata
from array import array
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Final, NamedTuple
from zoneinfo import ZoneInfo, available_timezones

if TYPE_CHECKING:
    from timezonefinder import TimezoneFinder


MIN_OFFSET_MINUTES: Final = -12 * 60
MAX_OFFSET_MINUTES: Final = 14 * 60
MAX_CANDIDATES: Final = 5
# The biggest city wins outright when it is this many times bigger than the biggest city with
# the same name in another timezone (Paris, France vs Paris, Texas).
DOMINANCE: Final = 10
_MAX_QUERY_LENGTH: Final = 100
# Inputs this short ("mos", "san", "jst") are as likely codes as names: never a confident city.
_MAX_SHORT_QUERY: Final = 3
_NOT_ZONES: Final = frozenset({"Factory", "localtime", "posixrules"})

_NON_WORD: Final = re.compile(r"[\W_]+")
# Words that place names abbreviate inconsistently ("St. Petersburg", "Saint Petersburg",
# "Sankt Gallen"), each folded to one spelling so every form finds the same cities.
_NAME_WORDS: Final = {
    "st": "saint",
    "ste": "saint",
    "sainte": "saint",
    "sankt": "saint",
    "ft": "fort",
    "mt": "mount",
}
_NAME_WORD: Final = re.compile(r"\b(?:st|ste|sainte|sankt|ft|mt)\b")
_LATIN_LETTER: Final = re.compile(r"[A-Za-z]")
_OFFSET_KEY: Final = re.compile(r"UTC([+-])(\d{2}):(\d{2})")
_OFFSET_QUERY: Final = re.compile(
    r"(?:(?:UTC|GMT)\s*)?([+\-−–])\s*(\d{1,2})(?::?(\d{2}))?", re.IGNORECASE
)


class UnknownTimezone(ValueError):
    """A timezone key that is neither a known IANA name nor a valid fixed offset."""


@dataclass(frozen=True)
class TimezoneChoice:
    """A storable key plus the text to show the person for it: `label` (a city's name, which
    is data), or, when `region` is set, the [zone] message of that name in ui.toml (a region's
    name is words, so it is translated)."""

    key: str
    label: str
    region: str = ""


@dataclass(frozen=True)
class TimezoneLookup:
    """Exactly one of: a confident choice, "did you mean" candidates, or a problem: the key of
    its message under [problem] in ui.toml, filled with `typed` (what the person typed)."""

    choice: TimezoneChoice | None = None
    candidates: tuple[TimezoneChoice, ...] = ()
    problem: str | None = None
    typed: str = ""

    def __post_init__(self) -> None:
        outcomes = (self.choice is not None, bool(self.candidates), self.problem is not None)
        if sum(outcomes) != 1:
            raise ValueError("TimezoneLookup needs exactly one of choice, candidates, problem")


# --- keys ----------------------------------------------------------------------------------------


@functools.cache
def _iana_keys() -> frozenset[str]:
    """Every zone key zoneinfo can load here (scanning tzdata is slow, so once)."""
    return frozenset(available_timezones() - _NOT_ZONES)


@functools.cache
def _iana_by_folded_name() -> dict[str, str]:
    return {key.casefold(): key for key in _iana_keys()}


def _valid_offset(minutes: int) -> bool:
    return MIN_OFFSET_MINUTES <= minutes <= MAX_OFFSET_MINUTES and minutes % 15 == 0


def offset_key(minutes: int) -> str:
    """The canonical stored key for a fixed offset: "UTC", "UTC+05:30", "UTC-03:00"."""
    if not _valid_offset(minutes):
        raise UnknownTimezone(f"no fixed-offset timezone UTC{minutes:+d} minutes")
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"


@functools.cache
def tzinfo_for(key: str) -> tzinfo:
    """The tzinfo for a stored key; raises UnknownTimezone rather than falling back to UTC.

    IANA keys must be spelled exactly (as zoneinfo lists them) so behaviour does not depend on
    whether the filesystem is case-sensitive; lookup_timezone produces that spelling.
    """
    if key == "UTC":
        return UTC
    match = _OFFSET_KEY.fullmatch(key)
    if match:
        sign, hours, mins = match.groups()
        minutes = (1 if sign == "+" else -1) * (int(hours) * 60 + int(mins))
        if not _valid_offset(minutes) or int(mins) >= 60:
            raise UnknownTimezone(f"invalid fixed-offset timezone key {key!r}")
        return timezone(timedelta(minutes=minutes), name=key) if minutes else UTC
    if key in _iana_keys():
        return ZoneInfo(key)
    raise UnknownTimezone(f"unknown timezone key {key!r}")


def utc_offset_label(key: str, at: datetime) -> str:
    """The offset in effect at ``at`` as "UTC+01:00" (DST-aware, so pass the relevant moment)."""
    if at.tzinfo is None:
        raise ValueError(f"at must be an aware datetime, got naive {at!r}")
    offset = at.astimezone(tzinfo_for(key)).utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    hours, rest = divmod(int(abs(offset).total_seconds()), 3600)
    minutes, seconds = divmod(rest, 60)
    label = f"UTC{sign}{hours:02d}:{minutes:02d}"
    return f"{label}:{seconds:02d}" if seconds else label  # historic LMT offsets have seconds


# --- coordinates ---------------------------------------------------------------------------------

_finder_lock = threading.Lock()
_finder: TimezoneFinder | None = None


def _shared_finder() -> TimezoneFinder:
    """One TimezoneFinder for the process: building it loads index data, so do it once, lazily.

    Imported here, not at the top: timezonefinder brings numpy and h3 (~15 MB of RSS) into
    every process, and only a shared location needs them (bench/rss.py)."""
    global _finder
    if _finder is None:
        with _finder_lock:
            if _finder is None:
                from timezonefinder import TimezoneFinder

                _finder = TimezoneFinder()
    return _finder


def timezone_at(latitude: float, longitude: float) -> str | None:
    """The IANA key at a shared location, offline; None for invalid coordinates.

    Over the open ocean timezonefinder answers nautical zones such as "Etc/GMT+2" (which means
    UTC−02:00, POSIX sign convention); zoneinfo knows them, so they are returned as valid keys.
    """
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        return None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    try:
        key = _shared_finder().timezone_at(lng=longitude, lat=latitude)
    except ValueError:
        return None
    return key if key in _iana_keys() else None


# --- cities --------------------------------------------------------------------------------------


class _City(NamedTuple):
    name: str
    country_code: str
    admin1: str
    population: int
    timezone: str


_ID_BYTES: Final = 3  # bytes per city id in a build entry: up to 16.7M cities


class _Table:
    """An immutable str → city ids map packed into four flat buffers, with no object per key.

    Hundreds of thousands of alternate names as dict keys cost ~70 MB; here a name costs its
    UTF-8 bytes plus a few array slots. Keys are stored sorted and found by binary search.
    Create it before building (see _build_city_index), then fill it once.
    """

    __slots__ = ("_id_ends", "_ids", "_key_ends", "_keys")

    def __init__(self) -> None:
        self._keys = b""  # every key's UTF-8, concatenated in sorted order
        self._key_ends = array("I", [0])  # key i is _keys[_key_ends[i]:_key_ends[i + 1]]
        self._id_ends = array("I", [0])  # its ids are _ids[_id_ends[i]:_id_ends[i + 1]]
        self._ids = array("I")

    @staticmethod
    def entry(key: str, city_id: int) -> bytes:
        """One key → id pair for fill(); keys must not contain NUL."""
        return key.encode() + b"\0" + city_id.to_bytes(_ID_BYTES, "big")

    def fill(self, entries: list[bytes], new_ids: Sequence[int]) -> None:
        """Load ``entries`` (from entry(), with build-time ids) and empty the list; ``new_ids``
        maps build-time ids to final ones, and each key keeps its final ids ascending."""
        entries.sort()  # NUL sorts first, so this is key order, as bisect compares keys
        keys: list[bytes] = []
        key_ends, id_ends, ids = self._key_ends, self._id_ends, self._ids
        end = 0
        group: list[int] = []
        for entry in entries:
            key = entry[: -_ID_BYTES - 1]
            if not keys or key != keys[-1]:
                if group:  # ids of the previous key
                    ids.extend(sorted(group) if len(group) > 1 else group)
                    id_ends.append(len(ids))
                    group.clear()
                keys.append(key)
                end += len(key)
                key_ends.append(end)
            group.append(new_ids[int.from_bytes(entry[-_ID_BYTES:], "big")])
        if group:
            ids.extend(sorted(group))
            id_ends.append(len(ids))
        entries.clear()
        self._keys = b"".join(keys)

    def _key(self, position: int) -> bytes:
        return self._keys[self._key_ends[position] : self._key_ends[position + 1]]

    def __len__(self) -> int:
        return len(self._key_ends) - 1

    def get(self, key: str) -> array[int]:
        """The city ids for ``key``, ascending; empty when it is not a key."""
        target = key.encode()
        position = bisect.bisect_left(range(len(self)), target, key=self._key)
        if position == len(self) or self._key(position) != target:
            return array("I")
        return self._ids[self._id_ends[position] : self._id_ends[position + 1]]


class _Strings:
    """Strings packed into one ``str`` plus offsets: one allocation instead of one per string."""

    __slots__ = ("_ends", "_text")

    def __init__(self) -> None:
        self._text = ""
        self._ends = array("I", [0])

    def fill(self, strings: list[str]) -> None:
        """Load ``strings`` and empty the list."""
        for text in strings:
            self._ends.append(self._ends[-1] + len(text))
        self._text = "".join(strings)
        strings.clear()

    def __getitem__(self, position: int) -> str:
        return self._text[self._ends[position] : self._ends[position + 1]]


class _CityIndex:
    """Cities as columns indexed by id (ids ordered biggest first), and names → ids.

    Built in place by _build_city_index, which creates every long-lived object before the
    hundreds of thousands of temporary ones: a survivor allocated among them would pin a whole
    1 MB pymalloc arena of otherwise free memory.
    """

    __slots__ = (
        "admin1_ids",
        "by_alias",
        "by_name",
        "codes",
        "countries",
        "country_ids",
        "names",
        "populations",
        "qualifiers",
        "us_states",
        "zone_ids",
    )

    def __init__(
        self,
        countries: dict[str, str],
        us_states: dict[str, str],
        qualifiers: dict[str, frozenset[str]],
    ) -> None:
        self.names = _Strings()  # by city id
        self.codes = _Strings()  # country codes, admin1 codes and zones, by code id
        self.country_ids = array("I")  # city id → code id
        self.admin1_ids = array("I")  # city id → code id
        self.zone_ids = array("I")  # city id → code id
        self.populations = array("q")  # by city id
        self.by_name = _Table()  # normalised primary name → city ids
        self.by_alias = _Table()  # whole alternate name → city ids (many keys)
        self.countries = countries  # ISO2 → country name
        self.us_states = us_states  # state code → state name
        self.qualifiers = qualifiers  # normalised "France", "FR", "Texas"… → codes

    def city(self, city_id: int) -> _City:
        return _City(
            name=self.names[city_id],
            country_code=self.codes[self.country_ids[city_id]],
            admin1=self.codes[self.admin1_ids[city_id]],
            population=self.populations[city_id],
            timezone=self.codes[self.zone_ids[city_id]],
        )


def _fold(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form: "São Paulo" and "sao-paulo" agree, and so
    do "St. Petersburg" and "saint petersburg" (also Ste/Sainte/Sankt, Ft/Fort, Mt/Mount)."""
    folded = text.casefold()
    if not folded.isascii():
        decomposed = unicodedata.normalize("NFKD", folded)
        folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = _NON_WORD.sub(" ", folded).strip()
    return _NAME_WORD.sub(_full_name_word, folded)


def _full_name_word(match: re.Match[str]) -> str:
    return _NAME_WORDS[match.group()]


def _exact(text: str) -> str:
    """Whole-name form for alternate names: only case and spacing are ignored."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.casefold().split())


def _alias_forms(text: str) -> set[str]:
    """Alternate names match exactly; accents are folded only where that leaves plain ASCII,
    since stripping marks from other scripts (й → и, Devanagari vowel signs) changes names."""
    forms = {_exact(text)}
    if _LATIN_LETTER.search(text):  # cheap pre-check: only Latin-script names can fold to ASCII
        folded = _fold(text)
        if folded.isascii():
            forms.add(folded)
    forms.discard("")
    return forms


_CITY_DATA: Final = Path(__file__).resolve().parent / "data" / "cities15000.tsv.xz"
_FIELD: Final = "\t"
_ALIAS: Final = "\x1f"


class _CityRecord(NamedTuple):
    name: str
    country_code: str
    admin1: str
    population: int
    timezone: str
    aliases: str  # alternate names joined by _ALIAS


def _city_data_text(path: Path = _CITY_DATA) -> str:
    """The shipped city file (scripts/build_city_data.py makes it from GeoNames), decompressed."""
    return lzma.decompress(path.read_bytes()).decode("utf-8")


def _data_lines(text: str, kind: str) -> Iterator[list[str]]:
    """The fields of every ``kind`` line ("country", "state", "city"), without splitting the
    whole text into a list first (it would double the peak memory of the build)."""
    prefix = kind + _FIELD
    position = 0
    while position < len(text):
        end = text.find("\n", position)
        if end < 0:
            end = len(text)
        if text.startswith(prefix, position):
            yield text[position + len(prefix) : end].split(_FIELD)
        position = end + 1


def _city_records(text: str) -> Iterator[_CityRecord]:
    for name, country, admin1, population, zone, aliases in _data_lines(text, "city"):
        yield _CityRecord(name, country, admin1, int(population), zone, aliases)


@functools.cache
def _build_city_index() -> _CityIndex:
    text = _city_data_text()
    countries: dict[str, str] = {}
    qualifiers: defaultdict[str, set[str]] = defaultdict(set)
    for code, iso3, name in _data_lines(text, "country"):
        countries[code] = name.strip()
        for form in (code, iso3, name):
            qualifiers[_fold(form).removeprefix("the ")].add(code)
    qualifiers["uk"].add("GB")
    us_states = dict((code, name) for code, name in _data_lines(text, "state"))
    for code, name in us_states.items():
        qualifiers[_fold(code)].add(f"US-{code}")
        qualifiers[_fold(name)].add(f"US-{code}")
    index = _CityIndex(
        countries=countries,
        us_states=us_states,
        qualifiers={key: frozenset(codes) for key, codes in qualifiers.items()},
    )
    del qualifiers
    _load_cities(index, text)
    del text
    gc.collect()
    _release_free_memory()
    return index


def _load_cities(index: _CityIndex, text: str) -> None:
    """Fill ``index`` with every city whose timezone zoneinfo knows, ids biggest first."""
    zones = _iana_keys()
    names: list[str] = []
    codes: list[str] = []
    code_ids: dict[str, int] = {}
    name_entries: list[bytes] = []
    alias_entries: list[bytes] = []
    for record in _city_records(text):
        if record.timezone not in zones:
            continue
        city_id = len(names)
        names.append(record.name)
        for column, code in (
            (index.country_ids, record.country_code),
            (index.admin1_ids, record.admin1),
            (index.zone_ids, record.timezone),
        ):
            code_id = code_ids.setdefault(code, len(codes))
            if code_id == len(codes):
                codes.append(code)
            column.append(code_id)
        index.populations.append(record.population)
        name_entries.append(_Table.entry(_fold(record.name), city_id))
        aliases = record.aliases.split(_ALIAS) if record.aliases else ()
        forms = {form for alt in aliases for form in _alias_forms(alt)}
        alias_entries.extend(_Table.entry(form, city_id) for form in forms if "\0" not in form)

    # Renumber biggest first (ties by name, then country), so ascending ids are _by_size order.
    populations = index.populations
    order = sorted(
        range(len(names)),
        key=lambda i: (-populations[i], names[i], codes[index.country_ids[i]]),
    )
    new_ids = array("I", bytes(4 * len(order)))
    for new_id, old_id in enumerate(order):
        new_ids[old_id] = new_id
    for column in (index.country_ids, index.admin1_ids, index.zone_ids, populations):
        column[:] = array(column.typecode, (column[old_id] for old_id in order))
    names[:] = [names[old_id] for old_id in order]
    del order
    index.by_name.fill(name_entries, new_ids)
    index.by_alias.fill(alias_entries, new_ids)
    index.names.fill(names)
    index.codes.fill(codes)


def _release_free_memory() -> None:
    """Ask glibc to return freed heap pages to the system (no-op elsewhere): building the index
    frees tens of MB in pieces that glibc would otherwise keep as process memory."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return
    trim(0)


_index_lock = threading.Lock()


def _city_index() -> _CityIndex:
    with _index_lock:  # functools.cache alone may build twice under concurrent first use
        return _build_city_index()


def preload() -> None:
    """Build the city index and zone list now (about a second) instead of on the first lookup."""
    _city_index()
    _iana_by_folded_name()


def _by_size(cities: list[_City]) -> list[_City]:
    return sorted(cities, key=lambda city: (-city.population, city.name, city.country_code))


def _city_label(city: _City, index: _CityIndex) -> str:
    parts = [city.name]
    if city.country_code == "US" and city.admin1 in index.us_states:
        parts.append(index.us_states[city.admin1])
    parts.append(index.countries.get(city.country_code, city.country_code))
    return f"{', '.join(parts)} ({city.timezone})"


def _in_region(city: _City, codes: frozenset[str]) -> bool:
    return city.country_code in codes or f"{city.country_code}-{city.admin1}" in codes


class _Matches(NamedTuple):
    named: list[_City]  # the query is the city's own name, biggest first
    aliased: list[_City]  # the query is only one of its alternate names, biggest first


def _find_cities(query: str, index: _CityIndex) -> _Matches:
    """Cities named ``query``, optionally narrowed by ", country" or ", US state".

    Alternate names are noisy (airport codes, transliterations that collide with other cities),
    so they match only as whole names and are kept apart from matches on a city's own name.
    """
    name, comma, region = query.rpartition(",")
    if not comma:
        name, region = query, ""
    codes = index.qualifiers.get(_fold(region).removeprefix("the "), frozenset())

    def narrowed(cities: list[_City]) -> list[_City]:
        return [city for city in cities if _in_region(city, codes)] if region.strip() else cities

    named = narrowed([index.city(city_id) for city_id in index.by_name.get(_fold(name))])
    seen = set(named)
    aliased = {
        city
        for form in _alias_forms(name)
        for city in map(index.city, index.by_alias.get(form))
        if city not in seen
    }
    return _Matches(named, narrowed(_by_size(list(aliased))))


def _decide(matches: _Matches, index: _CityIndex, *, may_choose: bool) -> TimezoneLookup:
    """A choice only for a city's own name when one timezone fits, or when one city is vastly
    bigger than any rival elsewhere (including cities that merely have it as an alternate name,
    so "santiago" asks rather than ignore Santiago de los Caballeros); otherwise ask."""
    named, aliased = matches
    if not named:
        return _candidates(aliased, index)
    top = named[0]
    # Alternate-name matches count only when big enough to matter, which keeps out the noise.
    notable = [city for city in aliased if DOMINANCE * city.population >= top.population]
    rivals = [city for city in (*named, *notable) if city.timezone != top.timezone]
    biggest_rival = max((city.population for city in rivals), default=0)
    if may_choose and (not rivals or top.population >= DOMINANCE * max(biggest_rival, 1)):
        return TimezoneLookup(choice=TimezoneChoice(top.timezone, _city_label(top, index)))
    return _candidates(_by_size([*named, *notable]), index)


def _candidates(cities: list[_City], index: _CityIndex) -> TimezoneLookup:
    candidates: list[TimezoneChoice] = []
    for city in cities:
        option = TimezoneChoice(city.timezone, _city_label(city, index))
        if option not in candidates:
            candidates.append(option)
        if len(candidates) == MAX_CANDIDATES:
            break
    return TimezoneLookup(candidates=tuple(candidates))


# --- what a person types -------------------------------------------------------------------------


def region_key(zone: str) -> str:
    """The [zone] key in ui.toml naming the region of an abbreviation's zone: "America/New_York"
    → "america_new_york" (its label, e.g. "US Eastern time, with daylight saving ({zone})")."""
    return re.sub(r"[^a-z0-9]+", "_", zone.lower()).strip("_")


def _region(zone: str) -> TimezoneChoice:
    return TimezoneChoice(zone, zone, region=region_key(zone))


_US_EASTERN: Final = _region("America/New_York")
_US_CENTRAL: Final = _region("America/Chicago")
_US_MOUNTAIN: Final = _region("America/Denver")
_US_PACIFIC: Final = _region("America/Los_Angeles")
_ALASKA: Final = _region("America/Anchorage")
_HAWAII: Final = _region("Pacific/Honolulu")
_ALEUTIAN: Final = _region("America/Adak")
_ATLANTIC: Final = _region("America/Halifax")
_NEWFOUNDLAND: Final = _region("America/St_Johns")
_CUBA: Final = _region("America/Havana")
_UK: Final = _region("Europe/London")
_INDIA: Final = _region("Asia/Kolkata")
_ISRAEL: Final = _region("Asia/Jerusalem")
_PHILIPPINES: Final = _region("Asia/Manila")
_EASTERN_AUSTRALIA: Final = _region("Australia/Sydney")
_SOUTH_AUSTRALIA: Final = _region("Australia/Adelaide")
_NEW_ZEALAND: Final = _region("Pacific/Auckland")

# Timezone abbreviations people type, by folded spelling. One option is a confident choice;
# several mean the abbreviation is shared, so the person picks. Regions with daylight saving map
# to their IANA zone, never to a fixed offset, which would be an hour off for half the year. The
# IANA names CET, EET, WET and MET already follow the EU's daylight saving, so they resolve as
# zone names; EST, MST and HST are fixed-offset IANA names people type meaning the US zones.
_ABBREVIATIONS: Final[dict[str, tuple[TimezoneChoice, ...]]] = {
    # North America
    "est": (_US_EASTERN, _region("UTC-05:00")),
    "edt": (_US_EASTERN,),
    "cst": (
        _US_CENTRAL,
        _region("Asia/Shanghai"),
        _CUBA,
        _region("Asia/Taipei"),
        _region("America/Mexico_City"),
    ),
    "cdt": (_US_CENTRAL, _CUBA),
    "mst": (
        _US_MOUNTAIN,
        _region("America/Phoenix"),
    ),
    "mdt": (_US_MOUNTAIN,),
    "pst": (_US_PACIFIC, _PHILIPPINES),
    "pdt": (_US_PACIFIC,),
    "akst": (_ALASKA,),
    "akdt": (_ALASKA,),
    "hst": (_HAWAII, _ALEUTIAN),
    "hdt": (_ALEUTIAN,),
    "ast": (
        _ATLANTIC,
        _region("America/Puerto_Rico"),
        _region("Asia/Riyadh"),
    ),
    "adt": (_ATLANTIC,),
    "nst": (_NEWFOUNDLAND,),
    "ndt": (_NEWFOUNDLAND,),
    "brt": (_region("America/Sao_Paulo"),),
    # Europe and Africa
    "bst": (_UK, _region("Asia/Dhaka")),
    "ist": (_INDIA, _region("Europe/Dublin"), _ISRAEL),
    "west": (_region("WET"),),
    "cest": (_region("CET"),),
    "eest": (_region("EET"),),
    "msk": (_region("Europe/Moscow"),),
    "wat": (_region("Africa/Lagos"),),
    "cat": (_region("Africa/Maputo"),),
    "eat": (_region("Africa/Nairobi"),),
    "sast": (_region("Africa/Johannesburg"),),
    # Asia
    "idt": (_ISRAEL,),
    "irst": (_region("Asia/Tehran"),),
    "pkt": (_region("Asia/Karachi"),),
    "npt": (_region("Asia/Kathmandu"),),
    "ict": (_region("Asia/Bangkok"),),
    "wib": (_region("Asia/Jakarta"),),
    "sgt": (_region("Asia/Singapore"),),
    "hkt": (_region("Asia/Hong_Kong"),),
    "pht": (_PHILIPPINES,),
    "phst": (_PHILIPPINES,),
    "kst": (_region("Asia/Seoul"),),
    "jst": (_region("Asia/Tokyo"),),
    # Australia and the Pacific
    "awst": (_region("Australia/Perth"),),
    "acst": (
        _SOUTH_AUSTRALIA,
        _region("Australia/Darwin"),
    ),
    "acdt": (_SOUTH_AUSTRALIA,),
    "aest": (
        _EASTERN_AUSTRALIA,
        _region("Australia/Brisbane"),
    ),
    "aedt": (_EASTERN_AUSTRALIA,),
    "nzst": (_NEW_ZEALAND,),
    "nzdt": (_NEW_ZEALAND,),
}
_UTC_NAMES: Final = frozenset({"utc", "gmt", "z"})


def _quote(query: str) -> str:
    return query if len(query) <= 40 else query[:39] + "…"


def _unknown(query: str) -> TimezoneLookup:
    return TimezoneLookup(problem="timezone_unknown", typed=_quote(query))


def _lookup_offset(query: str, match: re.Match[str]) -> TimezoneLookup:
    sign, hours, mins = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    minutes = (-1 if sign in "-−–" else 1) * (hours * 60 + mins)
    if mins not in (0, 15, 30, 45):
        return TimezoneLookup(problem="timezone_quarter", typed=_quote(query))
    if not MIN_OFFSET_MINUTES <= minutes <= MAX_OFFSET_MINUTES:
        return TimezoneLookup(problem="timezone_range", typed=_quote(query))
    key = offset_key(minutes)
    return TimezoneLookup(choice=TimezoneChoice(key, key))


def lookup_timezone(query: str) -> TimezoneLookup:
    """Resolve typed text: IANA name (any case), "UTC"/"GMT"/"Z", an offset, a timezone
    abbreviation or a city name.

    Offsets ("+5:30", "UTC+05:30", "GMT-3", "-03:00", "+0545") use the everyday sign
    convention, so "GMT-3" is UTC-03:00 (unlike the POSIX-style IANA name "Etc/GMT-3").
    Abbreviations resolve when only one region uses them (JST, MSK); shared ones (IST, CST, BST)
    list the regions. A city resolves when its own name matches, the query is longer than three
    letters, and all places of that name share a timezone or the biggest is at least ten times
    bigger than any rival elsewhere; otherwise up to five candidates, biggest first. Matches on
    alternate names only ("Bombay", "Kiev") are always candidates. "Paris, Texas" /
    "Springfield, MO" narrow by country or US state.
    """
    text = " ".join(query.split())
    if not text:
        return TimezoneLookup(problem="timezone_empty")
    if len(text) > _MAX_QUERY_LENGTH:
        return _unknown(text)
    folded = text.casefold()
    if folded in _UTC_NAMES:
        return TimezoneLookup(choice=TimezoneChoice("UTC", "UTC"))
    offset = _OFFSET_QUERY.fullmatch(text)
    if offset:
        return _lookup_offset(text, offset)
    options = _ABBREVIATIONS.get(folded)
    if options is not None:
        if len(options) == 1:
            return TimezoneLookup(choice=options[0])
        return TimezoneLookup(candidates=options)
    iana = _iana_by_folded_name().get(folded.replace(" ", "_"))
    if iana is not None:
        return TimezoneLookup(choice=TimezoneChoice(iana, iana))
    if "/" in text:
        return _unknown(text)
    index = _city_index()
    matches = _find_cities(text, index)
    if not (matches.named or matches.aliased):
        return _unknown(text)
    may_choose = len(_NON_WORD.sub("", text)) > _MAX_SHORT_QUERY
    return _decide(matches, index, may_choose=may_choose)
