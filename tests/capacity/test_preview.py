"""preview_rules: what a change of seat rules would seat, answered by the
change itself in a transaction rolled back, so that it changes nothing and
the real change then seats exactly as many."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import select

from services.capacity import seats
from services.capacity.models import outbox as outbox_table
from services.capacity.models import reservations, seat_events, seat_pools, session_waits
from services.capacity.service import CapacityService
from shared.contracts import (
    EventPublished,
    RegistrationCancelled,
    RegistrationRequested,
    SeatDecided,
    SeatRules,
    SessionRequested,
    envelope,
)
from shared.db import transaction
from shared.errors import Invalid, NotFound
from shared.schemas import EventSpec
from tests.conftest import RecordingOutbox
from tests.support.contention import postgres_service_db
from tests.support.documents import event_document

TALK = {"slug": "talk", "title": {"en": "Talk"}, "capacity": 1,
        "starts_at": "2027-03-18T10:00:00+03:00", "ends_at": "2027-03-18T11:00:00+03:00"}
DAY_1 = {"slug": "day-1", "title": {"en": "Day 1"},
         "starts_at": "2027-03-18T10:00:00+03:00", "ends_at": "2027-03-18T18:00:00+03:00"}


@pytest.fixture
def slug():
    return f"preview-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def service(db, outbox):
    return worker_factory(CapacityService, db=db, outbox=outbox)


def spec(slug, **fields) -> EventSpec:
    return EventSpec.model_validate_json(json.dumps(event_document(slug=slug, **fields)))


def publish(service, slug, revision, **fields) -> EventSpec:
    event = spec(slug, **fields)
    service.on_event_published(envelope(EventPublished(event=event, revision=revision)))
    return event


def rules(slug, **fields) -> dict:
    """The seat rules of the event as ``fields`` describe it, as the RPC takes them."""
    return SeatRules.of(spec(slug, **fields)).model_dump(mode="json")


def register(service, slug, names, category=None, sessions=("day-1",)):
    service.on_registration_requested([envelope(RegistrationRequested(
        registration_id=name, event_slug=slug, category=category, sessions=list(sessions),
        requested_at=datetime.now(UTC))) for name in names])


def snapshot(db) -> dict:
    """Every row capacity keeps (the outbox included)."""
    with transaction(db) as session:
        return {table.name: sorted(tuple(str(v) for v in row) for row in session.execute(select(table)))
                for table in (seat_events, seat_pools, reservations, session_waits, outbox_table)}


def promoted(outbox, since=0) -> list[str]:
    """Registrations seated off a line by what the outbox recorded after ``since``."""
    return [m.registration_id for m in outbox.messages[since:] if isinstance(m, SeatDecided)
            and (m.promoted or (m.session_change is not None and m.session_change.reason == "freed"))]


def full_with_five_waiting(service, slug, **fields):
    publish(service, slug, 1, capacity=5, **fields)
    register(service, slug, [f"seated-{n}" for n in range(5)])
    register(service, slug, [f"waiting-{n}" for n in range(5)])


def test_raising_the_capacity_previews_who_it_seats_and_changes_nothing(db, outbox, service, slug):
    full_with_five_waiting(service, slug)
    before, words = snapshot(db), len(outbox.messages)

    preview = service.preview_rules(slug, rules(slug, capacity=8))

    assert preview == {"promoted": 3, "per_pool": {"event": 3, "session:day-1": 3}}
    assert snapshot(db) == before                     # seats, lines, revision, outbox rows
    assert len(outbox.messages) == words              # the service's own outbox was never used
    assert service.event_seats(slug)["pools"]["event"]["used"] == 5
    with transaction(db) as session:
        assert seats.waitlist_position(session, "waiting-0") == 1


def test_the_real_change_then_seats_as_many_as_the_preview_said(db, outbox, service, slug):
    full_with_five_waiting(service, slug)
    preview = service.preview_rules(slug, rules(slug, capacity=8))
    words = len(outbox.messages)

    publish(service, slug, 2, capacity=8)

    assert promoted(outbox, words) == ["waiting-0", "waiting-1", "waiting-2"]
    assert preview["promoted"] == 3
    assert service.event_seats(slug)["pools"]["event"]["used"] == 5 + preview["per_pool"]["event"]


def test_a_preview_is_repeatable(db, outbox, service, slug):
    full_with_five_waiting(service, slug)
    raise_by_3 = rules(slug, capacity=8)
    assert service.preview_rules(slug, raise_by_3) == service.preview_rules(slug, raise_by_3)


def test_lowering_the_capacity_previews_nobody(db, outbox, service, slug):
    full_with_five_waiting(service, slug)
    before = snapshot(db)
    assert service.preview_rules(slug, rules(slug, capacity=3)) == {
        "promoted": 0, "per_pool": {"event": 0, "session:day-1": 0}}
    assert service.preview_rules(slug, rules(slug, capacity=5, waitlist=False))["promoted"] == 0
    assert snapshot(db) == before


def test_a_more_than_ample_raise_seats_everyone_waiting_and_no_more(db, outbox, service, slug):
    full_with_five_waiting(service, slug)
    assert service.preview_rules(slug, rules(slug, capacity=None))["promoted"] == 5


def test_raising_a_category_seats_its_line_alone(db, outbox, service, slug):
    categories = [{"slug": "local", "capacity": 1}, {"slug": "guest", "capacity": 1}]
    publish(service, slug, 1, capacity=10, categories=categories)
    register(service, slug, ["local-1", "local-2", "local-3"], category="local")
    register(service, slug, ["guest-1", "guest-2"], category="guest")
    before, words = snapshot(db), len(outbox.messages)
    raised = [{"slug": "local", "capacity": 3}, {"slug": "guest", "capacity": 1}]

    preview = service.preview_rules(slug, rules(slug, capacity=10, categories=raised))

    assert preview == {"promoted": 2, "per_pool": {"category:guest": 0, "category:local": 2,
                                                   "event": 2, "session:day-1": 2}}
    assert snapshot(db) == before
    publish(service, slug, 2, capacity=10, categories=raised)
    assert promoted(outbox, words) == ["local-2", "local-3"]


def test_a_raise_held_back_by_another_pool_previews_only_who_fits(db, outbox, service, slug):
    categories = [{"slug": "local", "capacity": 1}]
    publish(service, slug, 1, capacity=2, categories=categories)
    register(service, slug, ["local-1", "local-2", "local-3"], category="local")
    register(service, slug, ["other-1", "other-2"])
    preview = service.preview_rules(slug, rules(slug, capacity=2, categories=[
        {"slug": "local", "capacity": 5}]))
    assert preview["promoted"] == 0                   # the event itself is full
    preview = service.preview_rules(slug, rules(slug, capacity=4, categories=[
        {"slug": "local", "capacity": 5}]))
    # First come, first served across the lines: local-2 and local-3 came first.
    assert preview == {"promoted": 2, "per_pool": {"category:local": 2, "event": 2,
                                                   "session:day-1": 2}}


def test_raising_a_session_seats_its_line(db, outbox, service, slug):
    publish(service, slug, 1, capacity=10, sessions=[DAY_1, TALK])
    register(service, slug, ["a", "b", "c"])
    for name in ("a", "b", "c"):
        service.on_session_requested(envelope(SessionRequested(
            registration_id=name, event_slug=slug, session="talk")))
    before, words = snapshot(db), len(outbox.messages)
    wider = [DAY_1, {**TALK, "capacity": 2}]

    preview = service.preview_rules(slug, rules(slug, capacity=10, sessions=wider))

    assert preview == {"promoted": 1, "per_pool": {"event": 0, "session:day-1": 0,
                                                   "session:talk": 1}}
    assert snapshot(db) == before
    publish(service, slug, 2, capacity=10, sessions=wider)
    assert promoted(outbox, words) == ["b"]


def test_a_preview_starts_no_hold(db, outbox, service, slug):
    full_with_five_waiting(service, slug, confirmation_window="PT1H")
    preview = service.preview_rules(slug, rules(slug, capacity=6, confirmation_window="PT1H"))
    assert preview["promoted"] == 1
    with transaction(db) as session:
        assert seats.due_holds(session, datetime.max.replace(tzinfo=UTC) - seats.HOLD_GRACE * 2) == [
            f"seated-{n}" for n in range(5)]           # only the holds that were there before


def test_a_cancellation_then_a_preview_counts_the_seat_already_freed(db, outbox, service, slug):
    full_with_five_waiting(service, slug)
    service.on_registration_cancelled(envelope(RegistrationCancelled(
        registration_id="seated-0", event_slug=slug)))        # waiting-0 takes the seat
    assert service.preview_rules(slug, rules(slug, capacity=6))["promoted"] == 1


def test_an_unknown_event_is_not_found(db, service, slug):
    with pytest.raises(NotFound):
        service.preview_rules(slug, rules(slug, capacity=8))
    assert snapshot(db)["seat_events"] == []


def test_rules_that_are_not_valid_are_refused(db, outbox, service, slug):
    full_with_five_waiting(service, slug)
    good = rules(slug, capacity=8)
    for bad in ({**good, "capacity": -1}, {**good, "confirmation_window": "an hour"},
                {**good, "seats": 3}, {"capacity": 8}):
        with pytest.raises(Invalid):
            service.preview_rules(slug, bad)


def test_on_postgresql_too(slug):
    with postgres_service_db("capacity") as (_engine, db):
        outbox = RecordingOutbox(outbox_table)
        service = worker_factory(CapacityService, db=db, outbox=outbox)
        full_with_five_waiting(service, slug, categories=[{"slug": "local", "capacity": 10}])
        before, words = snapshot(db), len(outbox.messages)

        preview = service.preview_rules(slug, rules(slug, capacity=8, categories=[
            {"slug": "local", "capacity": 10}]))

        assert preview == {"promoted": 3, "per_pool": {"category:local": 0, "event": 3,
                                                       "session:day-1": 3}}
        assert snapshot(db) == before
        publish(service, slug, 2, capacity=8, categories=[{"slug": "local", "capacity": 10}])
        assert promoted(outbox, words) == ["waiting-0", "waiting-1", "waiting-2"]
