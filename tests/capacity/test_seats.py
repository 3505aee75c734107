"""Seat decisions against a real (SQLite) database."""
import json
from datetime import UTC, datetime, timedelta

import pytest
from nameko.testing.services import worker_factory
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from services.capacity import seats
from services.capacity.models import outbox as outbox_table
from services.capacity.models import reservations, seat_pools
from services.capacity.service import CapacityService
from shared.contracts import RegistrationCancelled, RegistrationRequested, SeatDecided, SeatRules, envelope
from shared.db import transaction
from shared.outbox import Outbox
from shared.schemas import EventSpec
from tests.conftest import RecordingOutbox
from tests.support.documents import event_document


@pytest.fixture
def db(service_db):
    return service_db("capacity")


@pytest.fixture
def outbox():
    return RecordingOutbox(outbox_table)


def describe(db, outbox, revision=1, **fields):
    spec = EventSpec.model_validate_json(json.dumps(event_document(slug="conf", **fields)))
    with transaction(db) as session:
        seats.apply_event(session, outbox, spec, revision)
    return spec


def ask(db, outbox, registration_id, category=None, sessions=("day-1",)):
    message = RegistrationRequested(registration_id=registration_id, event_slug="conf",
                                    category=category, sessions=list(sessions),
                                    requested_at=datetime.now(UTC))
    with transaction(db) as session:
        seats.reserve(session, outbox, message)


def cancel(db, outbox, registration_id):
    with transaction(db) as session:
        seats.release(session, outbox, RegistrationCancelled(registration_id=registration_id,
                                                             event_slug="conf"))


def decisions(outbox, registration_id=None):
    return [(d.registration_id, d.outcome, d.waitlist_position) for d in outbox.of_type(SeatDecided)
            if registration_id in (None, d.registration_id)]


def test_seats_then_waiting_list_in_order(db, outbox):
    describe(db, outbox, capacity=2)
    for name in ("a", "b", "c", "d"):
        ask(db, outbox, name)
    assert decisions(outbox) == [("a", "confirmed", None), ("b", "confirmed", None),
                                 ("c", "waitlisted", 1), ("d", "waitlisted", 2)]


def test_a_cancellation_promotes_the_first_waiting_exactly_once(db, outbox):
    describe(db, outbox, capacity=1)
    for name in ("a", "b", "c"):
        ask(db, outbox, name)
    cancel(db, outbox, "a")
    cancel(db, outbox, "a")
    promoted = [d for d in outbox.of_type(SeatDecided) if d.promoted]
    assert [(d.registration_id, d.outcome) for d in promoted] == [("b", "confirmed")]
    with transaction(db) as session:
        assert seats.waitlist_position(session, "c") == 1
        used = session.execute(select(seat_pools.c.used).where(seat_pools.c.pool == "event")).scalar()
    assert used == 1


def test_without_a_waiting_list_a_full_event_rejects(db, outbox):
    describe(db, outbox, capacity=1, waitlist=False)
    ask(db, outbox, "a")
    ask(db, outbox, "b")
    assert decisions(outbox, "b") == [("b", "rejected", None)]


def test_a_cancellation_that_overtakes_its_request_settles_it(db, outbox):
    describe(db, outbox, capacity=1)
    cancel(db, outbox, "early")
    ask(db, outbox, "early")
    assert decisions(outbox) == []
    ask(db, outbox, "next")
    assert decisions(outbox) == [("next", "confirmed", None)]


def test_raising_capacity_promotes(db, outbox):
    describe(db, outbox, capacity=1)
    for name in ("a", "b", "c"):
        ask(db, outbox, name)
    describe(db, outbox, revision=2, capacity=2)
    describe(db, outbox, revision=1, capacity=1)    # an old description changes nothing
    assert [d.registration_id for d in outbox.of_type(SeatDecided) if d.promoted] == ["b"]


def ask_with_rules(db, outbox, registration_id, revision=1, **fields):
    spec = EventSpec.model_validate_json(json.dumps(event_document(slug="conf", **fields)))
    message = RegistrationRequested(registration_id=registration_id, event_slug="conf",
                                    category=None, sessions=["day-1"],
                                    requested_at=datetime.now(UTC),
                                    event_revision=revision, seat_rules=SeatRules.of(spec))
    with transaction(db) as session:
        seats.reserve(session, outbox, message)


def test_a_request_that_brings_its_seat_rules_is_decided_before_the_event_arrives(db, outbox):
    ask_with_rules(db, outbox, "a", capacity=1)          # the event's own message is late
    ask_with_rules(db, outbox, "b", capacity=1)
    assert [(d.registration_id, d.outcome) for d in outbox.of_type(SeatDecided)] == [
        ("a", "confirmed"), ("b", "waitlisted")]
    describe(db, outbox, revision=1, capacity=1)         # arrives at last: nothing changes
    assert len(outbox.of_type(SeatDecided)) == 2


