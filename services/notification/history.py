"""What the delivery log tells organisers of the messages to attendees (the
emails; webhook calls are their own systems' business): a registration's
messages, a resend of the last one, and an event's messages counted.

A resend is a new message, not the old one again: it has a cause of its own,
so the sender sends it like any other, and the log keeps both.
"""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.errors import Conflict
from shared.logs import current_correlation_id

from . import deliveries, recipients
from .erasure import UNSENT
from .models import attendees, undeliverable
from .models import deliveries as delivery_log

EMAIL = "email"
# What a resend copies: a message that went, or that failed for good.
FINISHED = ("sent", "failed")


def of_registration(session: Session, registration_id: str) -> list[dict]:
    """The registration's messages, newest first (none for a registration
    this service has not heard of)."""
    rows = session.execute(select(delivery_log).where(
        delivery_log.c.registration_id == registration_id, delivery_log.c.channel == EMAIL)
        .order_by(delivery_log.c.id.desc())).all()
    return [told(row) for row in rows]


def told(row) -> dict:
    """One message as organisers see it; its subject is gone once the
    registration is erased (the log keeps only that something was sent)."""
    return {"id": row.id, "kind": row.kind, "channel": row.channel, "language": row.language,
            "subject": row.content.get("subject"), "status": row.status,
            "attempts": row.attempts, "created_at": _iso(row.created_at),
            "sent_at": _iso(row.sent_at), "last_error": row.last_error}


def resend_last(session: Session, registration_id: str) -> dict:
    """Queue a copy of the registration's last message (same words,
    language and address) and return it as queued. Only the last: a
    confirmation is never sent again after the cancellation that followed.
    Conflict when there is none (nor an attendee this service heard of), while it is still on its way (a second
    click sends nothing twice: the copy is then the last, and queued), when
    the registration was erased, when the address is refused for good, or
    when the message is bulk mail the attendee unsubscribed from. The copy's
    cause is its original's, so two organisers resending at once queue one."""
    attendee = session.execute(select(attendees.c.erased_at, attendees.c.unsubscribed_at).where(
        attendees.c.registration_id == registration_id)).first()
    if attendee is None:        # registration knows it (the gateway asked): nothing told yet
        raise Conflict("no message of this registration has been sent or has failed yet")
    if attendee.erased_at is not None:
        raise Conflict("the registration was erased: there is nothing to resend")
    last = session.execute(select(delivery_log).where(
        delivery_log.c.registration_id == registration_id, delivery_log.c.channel == EMAIL)
        .order_by(delivery_log.c.id.desc()).limit(1)).first()
    if last is None:
        raise Conflict("no message of this registration has been sent or has failed yet")
    if last.status not in FINISHED:
        raise Conflict("the last message is still on its way" if last.status in UNSENT
                       else "the last message was withdrawn: it is not to be sent")
    refusal = session.execute(select(undeliverable.c.reason).where(
        undeliverable.c.address_key == deliveries.address_key(last.recipient))).scalar()
    if refusal is not None:
        raise Conflict(f"the address is undeliverable: {refusal}")
    if attendee.unsubscribed_at is not None and last.kind in recipients.BULK_KINDS:
        raise Conflict("the attendee unsubscribed from announcements and reminders")
    cause = f"resend:{last.id}"
    content = {**last.content, "correlation_id": current_correlation_id()
               or last.content.get("correlation_id")}
    deliveries.enqueue(session, cause, last.kind, last.recipient, last.language, content,
                       last.event_slug, registration_id)
    return told(session.execute(select(delivery_log).where(delivery_log.c.cause == cause)).one())


def counts_of_event(session: Session, slug: str) -> dict[str, int]:
    """The event's messages by state (queued counts those being sent), and
    its attendees whose address is refused for good or who unsubscribed."""
    by_status: dict[str, int] = dict(session.execute(
        select(delivery_log.c.status, func.count()).where(
            delivery_log.c.event_slug == slug, delivery_log.c.channel == EMAIL)
        .group_by(delivery_log.c.status)).all())
    reach = recipients.of_event(session, slug).values()
    return {"queued": sum(by_status.get(status, 0) for status in UNSENT),
            "sent": by_status.get("sent", 0), "failed": by_status.get("failed", 0),
            "withdrawn": by_status.get("withdrawn", 0),
            "undeliverable": sum(1 for one in reach if one["undeliverable"] is not None),
            "unsubscribed": sum(1 for one in reach if one["unsubscribed_at"] is not None)}


def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None
