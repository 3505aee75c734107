"""Holds and their 2 s grace, against a real (SQLite) database, with the clock
passed in: a hold is not expired before its deadline plus HOLD_GRACE, is
expired from then on (its seat going to the first waiting), and a
confirmation that reaches capacity inside the grace keeps the seat."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from services.capacity import seats
from services.capacity.models import reservations, seat_pools
from shared.contracts import RegistrationConfirmed, RegistrationRequested, SeatDecided
from shared.db import transaction
from shared.schemas import EventSpec
from tests.support.documents import event_document

pytestmark = pytest.mark.timeout(60)

TICK = timedelta(milliseconds=1)


@pytest.fixture
def held(db, outbox):
    """One seat, held by "a" (a 30 s window); "b" waits. The hold's deadline."""
    spec = EventSpec.model_validate_json(json.dumps(event_document(
        slug="conf", capacity=1, confirmation_window="PT30S")))
    with transaction(db) as session:
        seats.apply_event(session, outbox, spec, 1)
    for name in ("a", "b"):
        with transaction(db) as session:
            seats.reserve(session, outbox, RegistrationRequested(
                registration_id=name, event_slug="conf", category=None, sessions=["day-1"],
                requested_at=datetime.now(UTC)))
    assert state(db, "a") == "held" and state(db, "b") == "waitlisted"
    with transaction(db) as session:
        return session.execute(select(reservations.c.hold_expires_at).where(
            reservations.c.registration_id == "a")).scalar_one()


def state(db, registration_id):
    with transaction(db) as session:
        return session.execute(select(reservations.c.state).where(
            reservations.c.registration_id == registration_id)).scalar_one()


def used(db):
    with transaction(db) as session:
        return session.execute(select(seat_pools.c.used).where(seat_pools.c.pool == "event")).scalar_one()


def due(db, now):
    with transaction(db) as session:
        return seats.due_holds(session, now)


def expire(db, outbox, now):
    with transaction(db) as session:
        return seats.expire_hold(session, outbox, "a", now)


def test_the_grace_is_two_seconds():
    assert seats.HOLD_GRACE == timedelta(seconds=2)


def test_a_hold_is_not_due_before_its_deadline_plus_the_grace(db, held):
    for now in (held - timedelta(seconds=1), held, held + seats.HOLD_GRACE / 2,
                held + seats.HOLD_GRACE - TICK):
        assert due(db, now) == [], now - held
    assert due(db, held + seats.HOLD_GRACE) == ["a"]
    assert due(db, held + timedelta(hours=1)) == ["a"]


def test_a_hold_is_not_expired_inside_the_grace_even_when_asked(db, outbox, held):
    """expire_hold checks the deadline itself: a replica that listed the hold
    as due a moment ago cannot expire it early."""
    for now in (held, held + seats.HOLD_GRACE - TICK):
        assert expire(db, outbox, now) is False
    assert (state(db, "a"), state(db, "b"), used(db)) == ("held", "waitlisted", 1)
    assert [d for d in outbox.of_type(SeatDecided) if d.decision_seq > 1] == []


def test_after_the_grace_the_hold_expires_once_and_the_first_waiting_is_seated(db, outbox, held):
    now = held + seats.HOLD_GRACE
    before = seats.utcnow()
    assert expire(db, outbox, now) is True
    after = seats.utcnow()
    assert expire(db, outbox, now + timedelta(seconds=5)) is False        # once
    assert (state(db, "a"), state(db, "b"), used(db)) == ("expired", "held", 1)
    later = [(d.registration_id, d.outcome, d.promoted) for d in outbox.of_type(SeatDecided)
             if d.decision_seq > 1]
    assert later == [("a", "expired", False), ("b", "held", True)]
    [promotion] = [d for d in outbox.of_type(SeatDecided) if d.registration_id == "b" and d.promoted]
    window = timedelta(seconds=30)                                       # b gets a window of its own
    assert before + window <= promotion.hold_expires_at <= after + window
    assert due(db, promotion.hold_expires_at + seats.HOLD_GRACE - TICK) == []
    assert due(db, promotion.hold_expires_at + seats.HOLD_GRACE) == ["b"]  # and it runs out too


def test_a_confirmation_inside_the_grace_wins(db, outbox, held):
    """The deadline has passed but the grace has not: the confirmation sent
    just in time reaches capacity, and the expiry that comes after finds
    nothing to expire."""
    inside = held + timedelta(seconds=1)                  # the deadline passed, the grace not
    assert due(db, inside) == [] and expire(db, outbox, inside) is False
    with transaction(db) as session:
        seats.confirm_hold(session, outbox, RegistrationConfirmed(registration_id="a",
                                                                 event_slug="conf"))
    assert state(db, "a") == "confirmed"
    after = held + seats.HOLD_GRACE + timedelta(seconds=1)
    assert due(db, after) == []
    assert expire(db, outbox, after) is False
    assert (state(db, "a"), state(db, "b"), used(db)) == ("confirmed", "waitlisted", 1)
    later = [(d.registration_id, d.outcome) for d in outbox.of_type(SeatDecided) if d.decision_seq > 1]
    assert later == [("a", "confirmed")]
