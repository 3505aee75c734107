"""Seat changes against the database: reserve, release, confirm, expire, resize.

Every change to one event's seats first locks that event's ``seat_events``
row (store.lock_event), so they happen one at a time across every replica.
What becomes of a seated registration's other sessions (a series' followers,
cancelled sessions, each session's line) is programme.py's.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.contracts import (
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationRequested,
    SeatDecided,
    SeatRules,
)
from shared.db import insert_if_absent
from shared.schemas import EventSpec, parse_duration
from shared.statuses import FINAL, SEATED, Status

from . import ledger, programme, store
from .models import reservations, seat_events, seat_pools, session_waits

# A confirmation sent just before the deadline may still be on its way from
# the registration service: holds are expired only this long after it.
HOLD_GRACE = timedelta(seconds=2)


# -- the event's seat rules ----------------------------------------------------
def apply_event(session: Session, outbox, spec: EventSpec, revision: int) -> None:
    apply_rules(session, outbox, spec.slug, SeatRules.of(spec), revision)


def apply_rules(session: Session, outbox, slug: str, rules: SeatRules, revision: int):
    """Take an event's seat rules at a revision (an older revision changes
    nothing); returns the event's row, locked."""
    current = store.lock_event(session, slug, must_exist=False)
    if current is None:
        # The first requests of a new event may arrive together: one creates
        # the row (revision 0 until just below), the others wait and lock it.
        insert_if_absent(session, seat_events, event_slug=slug, revision=0,
                         waitlist=rules.waitlist, next_queue_seq=1)
        current = store.lock_event(session, slug)
    if current.revision >= revision:
        return current   # an older description, overtaken by a newer one
    hold_seconds = (int(parse_duration(rules.confirmation_window).total_seconds())
                    if rules.confirmation_window else None)
    session.execute(update(seat_events).where(seat_events.c.event_slug == slug).values(
        revision=revision, waitlist=rules.waitlist, hold_seconds=hold_seconds))
    added, cancelled = _resize_pools(session, slug, rules)
    event = store.lock_event(session, slug)
    if current.revision > 0:          # a new event has nobody to tell
        programme.cancel_sessions(session, outbox, event, cancelled)
        programme.enrol_followers(session, outbox, event, added)
    _fill_free_seats(session, outbox, event)    # a raise moves the waiting lines up
    return store.lock_event(session, slug)


def _resize_pools(session, slug, rules: SeatRules) -> tuple[list[str], list[str]]:
    """Bring the pools in line with the rules; returns the sessions added
    and the sessions cancelled by this revision."""
    cancelled = set(rules.cancelled_sessions)
    wanted = {"event": (rules.capacity, False)}
    wanted.update({f"category:{key}": (capacity, False) for key, capacity in rules.categories.items()})
    wanted.update({ledger.session_key(key): (0 if key in cancelled else capacity, key in cancelled)
                   for key, capacity in rules.sessions.items()})
    existing = {row.pool: row for row in session.execute(
        select(seat_pools).where(seat_pools.c.event_slug == slug))}
    added, newly_cancelled = [], []
    for key, (capacity, is_cancelled) in wanted.items():
        if key not in existing:
            session.execute(seat_pools.insert().values(event_slug=slug, pool=key, capacity=capacity,
                                                       used=0, cancelled=is_cancelled))
            if key.startswith("session:") and not is_cancelled:
                added.append(key.removeprefix("session:"))
        elif (existing[key].capacity, existing[key].cancelled) != (capacity, is_cancelled):
            # Lowering below the seats already given keeps those seats; no one
            # new is seated until enough are freed. A cancelled pool stays so.
            is_cancelled = is_cancelled or existing[key].cancelled
            session.execute(update(seat_pools).where(
                seat_pools.c.event_slug == slug, seat_pools.c.pool == key).values(
                capacity=0 if is_cancelled else capacity, cancelled=is_cancelled))
            if is_cancelled and not existing[key].cancelled:
                newly_cancelled.append(key.removeprefix("session:"))
    return sorted(added), sorted(newly_cancelled)


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
    pools = store.pools(session, slug)
    before = {key: pool.used for key, pool in pools.items()}
    now = utcnow()
    lines: dict | None = None
    next_seq = event.next_queue_seq
    rows, waits, decisions = [], [], []
    for request, correlation_id in fresh:
        outcome = ledger.place_one(pools, ledger.pool_keys(request.category, request.sessions),
                                   event.waitlist)
        row = {"registration_id": request.registration_id, "event_slug": slug,
               "category": request.category, "sessions": request.sessions, "decision_seq": 1,
               "requested_at": request.requested_at, "updated_at": now, "queue_seq": None,
               "hold_expires_at": None, "arrival_seq": next_seq, "follows": request.follows}
        next_seq += 1
        position, held, waiting = None, None, None
        if outcome == "seated":
            outcome = Status.HELD if event.hold_seconds else Status.CONFIRMED
            if event.hold_seconds:
                row["hold_expires_at"] = now + timedelta(seconds=event.hold_seconds)
            if request.follows:      # sessions added since the registration was stored
                held, waiting = _follow_on(pools, request.sessions, [], event.waitlist)
                row["sessions"] = held
                waits.extend(programme.wait_rows(slug, request.registration_id, waiting, next_seq))
                next_seq += len(waiting)
        elif outcome == Status.WAITLISTED:
            row["queue_seq"] = row["arrival_seq"]
            lines = _waiting_counts(session, slug) if lines is None else lines
            lines[request.category] = position = lines.get(request.category, 0) + 1
        rows.append({**row, "state": outcome})
        decisions.append((SeatDecided(
            registration_id=request.registration_id, event_slug=slug, outcome=outcome,
            decision_seq=1, waitlist_position=position, hold_expires_at=row["hold_expires_at"],
            reason="full" if outcome == Status.REJECTED else None,
            sessions=held, sessions_waiting=waiting), correlation_id))
    store.take_counted(session, slug, {key: pool.used - before[key] for key, pool in pools.items()})
    session.execute(reservations.insert(), rows)
    if waits:
        session.execute(insert(session_waits), waits)
    session.execute(update(seat_events).where(seat_events.c.event_slug == slug)
                    .values(next_queue_seq=next_seq))
    outbox.add_many(session, decisions)


