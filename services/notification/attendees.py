"""What attendees (and organisers' webhooks) are told when something happens:
a status change, an event change, a due reminder, an announcement.

Every message is queued in the delivery log under its cause, in the
transaction of the change that caused it, so each cause sends once.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.contracts import SEATED_STATUSES, RegistrationStatusChanged
from shared.logs import current_correlation_id
from shared.schemas import EventSpec, parse

from . import deliveries, messages, schedule, webhooks
from .models import attendees


def remember(session: Session, change: RegistrationStatusChanged) -> bool:
    """Keep the newest snapshot of the registration; False if this one is older."""
    current = session.execute(select(attendees.c.status_seq).where(
        attendees.c.registration_id == change.registration_id)).scalar()
    values = {"status": change.status, "status_seq": change.status_seq,
              "snapshot": change.model_dump(mode="json")}
    if current is None:
        session.execute(attendees.insert().values(
            registration_id=change.registration_id, event_slug=change.event_slug, **values))
        return True
    if current < change.status_seq:
        session.execute(update(attendees).where(
            attendees.c.registration_id == change.registration_id).values(**values))
        return True
    return False


def status_changed(session: Session, event: EventSpec, revision: int,
                   change: RegistrationStatusChanged, organiser: str) -> bool:
    """Returns True when something was queued to send."""
    newest = remember(session, change)
    queued = webhooks.queue_status_change(session, change) > 0
    composed = messages.compose_status(event, revision, change, organiser)
    if composed is not None:
        kind, draft = composed
        queued |= _queue(session, event, change, f"status:{change.registration_id}:{change.status_seq}",
                         kind, draft)
    if newest:
        schedule.reconcile(session, event, change.registration_id, change.status,
                           change.attendee.sessions)
    return queued


def event_changed(session: Session, before: EventSpec | None, after: EventSpec, revision: int,
                  organiser: str) -> bool:
    """A moved session: tell its seated attendees (with an updated calendar
    entry) and move their reminders. Changed reminder offsets: reschedule."""
    if before is None:
        return False
    moved = schedule.moved_sessions(before, after)
    if not moved and before.reminders == after.reminders:
        return False
    queued = False
    for change in snapshots(session, after.slug):
        if change.status in SEATED_STATUSES:
            for slug in moved:
                if slug in change.attendee.sessions:
                    draft = messages.compose_moved(after, revision, change, slug, organiser)
                    queued |= _queue(session, after, change,
                                     f"moved:{change.registration_id}:{slug}:{revision}",
                                     "session_moved", draft)
        schedule.reconcile(session, after, change.registration_id, change.status,
                           change.attendee.sessions)
    return queued


def send_due(session: Session, now: datetime, event_for) -> int:
    """Turn due scheduled rows into deliveries; ``event_for(slug)`` gives the
    event. Rows are locked by this transaction, so replicas never share one."""
    queued = 0
    for row in schedule.claim_due(session, now):
        change = snapshot(session, row.registration_id)
        event, _ = event_for(row.event_slug)
        if row.kind == "reminder" and (row.session_starts_at <= now
                                       or change.status != "confirmed"):
            schedule.mark(session, row.id, "skipped")     # its session has begun
            continue
        if row.kind == "received" and change.status != "pending":
            schedule.mark(session, row.id, "cancelled")
            continue
        if row.kind == "reminder":
            draft = messages.compose_reminder(event, change, row.session_slug)
        else:
            draft = messages.compose_received(event, change)
        queued += _queue(session, event, change, row.cause, row.kind, draft)
        schedule.mark(session, row.id, "sent")
    return queued


def announce(session: Session, event: EventSpec, announcement_id: str, subject: dict,
             body: dict) -> int:
    """The organiser's message to every attendee with a seat; returns how many."""
    recipients = 0
    for change in snapshots(session, event.slug):
        if change.status in SEATED_STATUSES:
            draft = messages.compose_announcement(event, change, subject, body)
            _queue(session, event, change, f"announcement:{announcement_id}:{change.registration_id}",
                   "announcement", draft)
            recipients += 1
    return recipients


def snapshots(session: Session, slug: str) -> list[RegistrationStatusChanged]:
    rows = session.execute(select(attendees.c.snapshot).where(attendees.c.event_slug == slug)
                           .order_by(attendees.c.registration_id)).scalars()
    return [_parse(row) for row in rows]


def snapshot(session: Session, registration_id: str) -> RegistrationStatusChanged:
    row = session.execute(select(attendees.c.snapshot).where(
        attendees.c.registration_id == registration_id)).scalar_one()
    return _parse(row)


def _parse(document) -> RegistrationStatusChanged:
    return parse(RegistrationStatusChanged, document)


def _queue(session, event, change, cause, kind, draft) -> bool:
    content = {**draft.as_dict(), "recipient_name": change.attendee.name,
               "correlation_id": current_correlation_id()}
    return deliveries.enqueue(session, cause, kind, change.attendee.email,
                              messages.language_for(event, change.attendee.language), content,
                              event.slug, change.registration_id)
