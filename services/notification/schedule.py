"""Messages due later: reminders before each chosen session.

Rather than patching rows on each change, ``reconcile`` compares what a
registration's status and the event's sessions call for with what is pending
and closes the gap. A reminder's cause includes its session's start, so a
moved session cancels the old reminder and schedules a new one; a reminder
that was already sent is never scheduled again.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.db import skip_locked
from shared.schemas import EventSpec, parse_duration
from shared.statuses import Status

from .models import scheduled


def reminder_cause(registration_id: str, session_slug: str, offset: str, starts_at: datetime) -> str:
    return f"reminder:{registration_id}:{session_slug}:{offset}:{starts_at.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def desired(event: EventSpec, registration_id: str, status: str | None, sessions: list[str]) -> dict:
    """cause -> row values, for what this registration should have pending."""
    wanted = {}
    if status == Status.CONFIRMED:
        for session in event.sessions:
            if session.slug not in sessions or session.cancelled:
                continue
            for offset in event.reminders:
                due = session.starts_at - parse_duration(offset)
                wanted[reminder_cause(registration_id, session.slug, offset, session.starts_at)] = {
                    "kind": "reminder", "session_slug": session.slug,
                    "session_starts_at": session.starts_at, "due_at": due}
    return wanted


def reconcile(session: Session, event: EventSpec, registration_id: str, status: str | None,
              sessions: list[str], now: datetime | None = None) -> None:
    reconcile_many(session, [(event, registration_id, status, sessions)], now)


def reconcile_many(session: Session, registrations: list[tuple[EventSpec, str, str | None, list[str]]],
                   now: datetime | None = None) -> None:
    """For each (event, registration id, status, sessions): cancel what is
    pending but no longer called for, schedule what is called for but absent
    or cancelled (a session moved and moved back)."""
    if not registrations:
        return
    now = now or utcnow()
    existing: dict[str, dict] = {}
    for row in session.execute(select(scheduled.c.registration_id, scheduled.c.cause,
                                      scheduled.c.state).where(
            scheduled.c.registration_id.in_(sorted({r[1] for r in registrations})))):
        existing.setdefault(row.registration_id, {})[row.cause] = row.state
    stale: list[str] = []
    new: list[dict] = []
    revived: list[str] = []
    for event, registration_id, status, sessions in registrations:
        wanted = desired(event, registration_id, status, sessions)
        have = existing.get(registration_id, {})
        stale.extend(cause for cause, state in have.items() if state == "pending" and cause not in wanted)
        for cause, values in wanted.items():
            if have.get(cause) not in (None, "cancelled") or values["due_at"] <= now:
                continue   # already pending or sent, or its moment passed before the seat was given
            if cause in have:      # cancelled: pending again (its due_at follows from its cause)
                revived.append(cause)
                continue
            new.append({"cause": cause, "registration_id": registration_id, "event_slug": event.slug,
                        "state": "pending", "created_at": now, **values})
    if stale:
        session.execute(update(scheduled).where(scheduled.c.cause.in_(sorted(stale)))
                        .values(state="cancelled"))
    if new:
        session.execute(scheduled.insert(), sorted(new, key=lambda row: row["cause"]))
    if revived:
        session.execute(update(scheduled).where(scheduled.c.cause.in_(sorted(revived)))
                        .values(state="pending"))


CLAIM = 200          # due rows taken per transaction


def claim_due(session: Session, now: datetime, limit: int = CLAIM) -> list:
    """Due rows, locked for this transaction (other replicas skip them)."""
    return list(session.execute(skip_locked(
        select(scheduled).where(scheduled.c.state == "pending", scheduled.c.due_at <= now)
        .order_by(scheduled.c.due_at).limit(limit), session)).all())


def mark_many(session: Session, row_ids: list[int], state: str) -> None:
    if row_ids:
        session.execute(update(scheduled).where(scheduled.c.id.in_(row_ids)).values(state=state))


def pending_count(session: Session, now: datetime) -> tuple[int, int]:
    """(due now or overdue, overdue by more than a minute): for the metrics."""
    from sqlalchemy import func
    due = session.execute(select(func.count()).select_from(scheduled).where(
        scheduled.c.state == "pending", scheduled.c.due_at <= now)).scalar_one()
    late = session.execute(select(func.count()).select_from(scheduled).where(
        scheduled.c.state == "pending", scheduled.c.due_at <= now - timedelta(minutes=1))).scalar_one()
    return due, late
