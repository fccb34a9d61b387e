"""Which country an IANA timezone belongs to, from the tzdata tables the bot already ships.

Used to pick the crisis line of the person's country from their stored timezone. `zone.tab`
gives each canonical zone one ISO 3166 country; `tzdata.zi` resolves legacy and alias names
("Asia/Calcutta", "US/Eastern", "GB") to their canonical zone. A fixed offset ("UTC+02:00") or
anything unknown has no country: callers then show every crisis line, never none.
"""

from __future__ import annotations

import functools
import logging
from importlib import resources
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

SYSTEM_ZONEINFO: Final = Path("/usr/share/zoneinfo")


def _read(name: str) -> str | None:
    """A file of the tz database: the tzdata package's copy, else the system's."""
    try:
        return (resources.files("tzdata") / "zoneinfo" / name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        pass
    try:
        return (SYSTEM_ZONEINFO / name).read_text(encoding="utf-8")
    except OSError:
        return None


def parse_zone_tab(text: str) -> dict[str, str]:
    """zone.tab rows 'CC<TAB>coordinates<TAB>Zone[<TAB>comment]' → {zone: country code}."""
    countries: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) >= 3:
            countries[fields[2]] = fields[0]
    return countries


def parse_links(text: str) -> dict[str, str]:
    """tzdata.zi link lines 'L Target Alias' → {alias: target}."""
    links: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == "L":
            links[fields[2]] = fields[1]
    return links


@functools.cache
def _tables() -> tuple[dict[str, str], dict[str, str]]:
    zone_tab = _read("zone.tab")
    if zone_tab is None:
        log.warning("no zone.tab found: crisis lines can't follow the person's country")
        return {}, {}
    return parse_zone_tab(zone_tab), parse_links(_read("tzdata.zi") or "")


def country_for_zone(zone: str | None) -> str | None:
    """The ISO 3166 country code of an IANA zone (following aliases), or None."""
    if not zone:
        return None
    countries, links = _tables()
    seen: set[str] = set()
    while zone not in countries and zone in links and zone not in seen:
        seen.add(zone)
        zone = links[zone]
    return countries.get(zone)
