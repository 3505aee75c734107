"""Moments as readers write them: the date and time in a zone, in the
reader's language as their country writes it, with the zone's name.

The country matters: Iraqi, Syrian, Lebanese, Jordanian and Palestinian
readers write December "كانون الأول", Egyptians "ديسمبر"; CLDR has both
(``ar_IQ``, ``ar_EG``), so a reader's locale is their language in their
country wherever CLDR knows it. Where CLDR's patterns read wrong to native
readers, the correction is here, once."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton, format_time

from shared.zones import zone_name, zones_to_show

# Urdu: CLDR's time has a Latin "PM", so the time names its part of the day
# ("2:00 دوپہر"). Urdu and Malay: Babel's join runs the year into the time
# ("2026 2:00 PM"); CLDR's "at" join, which browsers use, does not.
_TIME_SKELETONS = {"ur": "Bhm"}
_JOINS = {"ur": "{1} کو {0}", "ms": "{1} pada {0}"}


@cache
def reader_locale(language: str, country: str | None = None) -> Locale:
    """``language`` as written in ``country`` where CLDR has it, else as
    the language's own default."""
    if country:
        try:
            return Locale.parse(f"{language}_{country}")
        except (UnknownLocaleError, ValueError):
            pass
    return Locale.parse(language)


def moment(when: datetime, zone: str, language: str, country: str | None = None,
           label: Mapping[str, str] | None = None, width: str = "full") -> str:
    """"Friday, December 18, 2026, 2:00 PM (Jerusalem Time)", "الجمعة، 18
    كانون الأول 2026، 2:00 م (توقيت القدس)"; ``width``: "full", "long" or "medium";
    ``label``: the event's own names of its zone, when ``zone`` is the event's."""
    local = when.astimezone(ZoneInfo(zone))
    locale = reader_locale(language, country)
    skeleton = _TIME_SKELETONS.get(language)
    time = (format_skeleton(skeleton, local, locale=locale) if skeleton
            else format_time(local, "short", locale=locale))
    joined = _JOINS.get(language) or str(locale.datetime_formats[width]).replace("'", "")
    text = joined.replace("{0}", time).replace("{1}", format_date(local, width, locale=locale))
    # the zone's name is in the reader's language (a label only where it is given in it)
    return f"{text} ({zone_name(zone, language, when, label)})"


def in_zones(when: datetime, event_zone: str, reader_zone: str | None, language: str,
             country: str | None = None, label: Mapping[str, str] | None = None,
             width: str = "full") -> list[str]:
    """The moment in the event's zone, then in the reader's when their
    clock reads differently then (shared.zones.zones_to_show)."""
    return [moment(when, zone, language, country, zone_label, width)
            for zone, zone_label in zones_to_show(when, event_zone, reader_zone, label)]
