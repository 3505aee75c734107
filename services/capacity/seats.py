"""Seat changes against the database: reserve, release, confirm, expire, resize.

Every change to one event's seats first locks that event's ``seat_events``
row, so they happen one at a time across every replica (on SQLite, BEGIN
IMMEDIATE serializes all writers anyway). Pool counters are then written with
conditional updates that refuse to exceed a capacity: a bug in the arithmetic
above would fail the transaction rather than oversell.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.contracts import (
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationRequested,
    SeatDecided,
    SeatRules,
)
from shared.db import insert_if_absent, locked
from shared.errors import EventNotKnownYet
from shared.schemas import EventSpec, parse_duration
from shared.statuses import FINAL, SEATED, Status

from . import ledger
from .models import reservations, seat_events, seat_pools

# A confirmation sent just before the deadline may still be on its way from
# the registration service: holds are expired only this long after it.
HOLD_GRACE = timedelta(seconds=2)


class SeatInvariantBroken(Exception):
    """A pool update would have exceeded its capacity: the transaction aborts."""



# -- the event's seat rules ----------------------------------------------------
def apply_event(session: Session, outbox, spec: EventSpec, revision: int) -> None:
    apply_rules(session, outbox, spec.slug, SeatRules.of(spec), revision)


def apply_rules(session: Session, outbox, slug: str, rules: SeatRules, revision: int):
    """Take an event's seat rules at a revision (an older revision changes
    nothing); returns the event's row, locked."""
    current = _lock_event(session, slug, must_exist=False)
    if current is None:
        # The first requests of a new event may arrive together: one creates
        # the row (revision 0 until just below), the others wait and lock it.
        insert_if_absent(session, seat_events, event_slug=slug, revision=0,
                         waitlist=rules.waitlist, next_queue_seq=1)
        current = _lock_event(session, slug)
    if current.revision >= revision:
        return current   # an older description, overtaken by a newer one
    hold_seconds = (int(parse_duration(rules.confirmation_window).total_seconds())
                    if rules.confirmation_window else None)
    session.execute(update(seat_events).where(seat_events.c.event_slug == slug).values(
        revision=revision, waitlist=rules.waitlist, hold_seconds=hold_seconds))
    wanted = {"event": rules.capacity}
    wanted.update({f"category:{key}": capacity for key, capacity in rules.categories.items()})
    wanted.update({f"session:{key}": capacity for key, capacity in rules.sessions.items()})
    existing = {row.pool: row for row in session.execute(
        select(seat_pools).where(seat_pools.c.event_slug == slug))}
    for key, capacity in wanted.items():
        if key not in existing:
            session.execute(seat_pools.insert().values(event_slug=slug, pool=key,
                                                       capacity=capacity, used=0))
        elif existing[key].capacity != capacity:
            # Lowering below the seats already given keeps those seats; no one
            # new is seated until enough are freed.
            session.execute(update(seat_pools).where(
                seat_pools.c.event_slug == slug, seat_pools.c.pool == key).values(capacity=capacity))
    event = _lock_event(session, slug)
    _fill_free_seats(session, outbox, event)    # a raise moves the waiting list up (a new event has none)
    return event


# -- registrations ask for seats ----------------------------------------------
def reserve_many(session: Session, outbox, requests: list[tuple[RegistrationRequested, str | None]]):
    """Decide a batch of requests (each with its correlation id), event by
    event, under one lock per event and in the order they arrived: first
    come, first served is the order in which the event's lock decides them."""
    by_event: dict[str, list] = {}
    for request, correlation_id in requests:
        by_event.setdefault(request.event_slug, []).append((request, correlation_id))
    for slug in sorted(by_event):           # a fixed lock order: no deadlock between batches
        _reserve_for_event(session, outbox, slug, by_event[slug])


def reserve(session: Session, outbox, request: RegistrationRequested) -> None:
    """One request: a batch of one."""
    reserve_many(session, outbox, [(request, None)])


