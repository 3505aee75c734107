"""What attendees (and organisers' webhooks) are told when something happens:
a status change, an event change, a due reminder, an announcement.

Every message is queued in the delivery log under its cause, in the
transaction of the change that caused it, so each cause sends once.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from shared.contracts import AnnouncementRequested, RegistrationStatusChanged
from shared.errors import NotFound
from shared.i18n import localized
from shared.logs import current_correlation_id
from shared.schemas import EventSpec, added_sessions, cancelled_sessions, moved_sessions, parse
from shared.statuses import SEATED, Status

from . import calendar, deliveries, events, messages, recipients, schedule, webhooks
from .models import attendees


def status_changes(session: Session, event_for, changes: list[tuple[RegistrationStatusChanged, str | None]],
                   organiser: str) -> int:
    """A batch of status changes (each with its correlation id): keep the
    newest snapshot of each registration, queue the message and webhook calls
    each change calls for, and bring each registration's scheduled messages
    in line with its newest status. ``event_for(slug)`` gives (event,
    revision). Returns how many deliveries were queued."""
    newest, known, erased = _remember_all(session, [change for change, _ in changes])
    hooks = webhooks.HooksOf(session)
    rows = []
    for change, correlation_id in changes:
        if change.registration_id in erased:
            continue     # arrived after the erasure: its personal data must not come back
        event, revision = event_for(change.event_slug)
        rows.extend(hooks.deliveries_for(change))     # webhooks get every change, numbered
        if known.get(change.registration_id, -1) >= change.status_seq:
            continue     # overtaken by a change already told: "confirmed" after "cancelled" is stale
        composed = messages.compose_status(event, revision, change, organiser)
        if composed is not None:
            kind, draft = composed
            rows.append(_delivery(event, change, f"status:{change.registration_id}:{change.status_seq}",
                                  kind, draft, correlation_id))
    _reconcile_reminders(session, newest, lambda change: event_for(change.event_slug)[0])
    return deliveries.enqueue_many(session, rows)


def _reconcile_reminders(session: Session, changes: list[RegistrationStatusChanged], event_of,
                         unsubscribed: set[str] | None = None) -> None:
    """Bring pending reminders in line with each registration's status; an
    attendee who unsubscribed (``unsubscribed``, when the caller knows) has none."""
    if unsubscribed is None:
        unsubscribed = recipients.unsubscribed(session, [c.registration_id for c in changes])
    schedule.reconcile_many(session, [
        (event_of(change), change.registration_id,
         None if change.registration_id in unsubscribed else change.status,
         change.attendee.sessions) for change in changes])


def _remember_all(session: Session, changes: list[RegistrationStatusChanged]) -> tuple[list, dict, set]:
    """Keep the newest snapshot of each registration not erased; returns the
    changes that are now the newest of their registration (older ones change
    nothing), the status_seq known of each before this batch and the
    registrations that were erased (whose changes change nothing)."""
    latest: dict[str, RegistrationStatusChanged] = {}
    for change in changes:
        known = latest.get(change.registration_id)
        if known is None or known.status_seq < change.status_seq:
            latest[change.registration_id] = change
    # Locked, so that an erasure committing meanwhile is seen, not overwritten.
    rows = session.execute(
        select(attendees.c.registration_id, attendees.c.status_seq, attendees.c.erased_at).where(
            attendees.c.registration_id.in_(sorted(latest)))
        .order_by(attendees.c.registration_id).with_for_update()).all()
    stored: dict[str, int] = {row.registration_id: row.status_seq for row in rows}
    erased = {row.registration_id for row in rows if row.erased_at is not None}
    inserts, updates = [], []
    for registration_id in sorted(latest):
        change = latest[registration_id]
        if registration_id in erased:
            del latest[registration_id]
            continue
        values = {"status": change.status, "status_seq": change.status_seq,
                  "snapshot": change.model_dump(mode="json"),
                  "email_key": deliveries.address_key(change.attendee.email)}
        if registration_id not in stored:
            inserts.append({"registration_id": registration_id, "event_slug": change.event_slug, **values})
        elif stored[registration_id] < change.status_seq:
            updates.append({"key": registration_id, **values})
        else:
            del latest[registration_id]
    if inserts:
        session.execute(attendees.insert(), inserts)
    if updates:
        session.execute(update(attendees).where(attendees.c.registration_id == bindparam("key")), updates)
    return list(latest.values()), stored, erased


def event_published(session: Session, event: EventSpec, revision: int, organiser: str) -> bool:
    """Keep the newest description of an event and act on what changed;
    True when messages were queued."""
    newer, before = events.store(session, event, revision)
    return newer and event_changed(session, before, event, revision, organiser)


def event_changed(session: Session, before: EventSpec | None, after: EventSpec, revision: int,
                  organiser: str) -> bool:
    """A moved session: tell its seated attendees (with an updated calendar
    entry) and move their reminders. A new session: tell those with a seat
    who chose their sessions how to add it (followers hear from capacity,
    through their registration, whether it is theirs). Changed reminder
    offsets or a cancelled session: reschedule at once."""
    if before is None:
        return False
    moved = moved_sessions(before, after)
    added = added_sessions(before, after)
    if (not moved and not added and before.reminders == after.reminders
            and not cancelled_sessions(before, after)):
        return False
    rows, everyone = [], snapshots(session, after.slug)
    unsubscribed = recipients.unsubscribed(session, [change.registration_id for change in everyone])
    for change in everyone:
        if change.status not in SEATED:
            continue
        for slug in moved:
            if slug in change.attendee.sessions:
                draft = messages.compose_moved(after, revision, change, slug, organiser)
                rows.append(_delivery(after, change, f"moved:{change.registration_id}:{slug}:{revision}",
                                      "session_moved", draft, current_correlation_id()))
        if change.attendee.follows or change.registration_id in unsubscribed:
            continue
        for slug in added:
            if slug not in change.attendee.sessions and slug not in change.attendee.sessions_waiting:
                draft = messages.compose_offer(after, change, slug)
                rows.append(_delivery(after, change, f"offered:{change.registration_id}:{slug}",
                                      "session_added", draft, current_correlation_id(), bulk=True))
    _reconcile_reminders(session, everyone, lambda change: after, unsubscribed)
    return deliveries.enqueue_many(session, rows) > 0


def send_due(session: Session, now: datetime, event_for) -> tuple[int, int]:
    """Turn due reminders into deliveries; ``event_for(slug)`` gives (event,
    revision). The rows are locked by this transaction, so replicas never
    share one, and marked in the transaction that queues their deliveries.
    Returns how many rows were claimed and how many messages queued."""
    due = schedule.claim_due(session, now)
    if not due:
        return 0, 0
    changes = {change.registration_id: change for change in
               snapshots_of(session, [row.registration_id for row in due])}
    unsubscribed = recipients.unsubscribed(session, changes)
    rows, sent, skipped = [], [], []
    for row in due:
        change = changes.get(row.registration_id)
        if (change is None or row.session_starts_at <= now or change.status != Status.CONFIRMED
                or row.registration_id in unsubscribed):
            # erased, its session has begun, the seat is gone, or no more reminders
            skipped.append(row.id)
            continue
        event, _ = event_for(row.event_slug)
        draft = messages.compose_reminder(event, change, row.session_slug)
        rows.append(_delivery(event, change, row.cause, row.kind, draft, current_correlation_id()))
        sent.append(row.id)
    schedule.mark_many(session, sent, "sent")
    schedule.mark_many(session, skipped, "skipped")
    return len(due), deliveries.enqueue_many(session, rows)


def announce(session: Session, message: AnnouncementRequested) -> int:
    """An organiser's announcement, recorded by registration (which checked
    its texts), queued for everyone it reaches now (recipients.announced_to),
    each in their language. The cause names the announcement and the
    attendee, so a repeat queues nothing twice. An event not described here
    yet raises EventNotKnownYet: the message is retried. Returns how many
    were queued now."""
    event, _ = events.get(session, message.event_slug)
    rows = []
    for change in _snapshots(session, recipients.announced_to(event.slug)):
        draft = messages.compose_announcement(event, change, message.subject, message.body)
        rows.append(_delivery(event, change, f"announcement:{message.announcement_id}:{change.registration_id}",
                              "announcement", draft, current_correlation_id()))
    return deliveries.enqueue_many(session, rows)


def snapshots(session: Session, slug: str) -> list[RegistrationStatusChanged]:
    return _snapshots(session, attendees.c.event_slug == slug)


def snapshots_of(session: Session, registration_ids: list[str]) -> list[RegistrationStatusChanged]:
    return _snapshots(session, attendees.c.registration_id.in_(sorted(set(registration_ids))))


def _snapshots(session: Session, where) -> list[RegistrationStatusChanged]:
    """The snapshots of the attendees ``where`` says, by registration; an
    erased registration has none to give."""
    documents: list[dict] = list(session.execute(
        select(attendees.c.snapshot).where(where, attendees.c.erased_at.is_(None))
        .order_by(attendees.c.registration_id)).scalars())
    return [_parse(document) for document in documents]


def calendar_for(session: Session, registration_id: str, organiser: str) -> str:
    """The attendee's sessions as an iCalendar file."""
    row = session.execute(select(attendees).where(
        attendees.c.registration_id == registration_id, attendees.c.erased_at.is_(None))).first()
    if row is None:
        raise NotFound("no such registration")
    event, revision = events.get(session, row.event_slug)
    change = _parse(row.snapshot)
    return calendar.build(event, registration_id, change.attendee.sessions,
                          messages.language_for(event, change.attendee.language), revision,
                          organiser, seated=row.status == Status.CONFIRMED,
                          country=change.attendee.country,
                          cancelled=change.attendee.sessions_cancelled).decode()


def _parse(document) -> RegistrationStatusChanged:
    return parse(RegistrationStatusChanged, document)


def _delivery(event, change, cause, kind, draft, correlation_id, bulk: bool | None = None) -> dict:
    """The delivery-log row of one email to the attendee; ``bulk``: mail
    sent to many (by default, the bulk kinds), with the list's headers."""
    content = {**draft.as_dict(), "recipient_name": change.attendee.name,
               "correlation_id": correlation_id}
    if kind in recipients.BULK_KINDS if bulk is None else bulk:
        # one list per event, and its one-click way out (mailer.Mailer._as_bulk)
        content.update(list_label=event.slug, unsubscribe_url=change.links.get("unsubscribe"),
                       list_name=localized(event.title, event.default_language, event.default_language))
    return deliveries.queued_row(cause, kind, change.attendee.email,
                                 messages.language_for(event, change.attendee.language), content,
                                 event.slug, change.registration_id)
