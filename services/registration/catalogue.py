"""The event catalogue: creating, changing and reading events.

Every change is published as ``event.published`` with the whole document, so
capacity and notification keep their own copies and never ask for it.
"""
from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.contracts import EventPublished, SeatRules
from shared.db import locked
from shared.errors import Conflict, Invalid, NotFound
from shared.schemas import (
    EventSpec,
    cancelled_sessions,
    event_revision,
    field_errors,
    moved_sessions,
    parse,
)

from . import audit
from .models import events
from .organisations import event_owner, visible


def create_event(session: Session, outbox, spec: EventSpec, organisation: str,
                 actor: dict) -> dict:
    """Slugs are one namespace for the installation: the event page's URL."""
    if session.execute(select(events.c.slug).where(events.c.slug == spec.slug)).first():
        raise Conflict(f"an event with slug {spec.slug!r} exists", [{"field": "slug",
                                                                     "message": "already taken"}])
    now = utcnow()
    document = spec.model_dump(mode="json")
    session.execute(events.insert().values(slug=spec.slug, organisation_slug=organisation,
                                           spec=document, revision=1, created_at=now,
                                           updated_at=now))
    outbox.add(session, EventPublished(event=spec, revision=1))
    audit.record(session, actor, audit.EVENT_CREATED, spec.slug, organisation)
    return document


def list_events(session: Session, principal: dict) -> list[dict]:
    """The events a key reaches, oldest first."""
    query = select(events.c.slug, events.c.organisation_slug, events.c.spec, events.c.revision
                   ).where(*visible(principal, events.c.organisation_slug, events.c.slug))
    return [{**event_revision(row.slug, row.revision, row.spec).model_dump(mode="json"),
             "revision": row.revision, "organisation": row.organisation_slug}
            for row in session.execute(query.order_by(events.c.created_at, events.c.slug))]


def load_event(session: Session, slug: str, lock: str | None = None) -> tuple[EventSpec, int]:
    """The event and its revision. ``lock="share"`` (a registration) keeps it
    from changing until the transaction ends; ``lock="update"`` (a change)
    waits for those and keeps them out."""
    query = select(events.c.spec, events.c.revision).where(events.c.slug == slug)
    if lock:
        query = locked(query, session, read=lock == "share")
    row = session.execute(query).first()
    if row is None:
        raise NotFound(f"no event {slug!r}")
    return event_revision(slug, row.revision, row.spec), row.revision


def get_event(session: Session, slug: str) -> dict:
    """The event as organisers read it: its document, revision and owner."""
    spec, revision = load_event(session, slug)
    return _as_read(session, spec, revision)


def _as_read(session: Session, spec: EventSpec, revision: int) -> dict:
    return {**spec.model_dump(mode="json"), "revision": revision,
            "organisation": event_owner(session, spec.slug)}


def replace_event(session: Session, outbox, spec: EventSpec, revision: int) -> dict:
    document = spec.model_dump(mode="json")
    session.execute(update(events).where(events.c.slug == spec.slug).values(
        spec=document, revision=revision + 1, updated_at=utcnow()))
    outbox.add(session, EventPublished(event=spec, revision=revision + 1))
    return document


def update_event(session: Session, outbox, slug: str, changes: dict, choices_in_use,
                 actor: dict) -> dict:
    """Apply a partial change (top-level fields replaced) and republish.

    ``choices_in_use(session, slug)`` maps "sessions"/"categories"/"languages"
    to the values registrations already use: those cannot disappear from under
    them. It is asked after the event is locked, so registrations being stored
    (which hold the event shared) are counted, and new ones wait for the change.
    """
    spec, revision = load_event(session, slug, lock="update")
    if "slug" in changes and changes["slug"] != slug:
        raise Invalid("the slug of an event cannot change", [{"field": "slug", "message": "fixed"}])
    before = spec.model_dump(mode="json")
    document = {**before, **changes}
    try:
        updated = parse(EventSpec, document)
    except ValidationError as exc:
        raise Invalid("the changed event is not valid", field_errors(exc)) from None
    was_cancelled = {s.slug for s in spec.sessions} - set(spec.open_sessions)
    reopened = sorted(was_cancelled & set(updated.open_sessions))
    if reopened:
        raise Conflict("a cancelled session stays cancelled; add a new one instead",
                       [{"field": "sessions", "message": f"cancelled: {', '.join(reopened)}"}])
    problems = _removed_in_use(updated, choices_in_use(session, slug))
    if problems:
        raise Conflict("registrations still use what the change removes", problems)
    if updated == spec:
        return document
    audit.record(session, actor, audit.EVENT_CHANGED, slug,
                 fields=sorted(k for k in changes if before.get(k) != document.get(k)))
    return replace_event(session, outbox, updated, revision)


def preview_update(session: Session, slug: str, changes: dict, choices_in_use, told) -> dict:
    """update_event's dry run, for organisers to see what a change would do
    before they make it: the very same change, its checks and its errors,
    made in a savepoint that is rolled back, its messages and audit entry
    dropped with it. ``{"event"}`` as get_event would read it after,
    ``{"seat_rules"}`` as capacity would take them, and ``{"told"}``: per
    session the change moves or cancels, how many attendees would hear of
    it (``told(session, slug, moved, cancelled)``)."""
    before, _ = load_event(session, slug, lock="update")
    savepoint = session.begin_nested()
    try:
        update_event(session, _UNSENT, slug, changes, choices_in_use, audit.PREVIEW)
        # Read past load_event, whose parsed revisions are kept: this one never is.
        stored = session.execute(select(events.c.spec, events.c.revision)
                                 .where(events.c.slug == slug)).one()
    finally:
        savepoint.rollback()
    after = parse(EventSpec, stored.spec)
    return {"event": _as_read(session, after, stored.revision),
            "seat_rules": SeatRules.of(after).model_dump(),
            "told": told(session, slug, moved_sessions(before, after),
                         cancelled_sessions(before, after))}


class _Unsent:
    """An outbox that sends nothing: a preview publishes nothing."""

    def add(self, session, message, correlation_id=None):
        pass

    def add_many(self, session, messages):
        pass


_UNSENT = _Unsent()


def _removed_in_use(spec: EventSpec, used: dict) -> list:
    present = {"sessions": {s.slug for s in spec.sessions},
               "categories": {c.slug for c in spec.categories},
               "languages": set(spec.languages)}
    problems = []
    for field, values in used.items():
        missing = sorted(set(values) - present[field])
        if missing:
            problems.append({"field": field, "message": f"in use by registrations: {', '.join(missing)}"})
    return problems