def _reserve_for_event(session, outbox, slug, requests):
    event = _lock_with_newest_rules(session, outbox, slug, [r for r, _ in requests])
    known = set(session.execute(select(reservations.c.registration_id).where(
        reservations.c.registration_id.in_([r.registration_id for r, _ in requests]))).scalars())
    fresh = []
    for request, correlation_id in requests:
        if request.registration_id not in known:   # decided before, or cancelled first
            known.add(request.registration_id)
            fresh.append((request, correlation_id))
    if not fresh:
        return
    pools = _pools(session, slug)
    before = {key: pool.used for key, pool in pools.items()}
    outcomes = ledger.place(pools, [ledger.pool_keys(r.category, r.sessions) for r, _ in fresh],
                            waitlist=event.waitlist)
    _take_counted(session, slug, {key: pool.used - before[key] for key, pool in pools.items()})
    now = utcnow()
    lines = _waiting_counts(session, slug) if Status.WAITLISTED in outcomes else {}
    next_seq = event.next_queue_seq
    rows, decisions = [], []
    for (request, correlation_id), outcome in zip(fresh, outcomes):
        row = {"registration_id": request.registration_id, "event_slug": slug,
               "category": request.category, "sessions": request.sessions, "decision_seq": 1,
               "requested_at": request.requested_at, "updated_at": now, "queue_seq": None,
               "hold_expires_at": None}
        position = None
        if outcome == "seated":
            outcome = Status.HELD if event.hold_seconds else Status.CONFIRMED
            if event.hold_seconds:
                row["hold_expires_at"] = now + timedelta(seconds=event.hold_seconds)
        elif outcome == Status.WAITLISTED:
            row["queue_seq"], next_seq = next_seq, next_seq + 1
            lines[request.category] = position = lines.get(request.category, 0) + 1
        rows.append({**row, "state": outcome})
        decisions.append((SeatDecided(
            registration_id=request.registration_id, event_slug=slug, outcome=outcome,
            decision_seq=1, waitlist_position=position, hold_expires_at=row["hold_expires_at"],
            reason="full" if outcome == Status.REJECTED else None), correlation_id))
    session.execute(reservations.insert(), rows)
    if next_seq != event.next_queue_seq:
        session.execute(update(seat_events).where(seat_events.c.event_slug == slug)
                        .values(next_queue_seq=next_seq))
    outbox.add_many(session, decisions)


def _lock_with_newest_rules(session, outbox, slug, requests):
    """The event's row, locked, with the newest seat rules any request brought
    (a request brings them so that it is decided even before the event's own
    message, on another queue, has arrived)."""
    with_rules = [r for r in requests if r.seat_rules is not None]
    if not with_rules:
        return _lock_event(session, slug)
    newest = max(with_rules, key=lambda r: r.event_revision)
    return apply_rules(session, outbox, slug, newest.seat_rules, newest.event_revision)


def _waiting_counts(session, slug) -> dict:
    """How many wait in each line (a category's, or the event's when it
    has none): one count per batch rather than one per registration."""
    return dict(session.execute(
        select(reservations.c.category, func.count()).where(
            reservations.c.event_slug == slug, reservations.c.state == Status.WAITLISTED)
        .group_by(reservations.c.category)).all())


# -- a registration lets go --------------------------------------------------
def release(session: Session, outbox, cancelled: RegistrationCancelled) -> None:
    event = _lock_event(session, cancelled.event_slug)
    row = _reservation(session, cancelled.registration_id)
    if row is None:
        # The cancellation overtook the request: leave a tombstone so the
        # request, when it comes, finds the matter settled.
        now = utcnow()
        session.execute(reservations.insert().values(
            registration_id=cancelled.registration_id, event_slug=cancelled.event_slug,
            sessions=[], state=Status.CANCELLED, decision_seq=0, requested_at=now, updated_at=now))
        return
    if row.state in FINAL:
        return
    was_seated = row.state in SEATED
    _set_state(session, row, Status.CANCELLED, queue_seq=None, hold_expires_at=None)
    if was_seated:
        pools = _pools(session, event.event_slug)
        _give_back(session, event.event_slug, pools, ledger.pool_keys(row.category, row.sessions))
        _fill_free_seats(session, outbox, event)


def confirm_hold(session: Session, outbox, confirmed: RegistrationConfirmed) -> None:
    _lock_event(session, confirmed.event_slug)
    row = _reservation(session, confirmed.registration_id)
    if row is None or row.state != Status.HELD:
        return
    _decide(session, outbox, row, Status.CONFIRMED)


def expire_hold(session: Session, outbox, registration_id: str, now: datetime) -> bool:
    """Expire one hold whose deadline (plus the grace) has passed; frees its
    seat for the waiting list."""
    row = _reservation(session, registration_id)
    if row is None:
        return False
    event = _lock_event(session, row.event_slug)
    row = _reservation(session, registration_id)
    if row.state != Status.HELD or row.hold_expires_at + HOLD_GRACE > now:
        return False
    _decide(session, outbox, row, Status.EXPIRED)
    pools = _pools(session, event.event_slug)
    _give_back(session, event.event_slug, pools, ledger.pool_keys(row.category, row.sessions))
    _fill_free_seats(session, outbox, event)
    return True


def due_holds(session: Session, now: datetime, limit: int = 100) -> list[str]:
    query = (select(reservations.c.registration_id)
             .where(reservations.c.state == Status.HELD,
                    reservations.c.hold_expires_at <= now - HOLD_GRACE)
             .order_by(reservations.c.hold_expires_at).limit(limit))
    return [row.registration_id for row in session.execute(query)]


