"""A seated registration's sessions as the programme changes: followers of
a series take each session added later, an attendee asks for one more, each
session has its own waiting line, and a session the organisers cancel lets
its people go. Every change is a word to the registration (store.SessionWords)
with the status unchanged; the event's lock is held throughout.

First come, first served: followers are enrolled in the order capacity
seated them (``arrival_seq``), and a session's line is served in the order
people joined it (``queue_seq``, from the event's one counter).
"""
from __future__ import annotations

from collections import Counter

from sqlalchemy import delete, insert, select, update

from shared.contracts import (
    RegistrationUnfollowed,
    SessionOutcome,
    SessionReason,
    SessionRequested,
    SessionVerdict,
)
from shared.errors import EventNotKnownYet
from shared.statuses import SEATED, Status

from . import ledger, store
from .models import reservations, seat_pools, session_waits

OUTCOMES: dict[str, SessionVerdict] = {"seated": "seated", Status.WAITLISTED: "waitlisted", Status.REJECTED: "refused"}


def enrol_followers(session, outbox, event, added: list[str]) -> None:
    """Sessions just added to the event: each follower with a seat takes
    them, in arrival order, and is told of each."""
    slug = event.event_slug
    if not added:
        return
    rows = session.execute(select(reservations).where(
        reservations.c.event_slug == slug, reservations.c.follows.is_(True),
        reservations.c.state.in_(SEATED))
        .order_by(reservations.c.arrival_seq, reservations.c.requested_at,
                  reservations.c.registration_id)).all()
    if rows:
        _place(session, outbox, event, rows, added, "added")


def request_session(session, outbox, request: SessionRequested) -> None:
    """An attendee with a seat asks for a session they do not hold."""
    event = store.lock_event(session, request.event_slug)
    row = store.reservation(session, request.registration_id)
    if row is None or row.state not in SEATED:
        return    # the seat went meanwhile: nothing to add to
    pools = store.pools(session, request.event_slug)
    if ledger.session_key(request.session) not in pools:
        # The registration service knows the event at a newer revision than
        # this service has yet heard of: try again once it has.
        raise EventNotKnownYet(f"session {request.session!r} of {request.event_slug!r}")
    _place(session, outbox, event, [row], [request.session], "asked", pools)


def _place(session, outbox, event, rows, added: list[str], reason: SessionReason, pools=None) -> None:
    """Seat each row in each of ``added`` it neither holds nor waits for,
    else put it in that session's line (or refuse it): one word each."""
    slug = event.event_slug
    pools = pools or store.pools(session, slug)
    before = {key: pool.used for key, pool in pools.items()}
    waits = store.waits_of(session, slug)
    lines = Counter(s for slugs in waits.values() for s in slugs)     # how many wait, per session
    words = store.SessionWords(session, outbox, waits)
    queue_seq = store.next_seq(session, slug, len(rows) * len(added))
    new_waits = []
    for row in rows:
        held = list(row.sessions)
        mine = waits.setdefault(row.registration_id, [])
        for added_slug, outcome in ledger.follow(pools, added, held, mine, event.waitlist).items():
            position = None
            if outcome == "seated":
                held = sorted({*held, added_slug})
            elif outcome == Status.WAITLISTED:
                mine.append(added_slug)
                mine.sort()
                lines[added_slug] = position = lines[added_slug] + 1
                new_waits.extend(wait_rows(slug, row.registration_id, [added_slug], queue_seq))
                queue_seq += 1
            words.say(row, held, SessionOutcome(session=added_slug, outcome=OUTCOMES[outcome],
                                                reason=reason, position=position))
    store.take_counted(session, slug, {key: pool.used - before[key] for key, pool in pools.items()})
    if new_waits:
        session.execute(insert(session_waits), new_waits)
    words.write()


