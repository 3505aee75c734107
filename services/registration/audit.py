"""The audit trail: who (key id and name) did what, when, to which event.

An entry is written in the transaction of the action it records, so the
trail holds what happened, no more and no less. Entries name registrations
by id only: erasing an attendee leaves nothing of them here.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.errors import BadQuery

from .models import audit_trail, events

ORGANISATION_CREATED = "organisation.created"
KEY_CREATED = "key.created"
KEY_REVOKED = "key.revoked"
EVENT_CREATED = "event.created"
EVENT_CHANGED = "event.changed"
REGISTRATIONS_READ = "registrations.read"
REGISTRATIONS_EXPORTED = "registrations.exported"
READINGS = {"read": REGISTRATIONS_READ, "exported": REGISTRATIONS_EXPORTED}
ANNOUNCEMENT = "announcement.sent"
REGISTRATION_CANCELLED = "registration.cancelled"
REGISTRATION_ERASED = "registration.erased"
CHECKED_IN = "registration.checked_in"
PERSONAL_DATA_EXPIRED = "event.personal_data_erased"

# Who acts when no key does.
ATTENDEE = {"key_id": "attendee", "key_name": "the attendee (their token)", "organisation": None}
RETENTION = {"key_id": "retention", "key_name": "RETENTION_DAYS", "organisation": None}
# A dry run (catalogue.preview_update): what it records is rolled back.
PREVIEW = {"key_id": "preview", "key_name": "a preview, rolled back", "organisation": None}


def record(session: Session, actor: dict, action: str, event: str | None = None,
           organisation: str | None = None, **details) -> None:
    """Whose trail it is: ``organisation``, else the event's owner (read by
    the INSERT itself), else the actor's."""
    owner: object = organisation or actor["organisation"]
    if organisation is None and event is not None:
        owner = select(events.c.organisation_slug).where(events.c.slug == event).scalar_subquery()
    session.execute(audit_trail.insert().values(
        at=utcnow(), key_id=actor["key_id"], key_name=actor["key_name"],
        organisation_slug=owner, event_slug=event, action=action, details=details))


# Whose entry it is, for organisations.visible.
WHOSE = (audit_trail.c.organisation_slug, audit_trail.c.event_slug)


def page(session: Session, visible: list, event: str | None, limit: int,
         after: str | None) -> dict:
    """The entries a principal may read (``visible``: organisations.visible
    of WHOSE), oldest first, ``limit`` of them after the cursor: ``{"entries",
    "next"}`` (the next page's cursor, or None). The cursor is an entry's id:
    a feed to page through, not to tail (an entry committed late may take an
    id below one already read)."""
    query = select(audit_trail).where(*visible)
    if event is not None:
        query = query.where(audit_trail.c.event_slug == event)
    if after is not None:
        if not after.isdigit():
            raise BadQuery("after: not a cursor of this list", [{"field": "after", "message": "unknown"}])
        query = query.where(audit_trail.c.id > int(after))
    rows = session.execute(query.order_by(audit_trail.c.id).limit(limit + 1)).all()
    return {"entries": [_view(row) for row in rows[:limit]],
            "next": str(rows[limit - 1].id) if len(rows) > limit else None}


def _view(row) -> dict:
    return {"id": str(row.id), "at": row.at.isoformat(), "key_id": row.key_id,
            "key_name": row.key_name, "organisation": row.organisation_slug,
            "event": row.event_slug, "action": row.action, "details": row.details}
