"""What organisers read of an event's registrations: the list (filtered a
page at a time), the counts by status, category, session and language, the
dashboard's queue, and the choices in use."""
from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import Text, cast, func, literal, or_, select, tuple_
from sqlalchemy.orm import Session

from shared.errors import BadQuery
from shared.schemas import SLUG
from shared.statuses import ACTIVE, ALL, SEATED, Status

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
    """Counts by status, overall and per category, session, language and
    country; how many were checked in; and the timeline of registrations
    (every status), as ``[UTC hour, count]`` for the hours that had any.

    Per language counts what attendees chose to listen in, so organisers can
    staff interpreters; cancelled, rejected and expired registrations are
    counted but are not listeners."""
    load_event(session, slug)
    rows = session.execute(select(registrations.c.status, registrations.c.category,
                                  registrations.c.sessions, registrations.c.sessions_waiting,
                                  registrations.c.language, registrations.c.country,
                                  registrations.c.created_at, registrations.c.checked_in_at)
                           .where(registrations.c.event_slug == slug)).all()
    def empty():
        return {status.value: 0 for status in ALL}
    totals = empty()
    by_category: dict[str, dict] = {}
    by_session: dict[str, dict] = {}
    by_language: dict[str, dict] = {}
    by_country: dict[str, dict] = {}
    by_hour: dict[datetime, int] = {}
    checked_in = 0
    for row in rows:
        totals[row.status] += 1
        checked_in += row.checked_in_at is not None
        hour = row.created_at.replace(minute=0, second=0, microsecond=0)
        by_hour[hour] = by_hour.get(hour, 0) + 1
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
            "per_language": by_language, "per_country": by_country, "checked_in": checked_in,
            "timeline": [[hour.isoformat(), count] for hour, count in sorted(by_hour.items())]}


def read_list(session: Session, slug: str, filters: dict, limit: int, after: str | None,
              reader: dict, audited: str | None) -> dict:
    """A page of the list, as an organiser reads it: ``audited`` ("read" or
    "exported") is recorded in the audit trail with the page and its filters."""
    page = list_for_event(session, slug, filters, limit, after)
    if audited is not None:
        audit.record(session, reader, audit.READINGS[audited], slug, filters=_recorded(filters),
                     after=after)
    return page


def list_for_event(session: Session, slug: str, filters: dict, limit: int,
                   after: str | None) -> dict:
    """A page of an event's registrations that pass ``filters`` (FILTERS),
    oldest first: ``{"rows", "next"}``, where ``next`` is the cursor of the
    following page (None: this was the last). The cursor is the id of the
    page's last registration; the next page is asked with the same filters."""
    load_event(session, slug)
    query = select(registrations).where(registrations.c.event_slug == slug, *_passing(filters))
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


def name_or_email_contains(text: str):
    """Registrations whose name or address holds ``text``, in any case (on
    SQLite, whose lower() knows ASCII only, other letters match as typed)."""
    pattern = _anywhere(text.lower())
    return or_(func.lower(registrations.c.name).like(pattern, escape=_ESCAPE),
               func.lower(registrations.c.email).like(pattern, escape=_ESCAPE))


_ESCAPE = "/"      # not a backslash: each database reads that in string literals its own way
_SESSION_SLUG = re.compile(SLUG)


def _anywhere(text: str) -> str:
    """A LIKE pattern for ``text`` anywhere, its own % and _ taken as they are."""
    for special in (_ESCAPE, "%", "_"):
        text = text.replace(special, _ESCAPE + special)
    return f"%{text}%"


def _holds_session(slug: str):
    """``sessions`` is a JSON list of slugs: its text holds the slug in
    quotes, in SQLite and PostgreSQL alike (slugs need no JSON escaping)."""
    if not _SESSION_SLUG.fullmatch(slug):
        raise _bad_filter("session", "not a session slug")
    return cast(registrations.c.sessions, Text).like(_anywhere(f'"{slug}"'), escape=_ESCAPE)


