"""iCalendar files: one VEVENT per chosen session, in UTC, with a UID that
stays the same for the registration and session so that calendar programs
update the entry (SEQUENCE counts the event's revisions) instead of adding one.
The DESCRIPTION says the time in the event's zone as the messages say it (its
city, or the event's ``timezone_label``), then the join link for a seat."""
from __future__ import annotations

from collections.abc import Collection
from datetime import UTC

from icalendar import Calendar, Event, vCalAddress, vText

from shared.clock import utcnow
from shared.dates import moment
from shared.i18n import localized
from shared.schemas import EventSpec


def build(event: EventSpec, registration_id: str, sessions: list[str], language: str,
          revision: int, organiser: str, seated: bool, method: str = "PUBLISH",
          attendee: tuple[str, str] | None = None, country: str | None = None,
          cancelled: Collection[str] = ()) -> bytes:
    """``attendee`` (name, email): an invitation (METHOD:REQUEST) names whom
    it invites (RFC 5546), which is how Outlook and Gmail show it as theirs.
    ``country``: the attendee's, for the dates as it writes them.
    ``cancelled``: sessions that were the attendee's until the organisers
    cancelled them; they stay, as STATUS:CANCELLED under the same UID, so
    that calendar programs strike them out."""
    calendar = Calendar()
    calendar.add("prodid", "-//event-registration//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    now = utcnow()
    for session in event.sessions:
        if session.slug not in sessions and session.slug not in cancelled:
            continue
        is_cancelled = session.cancelled or session.slug in cancelled
        entry = Event()
        entry.add("uid", f"{registration_id}.{session.slug}@event-registration")
        entry.add("dtstamp", now)
        entry.add("dtstart", session.starts_at.astimezone(UTC))
        entry.add("dtend", session.ends_at.astimezone(UTC))
        entry.add("sequence", revision)
        entry.add("status", "CANCELLED" if is_cancelled else "CONFIRMED")
        title = localized(event.title, language, event.default_language)
        entry.add("summary", f"{title}: {localized(session.title, language, event.default_language)}")
        if event.venue:
            entry.add("location", vText(event.venue))
        description = [moment(session.starts_at, event.timezone, language, country,
                              event.timezone_label)]
        if seated and event.join_url and not is_cancelled:
            entry.add("url", str(event.join_url))
            description.append(str(event.join_url))
        entry.add("description", "\n".join(description))
        entry.add("organizer", vCalAddress(f"mailto:{organiser}"))
        if attendee is not None:
            entry.add("attendee", _invited(*attendee))
        calendar.add_component(entry)
    return calendar.to_ical()


def _invited(name: str, email: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{email}")
    # A quoted parameter holds no quote and no control character (RFC 5545
    # QSAFE-CHAR); a name is text, not syntax.
    name = "".join(char for char in name if char.isprintable()).replace('"', "'")
    address.params.update(cn=vText(name), role=vText("REQ-PARTICIPANT"),
                          partstat=vText("ACCEPTED"), rsvp=vText("FALSE"))
    return address