def cancel_sessions(session, outbox, event, cancelled: list[str]) -> None:
    """Sessions the organisers cancelled: everyone who held one, asked for
    it while waiting, or waited in its line is let go of it and told. Its
    pool keeps no seat, so nobody is promoted into it."""
    slug = event.event_slug
    if not cancelled:
        return
    rows = session.execute(select(reservations).where(
        reservations.c.event_slug == slug,
        reservations.c.state.in_([*SEATED, Status.WAITLISTED]))
        .order_by(reservations.c.arrival_seq, reservations.c.registration_id)).all()
    waits = store.waits_of(session, slug)
    session.execute(delete(session_waits).where(session_waits.c.event_slug == slug,
                                                session_waits.c.session.in_(cancelled)))
    session.execute(update(seat_pools).where(
        seat_pools.c.event_slug == slug,
        seat_pools.c.pool.in_([ledger.session_key(s) for s in cancelled])).values(used=0))
    words = store.SessionWords(session, outbox, waits)
    out_of_line = []
    for row in rows:
        held = list(row.sessions)
        mine = waits.setdefault(row.registration_id, [])
        for gone in cancelled:
            if gone not in held and gone not in mine:
                continue
            held = [s for s in held if s != gone]
            mine[:] = [s for s in mine if s != gone]
            words.say(row, held, SessionOutcome(session=gone, outcome="cancelled", reason="cancelled"))
        if row.state == Status.WAITLISTED and not held and not row.follows:
            out_of_line.append(row.registration_id)
    words.write()
    # Waiting for a seat in sessions that are all cancelled: never seated in none.
    if out_of_line:
        session.execute(update(reservations).where(reservations.c.registration_id.in_(out_of_line))
                        .values(queue_seq=None))


def unfollow(session, message: RegistrationUnfollowed) -> None:
    session.execute(update(reservations).where(
        reservations.c.registration_id == message.registration_id).values(follows=False))


def session_lines(session, slug: str) -> list[ledger.Waiting]:
    """Everyone with a seat who waits for one more session, as the ledger
    orders waiting entries."""
    rows = session.execute(select(session_waits).join(
        reservations, reservations.c.registration_id == session_waits.c.registration_id).where(
        session_waits.c.event_slug == slug, reservations.c.state.in_(SEATED))).all()
    return [ledger.Waiting(row.registration_id, [ledger.session_key(row.session)], row.queue_seq,
                           session=row.session) for row in rows]


def seat_in_sessions(session, outbox, event, entries: list[ledger.Waiting]) -> None:
    """Those whose turn in a session's line came (their pool seats already
    taken): the session is theirs, and they are told."""
    if not entries:
        return
    slug = event.event_slug
    rows = {row.registration_id: row for row in session.execute(select(reservations).where(
        reservations.c.registration_id.in_(sorted({e.registration_id for e in entries}))))}
    for entry in entries:
        session.execute(delete(session_waits).where(
            session_waits.c.registration_id == entry.registration_id,
            session_waits.c.session == entry.session))
    words = store.SessionWords(session, outbox, store.waits_of(session, slug))
    held = {rid: list(row.sessions) for rid, row in rows.items()}
    for entry in entries:
        assert entry.session is not None
        held[entry.registration_id] = sorted({*held[entry.registration_id], entry.session})
        words.say(rows[entry.registration_id], held[entry.registration_id],
                  SessionOutcome(session=entry.session, outcome="seated", reason="freed"))
    words.write()


def join_lines(session, slug: str, registration_id: str, sessions: list[str]) -> None:
    """A follower just seated waits for these sessions, behind everyone in line."""
    if sessions:
        first = store.next_seq(session, slug, len(sessions))
        session.execute(insert(session_waits), wait_rows(slug, registration_id, sessions, first))


def wait_rows(slug: str, registration_id: str, sessions: list[str], first_seq: int) -> list[dict]:
    """``session_waits`` rows: the registration in each session's line, in
    the order given, numbered from ``first_seq``."""
    return [{"registration_id": registration_id, "session": s, "event_slug": slug,
             "queue_seq": first_seq + i} for i, s in enumerate(sessions)]


def leave_lines(session, registration_id: str) -> None:
    """A registration that gave its seat up waits for no session either."""
    session.execute(delete(session_waits).where(session_waits.c.registration_id == registration_id))