def _checked_in(value) -> object:
    if not isinstance(value, bool):
        raise _bad_filter("checked_in", "true or false")
    column = registrations.c.checked_in_at
    return column.is_not(None) if value else column.is_(None)


# The list's filters: each key gives the condition its value sets.
FILTERS = {
    "status": lambda value: registrations.c.status == value,
    "q": name_or_email_contains,
    "category": lambda value: registrations.c.category == value,
    "session": _holds_session,
    "language": lambda value: registrations.c.language == value,
    "checked_in": _checked_in,
}


def _passing(filters: dict) -> list:
    """The conditions of the filters given (a None or empty value filters nothing)."""
    unknown = sorted(set(filters) - set(FILTERS))
    if unknown:
        raise BadQuery(f"unknown filters: {', '.join(unknown)}",
                       [{"field": key, "message": "not a filter"} for key in unknown])
    given = _given(filters)
    for key, value in given.items():
        if key != "checked_in" and not isinstance(value, str):
            raise _bad_filter(key, "must be text")
    return [FILTERS[key](value) for key, value in given.items()]


def _given(filters: dict) -> dict:
    return {key: value for key, value in filters.items() if value is not None and value != ""}


def _recorded(filters: dict) -> dict:
    """The filters as the audit trail keeps them: the text searched for only
    as its having been, since it may name a person and the trail names nobody."""
    return {key: True if key == "q" else value for key, value in _given(filters).items()}


def _bad_filter(key: str, message: str) -> BadQuery:
    return BadQuery(f"{key}: {message}", [{"field": key, "message": message}])


def queue(session: Session, slug: str, limit: int) -> dict:
    """The dashboard's two lines, ``limit`` of each: holds by deadline,
    soonest first (seats that may come free), and the waiting list in its
    order, with how long each line is."""
    load_event(session, slug)
    of = registrations.c
    holds = _line(session, slug, Status.HELD, limit, of.hold_expires_at.nulls_last())
    waiting = _line(session, slug, Status.WAITLISTED, limit, of.waitlist_position.nulls_last())
    return {"holds": [{"id": row.id, "name": row.name, "category": row.category,
                       "hold_expires_at": _iso(row.hold_expires_at)} for row in holds],
            "holds_total": _count(session, slug, Status.HELD),
            "waiting": [{"id": row.id, "name": row.name, "category": row.category,
                         "waitlist_position": row.waitlist_position,
                         "created_at": row.created_at.isoformat()} for row in waiting],
            "waiting_total": _count(session, slug, Status.WAITLISTED)}


def _line(session: Session, slug: str, status: Status, limit: int, first_by) -> list:
    of = registrations.c
    return list(session.execute(select(registrations).where(
        of.event_slug == slug, of.status == status)
        .order_by(first_by, of.created_at, of.id).limit(limit)))


def _count(session: Session, slug: str, status: Status) -> int:
    return session.execute(select(func.count()).select_from(registrations).where(
        registrations.c.event_slug == slug, registrations.c.status == status)).scalar_one()


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def told(session: Session, slug: str, moved: list[str], cancelled: list[str]) -> dict[str, int]:
    """How many attendees a programme change tells of each of these
    sessions, counted as the services that tell them choose: of a moved
    session, those with a seat who hold it (notification); of a cancelled
    one, those with a seat or waiting who hold it or wait for it (capacity)."""
    rows = session.execute(select(registrations.c.status, registrations.c.sessions,
                                  registrations.c.sessions_waiting).where(
        registrations.c.event_slug == slug,
        registrations.c.status.in_([*SEATED, Status.WAITLISTED]))).all()
    counts = dict.fromkeys([*moved, *cancelled], 0)
    for row in rows:
        for session_slug in moved:
            counts[session_slug] += row.status in SEATED and session_slug in row.sessions
        for session_slug in cancelled:
            counts[session_slug] += session_slug in (*row.sessions, *row.sessions_waiting)
    return counts
