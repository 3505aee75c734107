"""The events as this service last heard of them (``event.published``): each
kept at its newest revision."""
from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.errors import EventNotKnownYet, NotFound
from shared.schemas import EventSpec, event_revision

from .models import event_copies


def store(session: Session, event: EventSpec, revision: int) -> tuple[bool, EventSpec | None]:
    """Keep this revision unless a newer one is known. Returns whether it
    was kept, and the revision it replaced (``None`` for the first)."""
    current = session.execute(select(event_copies).where(event_copies.c.slug == event.slug)).first()
    document = event.model_dump(mode="json")
    if current is None:
        session.execute(event_copies.insert().values(slug=event.slug, revision=revision,
                                                     spec=document))
        return True, None
    if current.revision >= revision:
        return False, None   # an older description, overtaken by a newer one
    session.execute(update(event_copies).where(event_copies.c.slug == event.slug)
                    .values(revision=revision, spec=document))
    return True, event_revision(current.slug, current.revision, current.spec)


def get(session: Session, slug: str) -> tuple[EventSpec, int]:
    """(event, revision), or EventNotKnownYet."""
    row = session.execute(select(event_copies).where(event_copies.c.slug == slug)).first()
    if row is None:
        raise EventNotKnownYet(slug)
    return event_revision(slug, row.revision, row.spec), row.revision


def described(session: Session, slug: str) -> tuple[EventSpec, int]:
    """(event, revision) for an organiser's request: an event this service
    has not heard of is not found, not a message to wait for."""
    try:
        return get(session, slug)
    except EventNotKnownYet:
        raise NotFound("no such event") from None


def reader(session: Session):
    """``event_for(slug)`` -> (event, revision) for one transaction: each event read once."""
    known: dict[str, tuple[EventSpec, int]] = {}

    def event_for(slug: str) -> tuple[EventSpec, int]:
        if slug not in known:
            known[slug] = get(session, slug)
        return known[slug]
    return event_for

