"""Erasure: when registration erases an attendee, every copy of their
personal data this service holds goes too, in one transaction.

The attendee's row stays, blanked and marked ``erased_at``: a status change
still on its way (on another queue) then finds it and changes nothing,
where a missing row would let it write the snapshot back. Their messages
stay in the delivery log as a record that something was sent, without
address, words or attachments; those not yet sent are withdrawn. A sender
in the middle of one cannot write it back: every write of a sender names
its lease (deliveries._held), which the withdrawal ends.
"""
from __future__ import annotations

from sqlalchemy import case, delete, select, update
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.statuses import Status

from . import deliveries, webhooks
from .models import attendees, scheduled, undeliverable
from .models import deliveries as delivery_log

ERASED = "the registration was erased"
UNSENT = ("queued", "sending")
# What a blanked snapshot keeps of its attendee: nothing that names or reaches them.
KEPT = ("language", "category", "sessions", "sessions_waiting", "sessions_cancelled", "follows")


def erase(session: Session, registration_id: str, slug: str) -> int:
    """Erase what is known of this registration's attendee; a registration
    already erased is left as it is. Returns how many webhook deliveries
    (each telling an organiser's system to delete its copy) were queued."""
    row = session.execute(select(attendees.c.snapshot, attendees.c.email_key, attendees.c.erased_at)
                          .where(attendees.c.registration_id == registration_id)
                          .with_for_update()).first()
    if row is not None and row.erased_at is not None:
        return 0
    _blank_attendee(session, registration_id, slug, row)
    # Before the log: a reminder being turned into a delivery right now
    # holds its row, and its delivery is then committed and scrubbed below.
    session.execute(update(scheduled).where(scheduled.c.registration_id == registration_id,
                                            scheduled.c.state == "pending")
                    .values(state="cancelled"))
    _scrub_deliveries(session, registration_id)
    if row is not None and row.email_key is not None:
        _forget_refusal(session, row.email_key)
    # After the scrub, which would otherwise withdraw them too.
    return deliveries.enqueue_many(session, webhooks.HooksOf(session).erasure_for(slug, registration_id))


def _blank_attendee(session: Session, registration_id: str, slug: str, row) -> None:
    """The row, blanked, cancelled (nobody mails it) and marked erased; made
    if no status change has arrived yet, so that none arriving later counts."""
    values = {"status": Status.CANCELLED, "email_key": None, "erased_at": utcnow(),
              "snapshot": blanked(row.snapshot if row is not None else {})}
    if row is None:
        session.execute(attendees.insert().values(registration_id=registration_id, event_slug=slug,
                                                  status_seq=0, **values))
    else:
        session.execute(update(attendees).where(attendees.c.registration_id == registration_id)
                        .values(**values))


def blanked(snapshot: dict) -> dict:
    """A snapshot without the person: no name, address, zone or country, no
    links (they carry the registration's tokens), and any field not known to
    be harmless (answers, say) dropped."""
    person = snapshot.get("attendee", {})
    attendee = {"name": "", "email": "", "timezone": None, "country": None,
                **{key: person[key] for key in KEPT if key in person}}
    return {**snapshot, "status": Status.CANCELLED.value, "attendee": attendee, "links": {}}


def _scrub_deliveries(session: Session, registration_id: str) -> None:
    """Every message of the registration, emails and webhook calls: the
    content (words, attachments, webhook payloads) emptied, the address
    blanked (a webhook's URL is the organiser's, not the attendee's, and
    stays), the unsent withdrawn and their leases ended."""
    row = delivery_log.c
    unsent = row.status.in_(UNSENT)
    session.execute(update(delivery_log).where(row.registration_id == registration_id).values(
        recipient=case((row.channel == "email", ""), else_=row.recipient),
        content={},
        status=case((unsent, "withdrawn"), else_=row.status),
        lease=None,
        # a server's refusal may quote the address
        last_error=case((unsent | row.last_error.is_not(None), ERASED), else_=None)))


def _forget_refusal(session: Session, key: str) -> None:
    """The refused address goes unless another attendee still has it (the
    erased one's key is already gone, and so is every other erased one's)."""
    if session.execute(select(attendees.c.registration_id).where(
            attendees.c.email_key == key).limit(1)).first() is None:
        session.execute(delete(undeliverable).where(undeliverable.c.address_key == key))
