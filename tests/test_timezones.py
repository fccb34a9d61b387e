"""Resolving typed text, shared locations and stored keys into timezones."""

from __future__ import annotations

import math
import time as clock
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot import timezones
from bot.timezones import (
    TimezoneChoice,
    TimezoneLookup,
    UnknownTimezone,
    lookup_timezone,
    offset_key,
    timezone_at,
    tzinfo_for,
    utc_offset_label,
)

UNKNOWN_HINT = "Try a city (Berlin), an IANA name (Europe/Berlin) or an offset (UTC+02:00)."
WINTER = datetime(2026, 1, 15, 12, tzinfo=UTC)
SUMMER = datetime(2026, 7, 15, 12, tzinfo=UTC)


def chosen(query: str) -> TimezoneChoice:
    result = lookup_timezone(query)
    assert result.choice is not None, result
    assert result.candidates == () and result.problem is None
    return result.choice


def problem(query: str) -> str:
    result = lookup_timezone(query)
    assert result.problem is not None, result
    assert result.choice is None and result.candidates == ()
    return result.problem


# --- stored keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "offset_in_winter"),
    [
        ("Europe/Berlin", timedelta(hours=1)),
        ("US/Eastern", timedelta(hours=-5)),
        ("Etc/GMT+2", timedelta(hours=-2)),  # POSIX sign: Etc/GMT+2 is UTC−02:00
        ("UTC", timedelta(0)),
        ("UTC+05:30", timedelta(hours=5, minutes=30)),
        ("UTC+05:45", timedelta(hours=5, minutes=45)),
        ("UTC-03:30", timedelta(hours=-3, minutes=-30)),
        ("UTC+14:00", timedelta(hours=14)),
        ("UTC-12:00", timedelta(hours=-12)),
    ],
)
def test_tzinfo_for_known_keys(key: str, offset_in_winter: timedelta) -> None:
    assert WINTER.astimezone(tzinfo_for(key)).utcoffset() == offset_in_winter


def test_tzinfo_for_iana_is_zoneinfo() -> None:
    assert tzinfo_for("Europe/Berlin") is ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    "key",
    [
        "",
        "europe/berlin",  # stored keys are exact; lookup_timezone fixes the case
        "Europe/Berlin ",
        "Mars/Olympus",
        "America",  # a tzdata directory, not a zone
        "../etc/passwd",
        "/etc/localtime",
        "localtime",
        "Factory",
        "UTC+15:00",
        "UTC-12:30",
        "UTC+05:20",
        "UTC+01:75",
        "UTC+5:30",  # not the canonical spelling
        "GMT-3",
    ],
)
def test_tzinfo_for_rejects_unknown_keys(key: str) -> None:
    with pytest.raises(UnknownTimezone):
        tzinfo_for(key)
    assert issubclass(UnknownTimezone, ValueError)


@pytest.mark.parametrize(
    ("minutes", "key"),
    [(0, "UTC"), (330, "UTC+05:30"), (-180, "UTC-03:00"), (840, "UTC+14:00"), (-720, "UTC-12:00")],
)
def test_offset_key(minutes: int, key: str) -> None:
    assert offset_key(minutes) == key


@pytest.mark.parametrize("minutes", [841, -721, 320])
def test_offset_key_rejects_impossible_offsets(minutes: int) -> None:
    with pytest.raises(UnknownTimezone):
        offset_key(minutes)


