"""The lists the registration form offers, in the reader's language: time
zones by city and offset, grouped by continent; countries by name (the
installation's names first: shared.countries). Never a raw IANA id.

Each list is sorted the way its readers look for it (ICU's collation)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from importlib.resources import files

import icu
from babel import Locale

from shared.countries import CountryNames
from shared.i18n import sort_key
from shared.zones import city, gmt, offset, place_name, same_zone

UTC = "Etc/UTC"


@dataclass(frozen=True)
class Zone:
    id: str                 # the IANA id the form sends
    label: str              # "القدس (غرينتش+02:00)"
    name: str | None        # how times name it ("توقيت القدس"); None: by its offset then
    search: str             # what a reader may type to find it: city, country, offset
    ids: str                # every id of the zone, for the browser's own (often older) one


@dataclass(frozen=True)
class ZoneGroup:
    label: str | None       # "آسيا"; None: UTC, above the continents
    zones: list[Zone]


@lru_cache(maxsize=64)
def zone_groups(language: str, at: datetime, countries: CountryNames) -> list[ZoneGroup]:
    """The zones of the world (tzdata's zone.tab: one or more per country,
    each with its country), by continent in the reader's alphabetical order,
    then by their offset at ``at`` (the event's first session) and city;
    UTC first."""
    collator, territories = sort_key(language), Locale.parse(language).territories
    groups: dict[str, list[Zone]] = {}
    for country, zone in _zone_table():
        groups.setdefault(_continent(country), []).append(_zone(zone, country, language, at, countries))
    ordered = sorted(((territories.get(code, code), zones) for code, zones in groups.items()),
                     key=lambda group: collator(group[0]))
    utc = _zone(UTC, None, language, at, countries)
    return [ZoneGroup(None, [utc]), *(
        ZoneGroup(label, sorted(zones, key=lambda z: (offset(at, z.id), collator(z.label))))
        for label, zones in ordered)]


def chosen_zone(zone: str) -> str:
    """The option that stands for ``zone`` (the event's may be an older id)."""
    return next((other for other in same_zone(zone) if other in _listed()), zone)


def _zone(zone: str, country: str | None, language: str, at: datetime,
          countries: CountryNames) -> Zone:
    at_offset = gmt(zone, language, at)
    country_name = countries.name(country, language) if country else ""
    name = place_name(zone, language)
    # no city in this language (rare: a zone newer than CLDR): its country
    place = city(zone, language) or name or country_name or at_offset
    return Zone(id=zone, label=place if place == at_offset else f"{place} ({at_offset})",
                name=name, search=f"{place} {country_name} {at_offset}",
                ids=" ".join(same_zone(zone)))


@cache
def _zone_table() -> tuple[tuple[str, str], ...]:
    """(country, zone) from tzdata's zone.tab, the zones people live in."""
    table = files("tzdata.zoneinfo").joinpath("zone.tab").read_text(encoding="utf-8")
    rows = (line.split("\t") for line in table.splitlines() if line and not line.startswith("#"))
    return tuple((row[0], row[2]) for row in rows)


@cache
def _listed() -> frozenset[str]:
    return frozenset(zone for _, zone in _zone_table()) | {UTC}


@lru_cache(maxsize=512)
def _continent(country: str) -> str:
    region = icu.Region.getInstance(country).getContainingRegion(icu.URegionType.CONTINENT)
    return region.getRegionCode() if region else "001"
