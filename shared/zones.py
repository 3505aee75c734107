"""A time zone's name for a reader: its city in the reader's language
(CLDR's exemplar city: "Jerusalem Time", "توقيت القدس", "Toronto Time"),
never its country, unless the event names its own zone (``timezone_label``).

The one rule for the emails, the calendar files and the pages (the gateway
and notification both read it here: no service imports another's package)."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.core import get_global, parse_locale
from babel.dates import get_timezone_gmt

from shared.clock import utcnow


def zone_name(zone: str, language: str, at: datetime | None = None,
              label: Mapping[str, str] | None = None) -> str:
    """The name of ``zone`` in ``language`` at the moment ``at`` (now if not
    given; a GMT offset depends on it). ``label``: the event's own names of
    its zone, per language (pass it only for the event's zone); one in the
    reader's language is used as it is written."""
    return place_name(zone, language, label) or gmt(zone, language, at)


def zones_to_show(at: datetime, event_zone: str, attendee_zone: str | None,
                  label: Mapping[str, str] | None = None) -> list[tuple[str, Mapping[str, str] | None]]:
    """The zones a moment is shown in, each with its label: the event's, then
    the attendee's when its clock reads differently at that moment."""
    zones = [(event_zone, label)]
    if attendee_zone and offset(at, attendee_zone) != offset(at, event_zone):
        zones.append((attendee_zone, None))
    return zones


def offset(at: datetime, zone: str):
    """The zone's offset from UTC at ``at``."""
    return at.astimezone(ZoneInfo(zone)).utcoffset()


def place_name(zone: str, language: str, label: Mapping[str, str] | None = None) -> str | None:
    """``zone_name`` where it does not depend on the moment: the event's
    label, or the zone's place ("Jerusalem Time", "توقيت القدس"); None where
    only the GMT offset at a given moment can name it ("غرينتش+05:30")."""
    if label and label.get(language):
        return label[language]
    locale = Locale.parse(language)
    if canonical(zone) == "Etc/UTC":
        # "Coordinated Universal Time", "التوقيت العالمي المنسق"
        return _utc_name(locale)
    name = city(zone, language)
    return str(locale.zone_formats["region"]) % name if name else None


def canonical(zone: str) -> str:
    """CLDR's id of the zone (Asia/Tel_Aviv → Asia/Jerusalem)."""
    return get_global("zone_aliases").get(zone, zone)


def same_zone(zone: str) -> list[str]:
    """Every id of the zone, its own first (browsers may give an older one)."""
    return list(dict.fromkeys([zone, *_same_zone(canonical(zone))]))


def city(zone: str, language: str) -> str | None:
    """The zone's city in ``language`` ("القدس", "Kudüs"), None where none is known."""
    return _city(canonical(zone), Locale.parse(language))


def _city(zone: str, locale: Locale) -> str | None:
    """CLDR's exemplar city of the zone in the locale; else, for a language
    written in Latin letters, the city in the zone's id ("Kolkata", as CLDR
    itself derives it); else None: Arabic text gets no English word."""
    if zone.startswith("Etc/") or "/" not in zone:
        return None     # Etc/GMT+5, EST...: no city (and Etc's signs are inverted)
    for known in _same_zone(zone):
        city = (locale.time_zones.get(known) or {}).get("city")
        if city:
            return city
    if _latin(locale.language):
        return zone.rsplit("/", 1)[1].replace("_", " ")
    return None


def _same_zone(zone: str) -> list[str]:
    """The zone and its other ids: CLDR keeps its names under its own
    canonical id, often the older one (Kolkata's under "Asia/Calcutta")."""
    return [zone, *_aliases().get(zone, ())]


@lru_cache(maxsize=1)
def _aliases() -> dict[str, tuple[str, ...]]:
    others: dict[str, list[str]] = {}
    for old, new in get_global("zone_aliases").items():
        others.setdefault(new, []).append(old)
    return {zone: tuple(sorted(ids)) for zone, ids in others.items()}


@lru_cache(maxsize=32)
def _latin(language: str) -> bool:
    likely = get_global("likely_subtags").get(language, language)     # "en_Latn_US", "ar_Arab_EG"
    return parse_locale(likely)[2] == "Latn"


def _utc_name(locale: Locale) -> str | None:
    names = locale.time_zones.get("Etc/UTC") or {}
    return (names.get("long") or {}).get("standard")


def gmt(zone: str, language: str, at: datetime | None = None) -> str:
    """The zone's offset at ``at`` (now if not given) in the language's GMT
    format: "GMT+05:30", "غرينتش+05:30"."""
    return get_timezone_gmt((at or utcnow()).astimezone(ZoneInfo(zone)), width="long",
                            locale=Locale.parse(language))