@pytest.mark.parametrize(
    ("key", "at", "label"),
    [
        ("Europe/Berlin", WINTER, "UTC+01:00"),
        ("Europe/Berlin", SUMMER, "UTC+02:00"),
        ("America/New_York", WINTER, "UTC-05:00"),
        ("Asia/Kathmandu", SUMMER, "UTC+05:45"),
        ("Pacific/Chatham", WINTER, "UTC+13:45"),
        ("Pacific/Chatham", SUMMER, "UTC+12:45"),
        ("UTC-03:30", SUMMER, "UTC-03:30"),
        ("UTC", SUMMER, "UTC+00:00"),
        ("Etc/GMT+2", SUMMER, "UTC-02:00"),
        # Before 1893 Berlin kept local mean time, +00:53:28.
        ("Europe/Berlin", datetime(1850, 1, 1, tzinfo=UTC), "UTC+00:53:28"),
        # `at` may be in any zone: 2026-07-15 08:00 in Tokyo is still 2026-07-14 23:00Z.
        ("Europe/Berlin", datetime(2026, 7, 15, 8, tzinfo=ZoneInfo("Asia/Tokyo")), "UTC+02:00"),
    ],
)
def test_utc_offset_label(key: str, at: datetime, label: str) -> None:
    assert utc_offset_label(key, at) == label


def test_utc_offset_label_needs_an_aware_moment() -> None:
    with pytest.raises(ValueError, match="aware"):
        utc_offset_label("Europe/Berlin", datetime(2026, 1, 1))


# --- typed text: IANA names, UTC, offsets --------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("europe/berlin", "Europe/Berlin"),
        ("  EUROPE/BERLIN  ", "Europe/Berlin"),
        ("america/new york", "America/New_York"),
        ("US/Eastern", "US/Eastern"),
        ("us/pacific", "US/Pacific"),
        ("Asia/Kathmandu", "Asia/Kathmandu"),
        ("etc/gmt+2", "Etc/GMT+2"),
        ("CET", "CET"),  # a zoneinfo name, not the alternate name of Cholet, France
    ],
)
def test_iana_names_case_insensitive(query: str, key: str) -> None:
    assert chosen(query) == TimezoneChoice(key, key)


@pytest.mark.parametrize("query", ["UTC", "utc", "GMT", "gmt", "UTC+0", "GMT-0", "+00:00"])
def test_utc(query: str) -> None:
    assert chosen(query) == TimezoneChoice("UTC", "UTC")


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("+5:30", "UTC+05:30"),
        ("UTC+05:30", "UTC+05:30"),
        ("utc+5:30", "UTC+05:30"),
        ("UTC +05:30", "UTC+05:30"),
        ("GMT-3", "UTC-03:00"),  # everyday meaning, unlike the POSIX-style Etc/GMT-3
        ("-03:00", "UTC-03:00"),
        ("−03:00", "UTC-03:00"),  # Unicode minus sign
        ("+0545", "UTC+05:45"),
        ("+05:45", "UTC+05:45"),
        ("UTC+14", "UTC+14:00"),
        ("UTC-12", "UTC-12:00"),
        ("-3:30", "UTC-03:30"),
        ("+12:45", "UTC+12:45"),
    ],
)
def test_offsets(query: str, key: str) -> None:
    assert chosen(query) == TimezoneChoice(key, key)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("UTC+15", "UTC-12:00 to UTC+14:00"),
        ("+14:15", "UTC-12:00 to UTC+14:00"),
        ("-12:30", "UTC-12:00 to UTC+14:00"),
        ("GMT-13", "UTC-12:00 to UTC+14:00"),
        ("+05:20", "quarter hours"),
        ("UTC+5:75", "quarter hours"),
    ],
)
def test_impossible_offsets_are_rejected(query: str, reason: str) -> None:
    message = problem(query)
    assert f"“{query}”" in message
    assert reason in message


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ("EST", ("America/New_York", "UTC-05:00")),
        ("mst", ("America/Denver", "America/Phoenix")),
    ],
)
def test_fixed_us_abbreviations_ask_instead_of_dropping_dst(
    query: str, keys: tuple[str, ...]
) -> None:
    result = lookup_timezone(query)
    assert result.choice is None and result.problem is None
    assert tuple(option.key for option in result.candidates) == keys