def _follow_on(pools, holds: list[str], waits: list[str], waitlist: bool):
    """A follower just seated takes every open session it did not ask for:
    (the sessions it now holds, those it newly waits for), both sorted."""
    outcomes = ledger.follow(pools, ledger.open_sessions(pools), holds, waits, waitlist)
    held = sorted({*holds, *(s for s, outcome in outcomes.items() if outcome == "seated")})
    return held, sorted(s for s, outcome in outcomes.items() if outcome == Status.WAITLISTED)


def _lock_with_newest_rules(session, outbox, slug, requests):
    """The event's row, locked, with the newest seat rules any request brought
    (a request brings them so that it is decided even before the event's own
    message, on another queue, has arrived)."""
    with_rules = [r for r in requests if r.seat_rules is not None]
    if not with_rules:
        return store.lock_event(session, slug)
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
    event = store.lock_event(session, cancelled.event_slug)
    row = store.reservation(session, cancelled.registration_id)
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
    store.set_state(session, row, Status.CANCELLED, queue_seq=None, hold_expires_at=None)
    if was_seated:
        _let_go(session, outbox, event, row)


def confirm_hold(session: Session, outbox, confirmed: RegistrationConfirmed) -> None:
    store.lock_event(session, confirmed.event_slug)
    row = store.reservation(session, confirmed.registration_id)
    if row is None or row.state != Status.HELD:
        return
    store.decide(session, outbox, row, Status.CONFIRMED)


def expire_hold(session: Session, outbox, registration_id: str, now: datetime) -> bool:
    """Expire one hold whose deadline (plus the grace) has passed; frees its
    seat for the waiting list."""
    row = store.reservation(session, registration_id)
    if row is None:
        return False
    event = store.lock_event(session, row.event_slug)
    row = store.reservation(session, registration_id)
    if row.state != Status.HELD or row.hold_expires_at + HOLD_GRACE > now:
        return False
    store.decide(session, outbox, row, Status.EXPIRED)
    _let_go(session, outbox, event, row)
    return True


def _let_go(session, outbox, event, row) -> None:
    """A seat given up: its pools, and its places in sessions' lines, go to
    those waiting."""
    pools = store.pools(session, event.event_slug)
    store.give_back(session, event.event_slug, pools, ledger.pool_keys(row.category, row.sessions))
    programme.leave_lines(session, row.registration_id)
    _fill_free_seats(session, outbox, event)


def due_holds(session: Session, now: datetime, limit: int = 100) -> list[str]:
    query = (select(reservations.c.registration_id)
             .where(reservations.c.state == Status.HELD,
                    reservations.c.hold_expires_at <= now - HOLD_GRACE)
             .order_by(reservations.c.hold_expires_at).limit(limit))
    return [row.registration_id for row in session.execute(query)]


# -- reading -------------------------------------------------------------------
def waitlist_position(session: Session, registration_id: str) -> int | None:
    row = store.reservation(session, registration_id)
    if row is None or row.state != Status.WAITLISTED or row.queue_seq is None:
        return None
    return _position(session, row)


def event_seats(session: Session, slug: str) -> dict:
    pools = store.pools(session, slug)
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
    """Seats that came free go to those waiting, in arrival order: a
    registration waiting for its seat, or one with its seat waiting for one
    more session. A follower seated here also takes the open sessions it did
    not ask for."""
    slug = event.event_slug
    waiting_rows = session.execute(select(reservations).where(   # ledger.promote orders them
        reservations.c.event_slug == slug, reservations.c.state == Status.WAITLISTED)).all()
    # Out of line (queue_seq null): waiting for sessions that were all cancelled.
    waiting = [ledger.Waiting(r.registration_id, ledger.pool_keys(r.category, r.sessions), r.queue_seq)
               for r in waiting_rows if r.queue_seq is not None]
    waiting.extend(programme.session_lines(session, slug))
    if not waiting:
        return
    pools = store.pools(session, slug)
    planned = {key: replace(pool) for key, pool in pools.items()}     # a copy to plan on
    chosen = ledger.promote(planned, waiting)
    for entry in chosen:
        store.take(session, slug, pools, entry.needs)
    programme.seat_in_sessions(session, outbox, event, [e for e in chosen if e.session])
    by_id = {r.registration_id: r for r in waiting_rows}
    for entry in chosen:
        if entry.session is None:
            _seat(session, outbox, event, pools, by_id[entry.registration_id])


def _seat(session, outbox, event, pools, row):
    """A registration off the waiting list; a follower with every open session."""
    held = waiting = None
    if row.follows:
        before = {key: pool.used for key, pool in pools.items()}
        held, waiting = _follow_on(pools, row.sessions, [], event.waitlist)
        store.take_counted(session, event.event_slug,
                           {key: pool.used - before[key] for key, pool in pools.items()})
        programme.join_lines(session, event.event_slug, row.registration_id, waiting)
    deadline = utcnow() + timedelta(seconds=event.hold_seconds) if event.hold_seconds else None
    store.decide(session, outbox, row, Status.HELD if deadline else Status.CONFIRMED,
                 promoted=True, hold_expires_at=deadline, sessions=held, sessions_waiting=waiting)
