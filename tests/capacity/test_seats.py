"""Seat decisions against a real (SQLite) database."""
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from nameko.testing.services import worker_factory
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from services.capacity import seats, store
from services.capacity.models import outbox as outbox_table
from services.capacity.models import reservations, seat_pools
from services.capacity.service import CapacityService
from shared.contracts import (
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationRequested,
    SeatDecided,
    SeatRules,
    envelope,
)
from shared.db import transaction
from shared.errors import EventNotKnownYet
from shared.outbox import Outbox
from shared.schemas import EventSpec
from tests.conftest import RecordingOutbox
from tests.support.documents import event_document


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


# -- more than one event, batches, categories ---------------------------------------
def rules(capacity, waitlist=True, window=None, **categories):
    return SeatRules(capacity=capacity, waitlist=waitlist, confirmation_window=window,
                     categories=categories, sessions={})


def request(registration_id, slug="conf", category=None, sessions=(), **fields):
    return RegistrationRequested(registration_id=registration_id, event_slug=slug, category=category,
                                 sessions=list(sessions), requested_at=datetime.now(UTC), **fields)


def seats_of(db, slug):
    with transaction(db) as session:
        return seats.event_seats(session, slug)


def states(db):
    with transaction(db) as session:
        return dict(session.execute(select(reservations.c.registration_id, reservations.c.state)).all())


def positions(db, *names):
    with transaction(db) as session:
        return [seats.waitlist_position(session, name) for name in names]


def test_events_never_share_seats_or_waiting_lists(db, outbox):
    with transaction(db) as session:
        seats.apply_rules(session, outbox, "conf", rules(1), revision=1)
        seats.apply_rules(session, outbox, "expo", rules(2), revision=1)
    for slug, name in (("expo", "x"), ("expo", "y"), ("expo", "z"), ("conf", "a"), ("conf", "b"),
                       ("expo", "w"), ("conf", "c")):
        with transaction(db) as session:
            seats.reserve(session, outbox, request(name, slug))
    assert decisions(outbox) == [("x", "confirmed", None), ("y", "confirmed", None),
                                 ("z", "waitlisted", 1), ("a", "confirmed", None),
                                 ("b", "waitlisted", 1),    # first in conf's line, not second
                                 ("w", "waitlisted", 2), ("c", "waitlisted", 2)]
    assert positions(db, "b", "c", "z", "w") == [1, 2, 1, 2]
    with transaction(db) as session:                   # expo frees a seat: conf's b still waits
        seats.release(session, outbox, RegistrationCancelled(registration_id="x", event_slug="expo"))
    assert states(db) == {"a": "confirmed", "b": "waitlisted", "c": "waitlisted", "x": "cancelled",
                          "y": "confirmed", "z": "confirmed", "w": "waitlisted"}
    assert positions(db, "b", "c", "w") == [1, 2, 1]
    with transaction(db) as session:                   # conf grows: expo's pool stays as it was
        seats.apply_rules(session, outbox, "conf", rules(2), revision=2)
    assert seats_of(db, "conf")["pools"]["event"] == {"capacity": 2, "used": 2, "left": 0}
    assert seats_of(db, "expo")["pools"]["event"] == {"capacity": 2, "used": 2, "left": 0}
    cancel(db, outbox, "a")                            # conf's c moves up, nobody of expo's
    assert seats_of(db, "expo")["pools"]["event"]["used"] == 2
    assert states(db)["c"] == "confirmed" and states(db)["w"] == "waitlisted"


def test_a_batch_decided_together_keeps_its_arrival_order(db, outbox):
    with transaction(db) as session:
        seats.apply_rules(session, outbox, "conf", rules(1), revision=1)
        seats.reserve_many(session, outbox, [(request(name), None) for name in ("a", "b", "c", "b")])
    assert decisions(outbox) == [("a", "confirmed", None), ("b", "waitlisted", 1),
                                 ("c", "waitlisted", 2)]     # b asked twice: decided once
    assert positions(db, "b", "c") == [1, 2]
    cancel(db, outbox, "a")
    assert states(db) == {"a": "cancelled", "b": "confirmed", "c": "waitlisted"}
    assert positions(db, "c") == [1]