# --- typed text: cities --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "key", "label"),
    [
        ("berlin", "Europe/Berlin", "Berlin, Germany (Europe/Berlin)"),
        ("Berlin", "Europe/Berlin", "Berlin, Germany (Europe/Berlin)"),
        ("kathmandu", "Asia/Kathmandu", "Kathmandu, Nepal (Asia/Kathmandu)"),
        ("são paulo", "America/Sao_Paulo", "São Paulo, Brazil (America/Sao_Paulo)"),
        ("sao paulo", "America/Sao_Paulo", "São Paulo, Brazil (America/Sao_Paulo)"),
        ("SAO-PAULO", "America/Sao_Paulo", "São Paulo, Brazil (America/Sao_Paulo)"),
        ("koln", "Europe/Berlin", "Köln, Germany (Europe/Berlin)"),
        ("tokyo", "Asia/Tokyo", "Tokyo, Japan (Asia/Tokyo)"),
        # Paris, France is far more than 10× bigger than Paris, Texas.
        ("paris", "Europe/Paris", "Paris, France (Europe/Paris)"),
        ("london", "Europe/London", "London, United Kingdom (Europe/London)"),
    ],
)
def test_city_names(query: str, key: str, label: str) -> None:
    assert chosen(query) == TimezoneChoice(key, label)


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("new york", "America/New_York"),  # primary name is "New York City"
        ("New York", "America/New_York"),
        ("münchen", "Europe/Berlin"),
        ("munchen", "Europe/Berlin"),
        ("cologne", "Europe/Berlin"),
        ("Москва", "Europe/Moscow"),
        ("東京", "Asia/Tokyo"),
        ("kiev", "Europe/Kyiv"),
    ],
)
def test_alternate_names_as_whole_names(query: str, key: str) -> None:
    assert chosen(query).key == key


@pytest.mark.parametrize(
    ("query", "key", "label"),
    [
        ("paris, texas", "America/Chicago", "Paris, Texas, United States (America/Chicago)"),
        ("Paris, TX", "America/Chicago", "Paris, Texas, United States (America/Chicago)"),
        ("paris, france", "Europe/Paris", "Paris, France (Europe/Paris)"),
        ("paris, FR", "Europe/Paris", "Paris, France (Europe/Paris)"),
        (
            "springfield, mo",
            "America/Chicago",
            "Springfield, Missouri, United States (America/Chicago)",
        ),
        (
            "Springfield, Massachusetts",
            "America/New_York",
            "Springfield, Massachusetts, United States (America/New_York)",
        ),
        ("the hague, netherlands", "Europe/Amsterdam", None),
        ("st petersburg, russia", "Europe/Moscow", None),  # alias fallback after narrowing
    ],
)
def test_city_with_country_or_state(query: str, key: str, label: str | None) -> None:
    choice = chosen(query)
    assert choice.key == key
    if label is not None:
        assert choice.label == label


def test_ambiguous_city_gives_candidates_biggest_first() -> None:
    result = lookup_timezone("springfield")
    assert result.choice is None and result.problem is None
    assert 2 <= len(result.candidates) <= timezones.MAX_CANDIDATES
    keys = {option.key for option in result.candidates}
    assert {"America/Chicago", "America/New_York"} <= keys
    labels = [option.label for option in result.candidates]
    assert len(set(labels)) == len(labels)
    assert all(label.startswith("Springfield, ") for label in labels)
    assert all(", United States (" in label for label in labels)
    # Springfield, Missouri is the biggest Springfield in the data.
    assert labels[0] == "Springfield, Missouri, United States (America/Chicago)"


def test_same_name_in_different_countries_lists_both() -> None:
    result = lookup_timezone("vancouver")
    assert [option.key for option in result.candidates] == [
        "America/Vancouver",
        "America/Los_Angeles",
    ]
    assert result.candidates[0].label == "Vancouver, Canada (America/Vancouver)"


