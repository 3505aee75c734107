"""The capacity service's rows, read and written the one way every seat
change does: the event's lock first, then pools written with conditional
updates that refuse to exceed a capacity (a bug in the arithmetic would fail
the transaction rather than oversell), then the reservation and its word.
"""
from __future__ import annotations

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.contracts import SeatDecided, SessionOutcome
from shared.db import locked
from shared.errors import EventNotKnownYet

from . import ledger
from .models import reservations, seat_events, seat_pools, session_waits


class SeatInvariantBroken(Exception):
    """A pool update would have exceeded its capacity: the transaction aborts."""


def lock_event(session: Session, slug: str, must_exist: bool = True):
    """The event's row, locked: seat changes of one event happen one at a
    time across every replica (on SQLite, BEGIN IMMEDIATE serializes all
    writers anyway)."""
    row = session.execute(locked(select(seat_events).where(seat_events.c.event_slug == slug),
                                 session)).first()
    if row is None and must_exist:
        raise EventNotKnownYet(f"event {slug!r} has not been described to capacity yet")
    return row


def next_seq(session: Session, slug: str, count: int = 1) -> int:
    """The first of ``count`` arrival numbers of the event (its lock held)."""
    first: int = session.execute(select(seat_events.c.next_queue_seq).where(
        seat_events.c.event_slug == slug)).scalar_one()
    session.execute(update(seat_events).where(seat_events.c.event_slug == slug)
                    .values(next_queue_seq=first + count))
    return first


def reservation(session: Session, registration_id: str):
    return session.execute(select(reservations).where(
        reservations.c.registration_id == registration_id)).first()


def pools(session: Session, slug: str) -> dict[str, ledger.Pool]:
    return {row.pool: ledger.Pool(row.pool, row.capacity, row.used, row.cancelled)
            for row in session.execute(select(seat_pools).where(seat_pools.c.event_slug == slug))}


def take(session, slug, pools, needs):
    ledger.take(pools, needs)
    take_counted(session, slug, {key: 1 for key in needs if key in pools})


def take_counted(session, slug, taken: dict[str, int]):
    """Write what a batch took from each pool. The conditional update is the
    last barrier against overselling: if the arithmetic above were wrong, or
    another writer had slipped past the event lock, the pool would refuse and
    the whole transaction fail."""
    for key, count in sorted(taken.items()):
        if count <= 0:
            continue
        result = session.execute(
            update(seat_pools)
            .where(seat_pools.c.event_slug == slug, seat_pools.c.pool == key,
                   seat_pools.c.capacity.is_(None)
                   | (seat_pools.c.used + count <= seat_pools.c.capacity))
            .values(used=seat_pools.c.used + count))
        if result.rowcount != 1:
            raise SeatInvariantBroken(f"pool {key} of {slug} cannot give {count} more seats")


def give_back(session, slug, pools, needs):
    ledger.give_back(pools, needs)
    for key in needs:
        if key in pools:
            session.execute(update(seat_pools).where(
                seat_pools.c.event_slug == slug, seat_pools.c.pool == key, seat_pools.c.used > 0)
                .values(used=seat_pools.c.used - 1))


def set_state(session, row, state, **values):
    session.execute(update(reservations).where(
        reservations.c.registration_id == row.registration_id).values(
        state=state, updated_at=utcnow(), **values))


def decide(session, outbox, row, outcome, promoted=False, hold_expires_at=None,
           sessions: list[str] | None = None, sessions_waiting: list[str] | None = None):
    """A later decision on a registration, announced with the next decision_seq.
    No later decision puts anyone on the waiting list: the registration leaves
    the line (if it was on it), and any outcome but a new hold clears the
    hold's deadline. ``sessions``: what it now holds, when that changed."""
    seq = row.decision_seq + 1
    changes = {} if sessions is None else {"sessions": sessions}
    set_state(session, row, outcome, decision_seq=seq, queue_seq=None,
              hold_expires_at=hold_expires_at, **changes)
    outbox.add(session, SeatDecided(
        registration_id=row.registration_id, event_slug=row.event_slug, outcome=outcome,
        decision_seq=seq, promoted=promoted, hold_expires_at=hold_expires_at,
        sessions=sessions, sessions_waiting=sessions_waiting))


def waits_of(session: Session, slug: str) -> dict[str, list[str]]:
    """registration id -> the sessions it waits for, in the event ``slug``."""
    waits: dict[str, list[str]] = {}
    for row in session.execute(select(session_waits.c.registration_id, session_waits.c.session)
                               .where(session_waits.c.event_slug == slug)):
        waits.setdefault(row.registration_id, []).append(row.session)
    return {registration_id: sorted(slugs) for registration_id, slugs in waits.items()}


class SessionWords:
    """Words about one session of many registrations whose status stays,
    written together: each reservation's sessions and decision_seq in one
    statement, the words in one outbox call (5,000 followers of a series are
    one batch, as in a rush)."""

    def __init__(self, session: Session, outbox, waits: dict[str, list[str]]):
        self.session, self.outbox, self.waits = session, outbox, waits
        self.seqs: dict[str, int] = {}
        self.rows: dict[str, dict] = {}
        self.messages: list = []

    def say(self, row, sessions: list[str], change: SessionOutcome) -> None:
        seq = self.seqs.get(row.registration_id, row.decision_seq) + 1
        self.seqs[row.registration_id] = seq
        self.rows[row.registration_id] = {"key": row.registration_id, "seq": seq,
                                          "sessions": sessions}
        self.messages.append((SeatDecided(
            registration_id=row.registration_id, event_slug=row.event_slug, outcome=row.state,
            decision_seq=seq, hold_expires_at=row.hold_expires_at, sessions=sessions,
            sessions_waiting=self.waits.get(row.registration_id, []), session_change=change),
            None))

    def write(self) -> None:
        if self.rows:
            self.session.execute(
                update(reservations).where(reservations.c.registration_id == bindparam("key"))
                .values(decision_seq=bindparam("seq"), sessions=bindparam("sessions"),
                        updated_at=utcnow()),
                list(self.rows.values()))
        self.outbox.add_many(self.session, self.messages)
        self.rows, self.messages = {}, []
