"""iCalendar files: one VEVENT per chosen session, in UTC, with a UID that
stays the same for the registration and session so that calendar programs
update the entry (SEQUENCE counts the event's revisions) instead of adding one."""
from __future__ import annotations

from datetime import UTC

from icalendar import Calendar, Event, vCalAddress, vText

from shared.clock import utcnow
from shared.i18n import localized
from shared.schemas import EventSpec


def build(event: EventSpec, registration_id: str, sessions: list[str], language: str,
          revision: int, organiser: str, seated: bool, method: str = "PUBLISH") -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//event-registration//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    now = utcnow()
    for session in event.sessions:
        if session.slug not in sessions:
            continue
        entry = Event()
        entry.add("uid", f"{registration_id}.{session.slug}@event-registration")
        entry.add("dtstamp", now)
        entry.add("dtstart", session.starts_at.astimezone(UTC))
        entry.add("dtend", session.ends_at.astimezone(UTC))
        entry.add("sequence", revision)
        title = localized(event.title, language, event.default_language)
        entry.add("summary", f"{title}: {localized(session.title, language, event.default_language)}")
        if event.venue:
            entry.add("location", vText(event.venue))
        if seated and event.join_url:
            entry.add("url", str(event.join_url))
            entry.add("description", str(event.join_url))
        entry.add("organizer", vCalAddress(f"mailto:{organiser}"))
        calendar.add_component(entry)
    return calendar.to_ical()


