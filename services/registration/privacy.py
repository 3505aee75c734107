"""What an attendee may do with their own data: change their details, or
erase them. Erasure keeps the registration's row (its status, category,
sessions, language and country), so the event's counts stay, and blanks
what names the person: name, address, answers. Every other service is told
(``RegistrationErased``) and erases its copies; the seat is released first.
RETENTION_DAYS after an event's last session, its attendees are erased alike.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.contracts import RegistrationErased
from shared.errors import Invalid, NotAllowed
from shared.outbox import scrub_attendees
from shared.schemas import DetailsChange, EventSpec, event_revision, field_errors, parse
from shared.statuses import ACTIVE, FINAL

from . import audit
from .catalogue import load_event
from .models import events, idempotency_keys, registrations
from .models import outbox as outbox_table
from .organisations import event_owner
from .registrations import (
    Links,
    _answer_problems,
    _get,
    _set_status,
    release_seat,
    view,
)

ERASED = {"name": "", "email": "", "answers": {}}
RETENTION_BATCH = 500       # registrations erased per transaction


def change_details(session: Session, outbox, links: Links, registration_id: str,
                   changes: dict) -> dict:
    """Name, language, time zone and answers, as the attendee corrects them;
    every message from now on follows (the snapshot goes out, unannounced)."""
    try:
        change = parse(DetailsChange, changes)
    except ValidationError as exc:
        raise Invalid("these details are not valid", field_errors(exc)) from None
    row = _get(session, registration_id, lock=True)
    if row.status in FINAL:
        raise NotAllowed(f"a registration that is {row.status} cannot change")
    event, _ = load_event(session, row.event_slug)
    values = change.model_dump(exclude_none=True)
    problems = []
    if change.language is not None and change.language not in event.languages:
        problems.append({"field": "language",
                         "message": f"choose one of {', '.join(event.languages)}"})
    if change.answers is not None:
        problems.extend(_answer_problems(event, change.answers))
    if problems:
        raise Invalid("these details do not fit the event", problems)
    if any(getattr(row, field) != value for field, value in values.items()):
        _set_status(session, outbox, links, row, row.status, cause="details_changed", **values)
    return view(_get(session, registration_id))


def erase(session: Session, outbox, registration_id: str, actor: dict) -> None:
    """The attendee's own erasure (``audit.ATTENDEE``) or an organiser's."""
    row = _get(session, registration_id, lock=True)
    if row.status in ACTIVE:
        # No message: the person asked to be forgotten, not to be written to.
        session.execute(update(registrations).where(registrations.c.id == row.id).values(
            status="cancelled", status_seq=row.status_seq + 1, waitlist_position=None,
            hold_expires_at=None))
        release_seat(session, outbox, row)
    _erase_rows(session, outbox, [row.id], row.event_slug)
    audit.record(session, actor, audit.REGISTRATION_ERASED, row.event_slug,
                 event_owner(session, row.event_slug), registration=row.id)


def _erase_rows(session: Session, outbox, ids: list[str], slug: str) -> None:
    now = utcnow()
    session.execute(update(registrations).where(registrations.c.id.in_(ids)).values(
        **ERASED, email_key=registrations.c.id, erased_at=now, updated_at=now))
    # The stored answer to a repeated request names nobody, but its hash is of the request.
    session.execute(delete(idempotency_keys).where(idempotency_keys.c.registration_id.in_(ids)))
    if len(ids) == 1:
        scrub_attendees(session, outbox_table, registration_id=ids[0])
    outbox.add_many(session, [(RegistrationErased(registration_id=i, event_slug=slug), None)
                              for i in ids])


def expire_personal_data(session: Session, outbox, retention: timedelta,
                         limit: int = RETENTION_BATCH) -> int:
    """Erase the attendees of one event whose last session ended more than
    ``retention`` ago, ``limit`` at a time; returns how many were erased
    (0: nothing is left to erase)."""
    now = utcnow()
    for row in session.execute(select(events.c.slug, events.c.revision, events.c.spec).where(
            events.c.personal_data_erased_at.is_(None))):
        event = event_revision(row.slug, row.revision, row.spec)
        if _ended(event) + retention <= now:
            return _expire_event(session, outbox, event.slug, limit)
    return 0


def _ended(event: EventSpec) -> datetime:
    return max(session.ends_at for session in event.sessions)


def _expire_event(session: Session, outbox, slug: str, limit: int) -> int:
    ids: list[str] = list(session.execute(select(registrations.c.id).where(
        registrations.c.event_slug == slug, registrations.c.erased_at.is_(None))
        .order_by(registrations.c.id).limit(limit)).scalars())
    if ids:
        _erase_rows(session, outbox, ids, slug)
    if len(ids) < limit:
        scrub_attendees(session, outbox_table, event_slug=slug)
        session.execute(update(events).where(events.c.slug == slug).values(
            personal_data_erased_at=utcnow()))
        audit.record(session, audit.RETENTION, audit.PERSONAL_DATA_EXPIRED, slug,
                     event_owner(session, slug))
    return len(ids) or 1
