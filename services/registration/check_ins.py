"""The door: a seat's check-in code (shared/check_in.py) lets its attendee
in, once, and the door finds those who came without theirs by name or
address.

Checking in is one conditional UPDATE, so two doors reading the same code
at once let the attendee in once: the other hears when they came in.
"""
from __future__ import annotations

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from shared import check_in as codes
from shared.clock import utcnow
from shared.errors import Conflict, NotFound
from shared.statuses import SEATED

from . import audit
from .catalogue import load_event
from .models import registrations
from .reports import name_or_email_contains


def check_in(session: Session, slug: str, text: str, actor: dict) -> dict:
    """Let in the attendee whose seat in this event ``text`` names (as read
    at the door); NotFound if it names none, Conflict if they are in already."""
    code = codes.read(text)
    row = None if code is None else session.execute(select(registrations).where(
        *_seats(slug), registrations.c.check_in_code == code)).first()
    if row is None:
        raise _not_a_seat()
    now = utcnow()
    arrived = session.execute(update(registrations).where(
        registrations.c.id == row.id, registrations.c.checked_in_at.is_(None), *_seats(slug))
        .values(checked_in_at=now, updated_at=now).returning(*registrations.c)).first()
    if arrived is None:
        raise _refusal(session, row.id)
    audit.record(session, actor, audit.CHECKED_IN, slug, registration=row.id)
    return at_the_door(arrived)


def search(session: Session, slug: str, query: str, limit: int) -> dict:
    """How many of the seats came in, of how many seats, and, for a
    non-empty ``query``, up to ``limit`` seats whose name or address holds
    it, or whose code it is, by name (a door that was refused a code asks
    who it was)."""
    load_event(session, slug)
    checked_in = session.execute(select(func.count()).select_from(registrations).where(
        *_seats(slug), registrations.c.checked_in_at.is_not(None))).scalar_one()
    seats = session.execute(select(func.count()).select_from(registrations).where(
        *_seats(slug))).scalar_one()
    code = codes.read(query)
    found = name_or_email_contains(query) if code is None else or_(
        name_or_email_contains(query), registrations.c.check_in_code == code)
    matches = [] if not query else session.execute(
        select(registrations).where(*_seats(slug), found)
        .order_by(registrations.c.name, registrations.c.id).limit(limit)).all()
    return {"checked_in": checked_in, "seats": seats,
            "matches": [at_the_door(row) for row in matches]}


def at_the_door(row) -> dict:
    """What the door shows of an attendee."""
    return {"id": row.id, "name": row.name, "status": row.status, "category": row.category,
            "sessions": row.sessions,
            "checked_in_at": row.checked_in_at.isoformat() if row.checked_in_at else None,
            "check_in_code": row.check_in_code}


def _seats(slug: str) -> tuple:
    """The registrations with a seat in the event: only they are let in."""
    return registrations.c.event_slug == slug, registrations.c.status.in_(SEATED)


def _refusal(session: Session, registration_id: str) -> Conflict | NotFound:
    """Why the UPDATE let nobody in, read after it (so after the other
    door's commit): they came in already, or the seat went meanwhile."""
    row = session.execute(select(registrations.c.name, registrations.c.checked_in_at).where(
        registrations.c.id == registration_id)).one()
    if row.checked_in_at is None:
        return _not_a_seat()
    return Conflict(f"{row.name} was checked in at {row.checked_in_at.isoformat()}",
                    [{"field": "code", "message": "already checked in"}])


def _not_a_seat() -> NotFound:
    return NotFound("not a seat of this event", [{"field": "code", "message": "unknown"}])