# -- reading -------------------------------------------------------------------
def waitlist_position(session: Session, registration_id: str) -> int | None:
    row = _reservation(session, registration_id)
    if row is None or row.state != Status.WAITLISTED:
        return None
    return _position(session, row)


def event_seats(session: Session, slug: str) -> dict:
    pools = _pools(session, slug)
    states: dict[str, int] = dict(session.execute(
        select(reservations.c.state, func.count()).where(reservations.c.event_slug == slug)
        .group_by(reservations.c.state)).all())
    return {"pools": {key: {"capacity": p.capacity, "used": p.used,
                            "left": None if p.capacity is None else max(0, p.capacity - p.used)}
                      for key, p in pools.items()},
            "states": states}


def event_slugs(session: Session) -> list[str]:
    return list(session.execute(select(seat_events.c.event_slug)).scalars())


# -- helpers ---------------------------------------------------------------------
def _lock_event(session: Session, slug: str, must_exist: bool = True):
    row = session.execute(locked(select(seat_events).where(seat_events.c.event_slug == slug),
                                 session)).first()
    if row is None and must_exist:
        raise EventNotKnownYet(f"event {slug!r} has not been described to capacity yet")
    return row


def _reservation(session: Session, registration_id: str):
    return session.execute(select(reservations).where(
        reservations.c.registration_id == registration_id)).first()


def _pools(session: Session, slug: str) -> dict[str, ledger.Pool]:
    return {row.pool: ledger.Pool(row.pool, row.capacity, row.used) for row in session.execute(
        select(seat_pools).where(seat_pools.c.event_slug == slug))}


def _take(session, slug, pools, needs):
    ledger.take(pools, needs)
    _take_counted(session, slug, {key: 1 for key in needs if key in pools})


def _take_counted(session, slug, taken: dict[str, int]):
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


def _give_back(session, slug, pools, needs):
    ledger.give_back(pools, needs)
    for key in needs:
        if key in pools:
            session.execute(update(seat_pools).where(
                seat_pools.c.event_slug == slug, seat_pools.c.pool == key, seat_pools.c.used > 0)
                .values(used=seat_pools.c.used - 1))


def _seat(session, outbox, event, row, promoted: bool):
    if event.hold_seconds:
        deadline = utcnow() + timedelta(seconds=event.hold_seconds)
        _decide(session, outbox, row, Status.HELD, promoted=promoted, hold_expires_at=deadline)
    else:
        _decide(session, outbox, row, Status.CONFIRMED, promoted=promoted)


def _position(session, row) -> int:
    """Place in the line of the registration's category (the whole event
    when there are no categories): one more than those who came before."""
    ahead = session.execute(select(func.count()).select_from(reservations).where(
        reservations.c.event_slug == row.event_slug, reservations.c.state == Status.WAITLISTED,
        _same_line(row.category), reservations.c.queue_seq < row.queue_seq)).scalar_one()
    return ahead + 1


def _same_line(category):
    # SQLAlchemy compares with None as IS NULL: the line of those without a category.
    return reservations.c.category == category


def _fill_free_seats(session, outbox, event):
    pools = _pools(session, event.event_slug)
    waiting_rows = session.execute(select(reservations).where(   # ledger.promote orders them
        reservations.c.event_slug == event.event_slug, reservations.c.state == Status.WAITLISTED)).all()
    if not waiting_rows:
        return
    waiting = [ledger.Waiting(r.registration_id, ledger.pool_keys(r.category, r.sessions), r.queue_seq)
               for r in waiting_rows]
    planned = {key: replace(pool) for key, pool in pools.items()}     # a copy to plan on
    by_id = {r.registration_id: r for r in waiting_rows}
    for entry in ledger.promote(planned, waiting):
        _take(session, event.event_slug, pools, entry.needs)
        _seat(session, outbox, event, by_id[entry.registration_id], promoted=True)


def _set_state(session, row, state, **values):
    session.execute(update(reservations).where(
        reservations.c.registration_id == row.registration_id).values(
        state=state, updated_at=utcnow(), **values))


def _decide(session, outbox, row, outcome, promoted=False, hold_expires_at=None):
    """A later decision on a registration, announced with the next decision_seq.
    No later decision puts anyone on the waiting list: the registration leaves
    the line (if it was on it), and any outcome but a new hold clears the
    hold's deadline."""
    seq = row.decision_seq + 1
    _set_state(session, row, outcome, decision_seq=seq, queue_seq=None,
               hold_expires_at=hold_expires_at)
    outbox.add(session, SeatDecided(
        registration_id=row.registration_id, event_slug=row.event_slug, outcome=outcome,
        decision_seq=seq, promoted=promoted, hold_expires_at=hold_expires_at))
