"""Who may still be written to: attendees who unsubscribed from an event's
bulk mail (announcements and reminders; messages about their own seat still
go), and addresses that a server refused for good, to which nothing is sent.

Both are this service's to know, because it is the one that must act on
them; the gateway asks it for them when it shows a list, an export or stats.
"""
from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.db import insert_absent
from shared.errors import NotFound
from shared.statuses import SEATED

from . import deliveries
from .models import attendees, scheduled, undeliverable

# What the one-click link stops: mail sent to everyone, not news of one's seat.
BULK_KINDS = ("announcement", "reminder")


def unsubscribe(session: Session, registration_id: str) -> tuple[dict, bool]:
    """Stop the event's announcements and reminders for this attendee, at
    once: queued ones are withdrawn, pending reminders cancelled. A repeat
    changes nothing (mailbox providers may POST twice): the second value
    says whether this call did it."""
    row = session.execute(select(attendees.c.event_slug, attendees.c.unsubscribed_at).where(
        attendees.c.registration_id == registration_id).with_for_update()).first()
    if row is None:
        raise NotFound("no such registration")
    at, changed = row.unsubscribed_at, row.unsubscribed_at is None
    if changed:
        at = utcnow()
        session.execute(update(attendees).where(attendees.c.registration_id == registration_id)
                        .values(unsubscribed_at=at))
        deliveries.withdraw(session, registration_id, BULK_KINDS, "the attendee unsubscribed")
        session.execute(update(scheduled).where(scheduled.c.registration_id == registration_id,
                                                scheduled.c.state == "pending")
                        .values(state="cancelled"))
    return {"registration_id": registration_id, "event": row.event_slug,
            "unsubscribed_at": at.isoformat()}, changed


def announced_to(slug: str):
    """Whom an announcement of this event reaches: every attendee with a
    seat who did not unsubscribe (an erased one has no seat)."""
    return ((attendees.c.event_slug == slug) & attendees.c.status.in_(sorted(SEATED))
            & attendees.c.unsubscribed_at.is_(None))


def audience(session: Session, slug: str) -> int:
    """How many an announcement of this event would reach now."""
    return session.execute(select(func.count()).select_from(attendees)
                           .where(announced_to(slug))).scalar_one()


def unsubscribed(session: Session, registration_ids) -> set[str]:
    """Those of these registrations whose attendee unsubscribed."""
    return set(session.execute(select(attendees.c.registration_id).where(
        attendees.c.registration_id.in_(sorted(set(registration_ids))),
        attendees.c.unsubscribed_at.is_not(None))).scalars())


def refused(session: Session, address: str, reason: str) -> None:
    """A server refused this address for good: remember it, and fail what
    is still queued for it."""
    key = deliveries.address_key(address)
    insert_absent(session, undeliverable, [{"address_key": key, "reason": reason[:1000],
                                            "refused_at": utcnow()}], undeliverable.c.address_key)
    deliveries.fail_queued_to(session, key, f"the address is undeliverable: {reason}"[:1000])


def of_event(session: Session, slug: str) -> dict[str, dict]:
    """registration id -> {"unsubscribed_at", "undeliverable"} for the
    attendees of an event who unsubscribed or whose address was refused
    (the others have nothing to say)."""
    rows = session.execute(_reach().where(
        attendees.c.event_slug == slug,
        attendees.c.unsubscribed_at.is_not(None) | undeliverable.c.address_key.is_not(None)))
    return {row.registration_id: _status(row) for row in rows}


def of_registration(session: Session, registration_id: str) -> dict:
    row = session.execute(_reach().where(attendees.c.registration_id == registration_id)).first()
    return _status(row) if row is not None else {"unsubscribed_at": None, "undeliverable": None}


def _reach():
    """Each attendee with when they unsubscribed and why their address was refused."""
    return (select(attendees.c.registration_id, attendees.c.unsubscribed_at,
                   undeliverable.c.reason, undeliverable.c.refused_at)
            .outerjoin(undeliverable, undeliverable.c.address_key == attendees.c.email_key))


def _status(row) -> dict:
    return {"unsubscribed_at": _iso(row.unsubscribed_at),
            "undeliverable": {"reason": row.reason, "refused_at": _iso(row.refused_at)}
            if row.refused_at is not None else None}


def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None

