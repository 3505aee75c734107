"""Times as attendees read them: in the event's zone and in their own,
written the way their language writes dates (Babel, CLDR data)."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time, get_timezone_location


def moment(value: datetime, zone: str, language: str) -> str:
    """e.g. 'Friday, 18 December 2026 at 14:00 (Israel Time)' in the given language."""
    local = value.astimezone(ZoneInfo(zone))
    locale = Locale.parse(language)
    date = format_date(local, format="full", locale=locale)
    time = format_time(local, format="short", locale=locale)
    place = get_timezone_location(ZoneInfo(zone), locale=locale)
    # The language's own way of joining a date and a time ("{1} 'at' {0}").
    joined = str(locale.datetime_formats["full"]).replace("'", "")
    return f"{joined.replace('{0}', time).replace('{1}', date)} ({place})"


def both_zones(value: datetime, event_zone: str, attendee_zone: str | None, language: str) -> list[str]:
    """The moment in the event's zone, then in the attendee's if it differs."""
    lines = [moment(value, event_zone, language)]
    if attendee_zone and _offset(value, attendee_zone) != _offset(value, event_zone):
        lines.append(moment(value, attendee_zone, language))
    return lines


def _offset(value: datetime, zone: str):
    return value.astimezone(ZoneInfo(zone)).utcoffset()
