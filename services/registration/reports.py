"""What organisers read of an event's registrations: the list, the counts
by status, category, session and language, and the choices in use."""
from __future__ import annotations

from sqlalchemy import literal, select, tuple_
from sqlalchemy.orm import Session

from shared.errors import BadQuery
from shared.statuses import ACTIVE, ALL, Status

from . import audit
from .catalogue import load_event
from .models import registrations
from .registrations import view


def choices_in_use(session: Session, slug: str) -> dict:
    """Sessions, categories and languages that active registrations chose
    (a session waited for, or cancelled from under them, counts: their
    calendars name it)."""
    rows = session.execute(select(registrations.c.sessions, registrations.c.sessions_waiting,
                                  registrations.c.sessions_cancelled, registrations.c.category,
                                  registrations.c.language).where(
        registrations.c.event_slug == slug, registrations.c.status.in_(ACTIVE))).all()
    return {"sessions": {s for row in rows
                         for s in (*row.sessions, *row.sessions_waiting, *row.sessions_cancelled)},
            "categories": {row.category for row in rows if row.category},
            "languages": {row.language for row in rows}}


def stats(session: Session, slug: str) -> dict:
    """Counts by status, overall and per category, session, language and country.

    Per language counts what attendees chose to listen in, so organisers can
    staff interpreters; cancelled, rejected and expired registrations are
    counted but are not listeners."""
    load_event(session, slug)
    rows = session.execute(select(registrations.c.status, registrations.c.category,
                                  registrations.c.sessions, registrations.c.sessions_waiting,
                                  registrations.c.language, registrations.c.country)
                           .where(registrations.c.event_slug == slug)).all()
    def empty():
        return {status.value: 0 for status in ALL}
    totals = empty()
    by_category: dict[str, dict] = {}
    by_session: dict[str, dict] = {}
    by_language: dict[str, dict] = {}
    by_country: dict[str, dict] = {}
    for row in rows:
        totals[row.status] += 1
        by_category.setdefault(row.category or "", empty())[row.status] += 1
        by_language.setdefault(row.language, empty())[row.status] += 1
        if row.country:
            by_country.setdefault(row.country, empty())[row.status] += 1
        for chosen in row.sessions:
            by_session.setdefault(chosen, empty())[row.status] += 1
        for awaited in row.sessions_waiting:     # a seat in the event, in line for this session
            by_session.setdefault(awaited, empty())[Status.WAITLISTED] += 1
    by_category.pop("", None)
    return {"registrations": totals, "per_category": by_category, "per_session": by_session,
            "per_language": by_language, "per_country": by_country}


def read_list(session: Session, slug: str, status: str | None, limit: int, after: str | None,
              reader: dict, audited: str | None) -> dict:
    """A page of the list, as an organiser reads it: ``audited`` ("read" or
    "exported") is recorded in the audit trail with the page."""
    page = list_for_event(session, slug, status, limit, after)
    if audited is not None:
        audit.record(session, reader, audit.READINGS[audited], slug, status=status, after=after)
    return page


def list_for_event(session: Session, slug: str, status: str | None, limit: int,
                   after: str | None) -> dict:
    """A page of an event's registrations, oldest first: ``{"rows", "next"}``,
    where ``next`` is the cursor of the following page (None: this was the
    last). The cursor is the id of the page's last registration."""
    load_event(session, slug)
    query = select(registrations).where(registrations.c.event_slug == slug)
    if status:
        query = query.where(registrations.c.status == status)
    if after is not None:
        mark = session.execute(select(registrations.c.created_at).where(
            registrations.c.id == after, registrations.c.event_slug == slug)).scalar()
        if mark is None:
            raise BadQuery("after: not a cursor of this list", [{"field": "after", "message": "unknown"}])
        query = query.where(tuple_(registrations.c.created_at, registrations.c.id) > tuple_(
            literal(mark, registrations.c.created_at.type), literal(after)))
    rows = session.execute(query.order_by(registrations.c.created_at, registrations.c.id)
                           .limit(limit + 1)).all()
    return {"rows": [view(row) for row in rows[:limit]],
            "next": rows[limit - 1].id if len(rows) > limit else None}
