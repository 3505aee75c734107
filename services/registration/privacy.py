"""What an attendee may do with their own data: change their details, or
erase them. Erasure keeps the registration's row (its status, category,
sessions, language and country), so the event's counts stay, and blanks
what names or places the person: name, address, answers, time zone. Every other service is told
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
from shared.db import skip_locked
from shared.errors import Invalid, NotAllowed
from shared.outbox import scrub_attendees
from shared.schemas import DetailsChange, EventSpec, event_revision, field_errors, parse
from shared.statuses import ACTIVE, FINAL, Status

from . import audit
from .catalogue import load_event
from .models import events, idempotency_keys, registrations
from .models import outbox as outbox_table
from .registrations import (
    Links,
    _answer_problems,
    _get,
    _language_problems,
    _set_status,
    release_seat,
    view,
)

# What names or places the person; status, category, sessions, language and
# country stay, so the event's counts stay.
ERASED = {"name": "", "email": "", "answers": {}, "timezone": "UTC"}
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
    problems = [] if change.language is None else _language_problems(event, change.language)
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
        _set_status(session, outbox, None, row, Status.CANCELLED, cause="erased", announced=False,
                    waitlist_position=None, hold_expires_at=None)
        release_seat(session, outbox, row)
    _erase_rows(session, outbox, [row.id], row.event_slug)
    scrub_attendees(session, outbox_table, registration_id=row.id)
    audit.record(session, actor, audit.REGISTRATION_ERASED, row.event_slug, registration=row.id)


def _erase_rows(session: Session, outbox, ids: list[str], slug: str) -> None:
    now = utcnow()
    session.execute(update(registrations).where(registrations.c.id.in_(ids)).values(
        **ERASED, email_key=registrations.c.id, erased_at=now, updated_at=now))
    # The stored answer to a repeated request names nobody, but its hash is of the request.
    session.execute(delete(idempotency_keys).where(idempotency_keys.c.registration_id.in_(ids)))
    outbox.add_many(session, [(RegistrationErased(registration_id=i, event_slug=slug), None)
                              for i in ids])


def expire_personal_data(session: Session, outbox, retention: timedelta,
                         limit: int = RETENTION_BATCH) -> int:
    """Erase up to ``limit`` attendees of events whose last session ended
    more than ``retention`` ago; returns how many (0: none is left). An
    event that grows a later session, or takes a late registration, is
    swept again when its time comes. Replicas share the work (SKIP LOCKED)."""
    now = utcnow()
    ended = [row.slug for row in session.execute(select(events.c.slug, events.c.revision,
                                                        events.c.spec))
             if _ended(event_revision(row.slug, row.revision, row.spec)) + retention <= now]
    if not ended:
        return 0
    rows = session.execute(skip_locked(select(registrations.c.id, registrations.c.event_slug).where(
        registrations.c.event_slug.in_(ended), registrations.c.erased_at.is_(None))
        .order_by(registrations.c.event_slug, registrations.c.id).limit(limit), session)).all()
    by_event: dict[str, list[str]] = {}
    for row in rows:
        by_event.setdefault(row.event_slug, []).append(row.id)
    for slug, ids in by_event.items():
        _erase_rows(session, outbox, ids, slug)
        scrub_attendees(session, outbox_table, event_slug=slug)
        audit.record(session, audit.RETENTION, audit.PERSONAL_DATA_EXPIRED, slug,
                     registrations=len(ids))
    return len(rows)


def _ended(event: EventSpec) -> datetime:
    return max(session.ends_at for session in event.sessions)