def test_same_name_all_in_one_timezone_is_a_choice() -> None:
    # Several Baoshans in China, none 10× bigger than the next, but all on Asia/Shanghai.
    assert chosen("baoshan").key == "Asia/Shanghai"


def test_dominant_city_wins_over_small_namesakes_elsewhere() -> None:
    # "Frankfurt" is an alternate name of Frankfurt am Main and of Frankfort, Kentucky/Indiana;
    # Frankfurt am Main is more than 10× bigger than any of them outside Europe/Berlin.
    assert chosen("frankfurt") == TimezoneChoice(
        "Europe/Berlin", "Frankfurt am Main, Germany (Europe/Berlin)"
    )


# --- nonsense and empty --------------------------------------------------------------------------


def test_nonsense_gets_the_exact_problem_message() -> None:
    assert problem("Mars/Olympus") == f"I don't know the timezone “Mars/Olympus”. {UNKNOWN_HINT}"


@pytest.mark.parametrize(
    "query", ["mars", "asdfghjkl", "Europe/Berlinn", "12345", "+123456", "paris, atlantis"]
)
def test_unknown_text_is_a_problem_not_a_guess(query: str) -> None:
    assert problem(query) == f"I don't know the timezone “{query}”. {UNKNOWN_HINT}"


@pytest.mark.parametrize("query", ["", "   ", "\n"])
def test_empty_input_gets_an_example(query: str) -> None:
    message = problem(query)
    assert "Berlin" in message and "UTC+02:00" in message


def test_very_long_input_is_shortened_in_the_message() -> None:
    message = problem("x" * 500)
    assert len(message) < 200
    assert "…" in message


def test_lookup_result_has_exactly_one_outcome() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TimezoneLookup()
    with pytest.raises(ValueError, match="exactly one"):
        TimezoneLookup(choice=TimezoneChoice("UTC", "UTC"), problem="no")


@pytest.mark.parametrize(
    "query",
    ["berlin", "springfield", "EST", "+0545", "us/eastern", "new york", "vancouver", "UTC"],
)
def test_every_returned_key_is_storable(query: str) -> None:
    result = lookup_timezone(query)
    options = [result.choice] if result.choice else list(result.candidates)
    for option in options:
        tzinfo_for(option.key)


def test_lookups_are_fast_after_warm_up() -> None:
    timezones.preload()
    queries = ["berlin", "springfield", "new york", "são paulo", "Mars/Olympus", "+0545", "paris"]
    started = clock.perf_counter()
    for _ in range(50):
        for query in queries:
            lookup_timezone(query)
    per_lookup = (clock.perf_counter() - started) / (50 * len(queries))
    assert per_lookup < 0.005


# --- shared locations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("latitude", "longitude", "key"),
    [
        (52.52, 13.405, "Europe/Berlin"),
        (27.7172, 85.324, "Asia/Kathmandu"),
        (40.7128, -74.006, "America/New_York"),
        (-23.55, -46.633, "America/Sao_Paulo"),
    ],
)
def test_timezone_at_cities(latitude: float, longitude: float, key: str) -> None:
    assert timezone_at(latitude, longitude) == key


def test_timezone_at_mid_ocean_is_a_nautical_zone_zoneinfo_knows() -> None:
    key = timezone_at(0.0, -30.0)  # mid-Atlantic: 30°W is the UTC−02:00 nautical band
    assert key == "Etc/GMT+2"
    assert utc_offset_label(key, SUMMER) == "UTC-02:00"


@pytest.mark.parametrize(
    ("latitude", "longitude"),
    [(91.0, 0.0), (-90.5, 0.0), (0.0, 180.5), (0.0, -181.0), (math.nan, 0.0), (0.0, math.inf)],
)
def test_timezone_at_invalid_coordinates(latitude: float, longitude: float) -> None:
    assert timezone_at(latitude, longitude) is None


def test_timezone_finder_is_shared() -> None:
    timezone_at(52.52, 13.405)
    assert timezones._shared_finder() is timezones._shared_finder()
