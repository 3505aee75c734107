"""Times as attendees read them: in the event's zone and in their own,
written the way their language writes dates (Babel, CLDR data). A zone is
named by its city, or by the event's own ``timezone_label`` (shared.zones)."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time

from shared.zones import zone_name, zones_to_show


def moment(value: datetime, zone: str, language: str, label: Mapping[str, str] | None = None) -> str:
    """e.g. 'Friday, 18 December 2026 at 14:00 (Jerusalem Time)' in the given
    language; ``label``: the event's names of its zone when ``zone`` is the event's."""
    local = value.astimezone(ZoneInfo(zone))
    locale = Locale.parse(language)
    date = format_date(local, format="full", locale=locale)
    time = format_time(local, format="short", locale=locale)
    # The language's own way of joining a date and a time ("{1} 'at' {0}").
    joined = str(locale.datetime_formats["full"]).replace("'", "")
    return f"{joined.replace('{0}', time).replace('{1}', date)} ({zone_name(zone, language, value, label)})"


def both_zones(value: datetime, event_zone: str, attendee_zone: str | None, language: str,
               labels: Mapping[str, str] | None = None) -> list[str]:
    """The moment in the event's zone (named by ``labels``, the event's
    ``timezone_label``, when it has one), then in the attendee's if it differs."""
    return [moment(value, zone, language, label)
            for zone, label in zones_to_show(value, event_zone, attendee_zone, labels)]