def test_each_category_has_a_waiting_line_of_its_own(db, outbox):
    with transaction(db) as session:
        seats.apply_rules(session, outbox, "conf", rules(10, local=1, abroad=1), revision=1)
    for name, category in (("a", "local"), ("x", "abroad"), ("b", "local"), ("y", "abroad"),
                           ("c", "local")):
        with transaction(db) as session:
            seats.reserve(session, outbox, request(name, category=category))
    with transaction(db) as session:
        seats.reserve_many(session, outbox, [(request("d", category="local"), None),
                                             (request("z", category="abroad"), None)])
    assert [(name, position) for name, outcome, position in decisions(outbox)
            if outcome == "waitlisted"] == [("b", 1), ("y", 1), ("c", 2), ("d", 3), ("z", 2)]
    assert positions(db, "b", "c", "d", "y", "z") == [1, 2, 3, 1, 2]


def test_only_a_rejection_gives_the_reason_full(db, outbox):
    describe(db, outbox, capacity=1, waitlist=False)
    ask(db, outbox, "a")
    ask(db, outbox, "b")
    assert [(d.registration_id, d.outcome, d.reason) for d in outbox.of_type(SeatDecided)] == [
        ("a", "confirmed", None), ("b", "rejected", "full")]
    describe(db, outbox, revision=2, capacity=1, waitlist=True)
    ask(db, outbox, "c")
    assert [(d.outcome, d.reason) for d in outbox.of_type(SeatDecided)][-1] == ("waitlisted", None)


def test_a_later_revision_can_turn_the_waiting_list_off(db, outbox):
    describe(db, outbox, capacity=1, waitlist=True)
    describe(db, outbox, revision=2, capacity=1, waitlist=False)
    ask(db, outbox, "a")
    ask(db, outbox, "b")
    assert decisions(outbox) == [("a", "confirmed", None), ("b", "rejected", None)]


def test_a_revision_is_taken_once(db, outbox):
    describe(db, outbox, capacity=1)
    describe(db, outbox, capacity=5)           # the same revision again: the first copy stands
    assert seats_of(db, "conf")["pools"]["event"]["capacity"] == 1


def test_a_request_bringing_a_raise_seats_the_waiting_before_itself(db, outbox):
    describe(db, outbox, capacity=1)
    ask(db, outbox, "a")
    ask(db, outbox, "b")
    ask_with_rules(db, outbox, "c", revision=2, capacity=2)
    assert [(d.registration_id, d.outcome, d.promoted) for d in outbox.of_type(SeatDecided)][2:] == [
        ("b", "confirmed", True), ("c", "waitlisted", False)]


def test_a_batch_takes_the_newest_rules_any_of_its_requests_brings(db, outbox):
    older, newer = (SeatRules.of(EventSpec.model_validate_json(json.dumps(
        event_document(slug="conf", capacity=capacity)))) for capacity in (1, 2))
    with transaction(db) as session:
        seats.reserve_many(session, outbox, [
            (request("a", sessions=["day-1"], event_revision=1, seat_rules=older), None),
            (request("b", sessions=["day-1"], event_revision=2, seat_rules=newer), None),
            (request("c", sessions=["day-1"], event_revision=1, seat_rules=older), None)])
    assert decisions(outbox) == [("a", "confirmed", None), ("b", "confirmed", None),
                                 ("c", "waitlisted", 1)]
    assert seats_of(db, "conf")["pools"]["event"]["capacity"] == 2


def test_an_event_not_described_yet_is_refused_and_nothing_is_kept(db, outbox):
    with transaction(db) as session:
        seats.apply_rules(session, outbox, "conf", rules(1), revision=1)
    attempts = [lambda s: seats.reserve(s, outbox, request("a", "ghost")),
                lambda s: seats.release(s, outbox, RegistrationCancelled(registration_id="a",
                                                                         event_slug="ghost")),
                lambda s: seats.confirm_hold(s, outbox, RegistrationConfirmed(registration_id="a",
                                                                              event_slug="ghost"))]
    for attempt in attempts:
        with pytest.raises(EventNotKnownYet, match="'ghost' has not been described"):
            with transaction(db) as session:
                attempt(session)
    assert states(db) == {} and outbox.messages == []


