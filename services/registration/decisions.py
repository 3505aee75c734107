"""Capacity's decisions become statuses: a seat, a hold, the waiting list, a
refusal or an expired hold, each change announced with the attendee's
snapshot. A decision that is slow to come is announced as "received" first.
"""
from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.contracts import SeatDecided
from shared.db import locked, skip_locked
from shared.errors import NotFound
from shared.statuses import Status

from .models import registrations
from .registrations import Links, announce_status, status_message


def apply_seat_decision(session: Session, outbox, links: Links, decision: SeatDecided) -> None:
    apply_seat_decisions(session, outbox, links, [(decision, None)])


def apply_seat_decisions(session: Session, outbox, links: Links,
                         decisions: list[tuple[SeatDecided, str | None]]) -> None:
    """Capacity's words (each with its correlation id) become statuses, each
    change announced. Rows are locked in a fixed order and written once."""
    ids = sorted({decision.registration_id for decision, _ in decisions})
    rows = {row.id: row._asdict() for row in session.execute(locked(
        select(registrations).where(registrations.c.id.in_(ids)).order_by(registrations.c.id),
        session))}
    changed, messages = {}, []
    for decision, correlation_id in decisions:
        row = rows.get(decision.registration_id)
        if row is None:
            raise NotFound(f"no registration {decision.registration_id}")
        announcement = _decided(row, decision)
        changed[row["id"]] = row
        if announcement is not None:
            previous, cause = announcement
            messages.append((status_message(links, SimpleNamespace(**row), previous, cause,
                                            decision.session_change), correlation_id))
    if changed:
        session.execute(update(registrations).where(registrations.c.id == bindparam("row_id")),
                        [{"row_id": row["id"], **{k: row[k] for k in _DECISION_FIELDS}}
                         for row in changed.values()])
    outbox.add_many(session, messages)


_DECISION_FIELDS = ("status", "status_seq", "decision_seq", "waitlist_position",
                    "hold_expires_at", "sessions", "sessions_waiting", "sessions_cancelled",
                    "updated_at")


def _decided(row: dict, decision: SeatDecided) -> tuple[str, str] | None:
    """Apply one decision to the row (a dict, changed in place); returns
    (previous status, cause) when it is to be announced: a new status, or
    news of one session (cause "session_<outcome>")."""
    if decision.decision_seq <= row["decision_seq"]:
        return None   # an older word from capacity, overtaken by a newer one
    row["decision_seq"] = decision.decision_seq
    new_status = decision.outcome
    if row["status"] == Status.CANCELLED or row["erased_at"] is not None:
        return None   # the attendee's cancellation (or erasure) stands; capacity releases on its own
    _take_sessions(row, decision)
    if decision.session_change is not None:
        row.update(status_seq=row["status_seq"] + 1, updated_at=utcnow())
        return row["status"], f"session_{decision.session_change.outcome}"
    if new_status == row["status"]:
        return None
    previous = row["status"]
    row.update(status=new_status, status_seq=row["status_seq"] + 1, updated_at=utcnow(),
               waitlist_position=decision.waitlist_position,
               hold_expires_at=decision.hold_expires_at)
    return previous, "promoted" if decision.promoted else decision.outcome


def _take_sessions(row: dict, decision: SeatDecided) -> None:
    """Capacity's word on the registration's sessions, when it says one; a
    session cancelled from under the attendee is remembered for calendars."""
    change = decision.session_change
    if change is not None and change.outcome == "cancelled" and change.session in row["sessions"]:
        row["sessions_cancelled"] = [*row["sessions_cancelled"], change.session]
    if decision.sessions is not None:
        row["sessions"] = decision.sessions
    if decision.sessions_waiting is not None:
        row["sessions_waiting"] = decision.sessions_waiting


SLOW_DECISIONS_CLAIM = 200     # pending registrations announced per transaction


def announce_slow_decisions(session: Session, outbox, links: Links, older_than: timedelta,
                            limit: int = SLOW_DECISIONS_CLAIM) -> int:
    """Registrations still pending after ``older_than`` are announced as
    such (cause "received"), once: the attendee is told their registration
    arrived. A decision that comes in time is the first thing announced, so
    a rush sends no message per registration that nobody needs."""
    rows = session.execute(skip_locked(select(registrations).where(
        registrations.c.status == Status.PENDING, registrations.c.status_seq == 0,
        registrations.c.created_at <= utcnow() - older_than)
        .order_by(registrations.c.created_at).limit(limit), session)).all()
    for row in rows:
        updated = session.execute(update(registrations).where(registrations.c.id == row.id)
                                  .values(status_seq=1).returning(*registrations.c)).one()
        announce_status(session, outbox, links, updated, previous=None, cause="received")
    return len(rows)