def test_rules_carried_by_a_request_never_undo_a_newer_revision(db, outbox):
    describe(db, outbox, revision=2, capacity=2)
    ask_with_rules(db, outbox, "a", revision=1, capacity=0)   # checked before the raise
    ask_with_rules(db, outbox, "b", revision=1, capacity=0)
    assert [d.outcome for d in outbox.of_type(SeatDecided)] == ["confirmed", "confirmed"]
    ask_with_rules(db, outbox, "c", revision=3, capacity=3)   # checked after a newer raise
    assert [d.outcome for d in outbox.of_type(SeatDecided)][-1] == "confirmed"


def test_the_handler_applies_a_twice_delivered_message_once(db):
    describe(db, RecordingOutbox(outbox_table), capacity=5)
    service = worker_factory(CapacityService, db=db, outbox=Outbox(outbox_table, None, lambda: None))
    body = envelope(RegistrationRequested(registration_id="r1", event_slug="conf", category=None,
                                          sessions=["day-1"], requested_at=datetime.now(UTC)))
    service.on_registration_requested([body, body])     # twice in one batch
    service.on_registration_requested([body])           # and again later
    with transaction(db) as session:
        assert len(session.execute(select(reservations)).all()) == 1
        published = session.execute(select(outbox_table.c.event_type)).scalars().all()
    assert published.count("seat.decided") == 1


def gauge(name, **labels):
    return REGISTRY.get_sample_value(name, labels)


def test_the_seat_counts_an_organiser_sees_and_the_gauges_report(db, outbox):
    sessions = [{"slug": "day-1", "title": {"en": "Day 1"}, "starts_at": "2027-03-18T10:00:00+03:00",
                 "ends_at": "2027-03-18T18:00:00+03:00"}]
    describe(db, outbox, capacity=2, categories=[{"slug": "local", "capacity": 1}], sessions=sessions)
    ask(db, outbox, "a", category="local")
    ask(db, outbox, "b")
    ask(db, outbox, "c")
    describe(db, outbox, revision=2, capacity=1, categories=[{"slug": "local", "capacity": 1}],
             sessions=sessions)                 # lowered below the seats given: none left, not -1
    service = worker_factory(CapacityService, db=db, outbox=Outbox(outbox_table, None, lambda: None))
    assert service.event_seats("conf") == {
        "pools": {"event": {"capacity": 1, "used": 2, "left": 0},
                  "category:local": {"capacity": 1, "used": 1, "left": 0},
                  "session:day-1": {"capacity": None, "used": 2, "left": None}},
        "states": {"confirmed": 2, "waitlisted": 1}}
    with transaction(db) as session:
        assert seats.event_slugs(session) == ["conf"]
    service.observe_seats()
    assert gauge("evreg_seats_capacity", event="conf", pool="event") == 1
    assert gauge("evreg_seats_capacity", event="conf", pool="session:day-1") == -1     # unlimited
    assert gauge("evreg_seats_used", event="conf", pool="event") == 2
    assert gauge("evreg_waitlist_length", event="conf") == 1
    assert service.waitlist_position("c") == 1 and service.waitlist_position("a") is None


def test_the_timer_expires_holds_past_their_grace_earliest_first_and_seats_who_waits(db, outbox):
    describe(db, outbox, capacity=2, confirmation_window="PT1H")
    for name in ("a", "b", "c", "d"):
        ask(db, outbox, name)
    now = seats.utcnow()
    with transaction(db) as session:
        for name, ago in (("a", timedelta(seconds=3)), ("b", timedelta(seconds=1))):
            session.execute(update(reservations).where(reservations.c.registration_id == name)
                            .values(hold_expires_at=now - ago))
        assert seats.due_holds(session, now) == ["a"]            # b is still inside its grace
        session.execute(update(reservations).where(reservations.c.registration_id == "b")
                        .values(hold_expires_at=now - timedelta(seconds=5)))
        assert seats.due_holds(session, now) == ["b", "a"]       # earliest deadline first
        assert seats.due_holds(session, now, limit=1) == ["b"]
        assert seats.due_holds(session, now - timedelta(seconds=1)) == ["b", "a"]   # a: its grace just over
        assert seats.due_holds(session, now - timedelta(seconds=1.5)) == ["b"]
    service = worker_factory(CapacityService, db=db, outbox=outbox)
    service.expire_holds()
    with transaction(db) as session:
        states = dict(session.execute(select(reservations.c.registration_id, reservations.c.state)).all())
    assert states == {"a": "expired", "b": "expired", "c": "held", "d": "held"}
    promoted = [(d.registration_id, d.outcome) for d in outbox.of_type(SeatDecided) if d.promoted]
    assert promoted == [("c", "held"), ("d", "held")]
    service.expire_holds()                                        # nothing left to expire
    assert len([d for d in outbox.of_type(SeatDecided) if d.outcome == "expired"]) == 2