def test_a_pool_refuses_seats_beyond_its_capacity_even_if_the_count_above_is_wrong(
        db, outbox, monkeypatch):
    describe(db, outbox, capacity=1)
    ask(db, outbox, "a")
    stale = store.pools
    monkeypatch.setattr(store, "pools", lambda session, slug: {
        key: replace(pool, used=0) for key, pool in stale(session, slug).items()})
    with pytest.raises(store.SeatInvariantBroken, match="pool event of conf cannot give 1 more seats"):
        ask(db, outbox, "b")
    monkeypatch.undo()
    assert states(db) == {"a": "confirmed"}
    assert seats_of(db, "conf")["pools"]["event"]["used"] == 1


# -- holds and the decisions that follow ------------------------------------------------
def test_a_hold_lasts_the_confirmation_window_from_the_decision(db, outbox):
    describe(db, outbox, capacity=1, confirmation_window="PT30S")
    before = seats.utcnow()
    ask(db, outbox, "a")
    after = seats.utcnow()
    [decision] = outbox.of_type(SeatDecided)
    assert decision.outcome == "held"
    assert before + timedelta(seconds=30) <= decision.hold_expires_at <= after + timedelta(seconds=30)
    with transaction(db) as session:
        assert session.execute(select(reservations.c.hold_expires_at)).scalar_one() == \
            decision.hold_expires_at


def test_every_later_decision_carries_the_next_sequence_number(db, outbox):
    describe(db, outbox, capacity=1, confirmation_window="PT30S")
    ask(db, outbox, "a")
    ask(db, outbox, "b")
    before = seats.utcnow()
    cancel(db, outbox, "a")
    with transaction(db) as session:
        seats.confirm_hold(session, outbox, RegistrationConfirmed(registration_id="b",
                                                                 event_slug="conf"))
    assert [(d.outcome, d.decision_seq, d.promoted) for d in outbox.of_type(SeatDecided)
            if d.registration_id == "b"] == [("waitlisted", 1, False), ("held", 2, True),
                                             ("confirmed", 3, False)]
    with transaction(db) as session:
        row = session.execute(select(reservations).where(
            reservations.c.registration_id == "b")).one()
    assert (row.state, row.decision_seq, row.hold_expires_at) == ("confirmed", 3, None)
    assert row.updated_at >= before


def test_expiring_a_registration_capacity_never_saw_does_nothing(db, outbox):
    describe(db, outbox, capacity=1)
    with transaction(db) as session:
        assert seats.expire_hold(session, outbox, "nobody", seats.utcnow()) is False
    assert outbox.messages == []


def test_the_timer_takes_at_most_a_hundred_holds_at_a_time(db, outbox):
    describe(db, outbox, capacity=200, confirmation_window="PT30S")
    now = seats.utcnow()
    with transaction(db) as session:
        seats.reserve_many(session, outbox, [(request(f"r{n:03}"), None) for n in range(101)])
        session.execute(update(reservations).values(hold_expires_at=now - timedelta(minutes=1)))
        assert len(seats.due_holds(session, now)) == 100


def test_a_pool_added_later_never_counts_below_zero(db, outbox):
    """A category pool that appears in a later revision starts at zero: giving
    back a seat taken before it existed leaves it at zero, not at -1 (which
    would let it give one seat too many)."""
    describe(db, outbox, capacity=10)
    ask(db, outbox, "a", category="local")
    describe(db, outbox, revision=2, capacity=10, categories=[{"slug": "local", "capacity": 1}])
    cancel(db, outbox, "a")
    assert seats_of(db, "conf")["pools"]["category:local"] == {"capacity": 1, "used": 0, "left": 1}
    ask(db, outbox, "b", category="local")
    ask(db, outbox, "c", category="local")
    assert decisions(outbox)[-2:] == [("b", "confirmed", None), ("c", "waitlisted", 1)]
