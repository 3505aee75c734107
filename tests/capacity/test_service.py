"""The capacity service's entrypoints, in process: each message handler applies
its message once, whatever the deliveries, and the seat gauges report what the
database holds."""
import json
import uuid
from datetime import UTC, datetime

import pytest
from nameko.testing.services import worker_factory
from prometheus_client import REGISTRY
from sqlalchemy import select

from services.capacity.models import reservations
from services.capacity.service import CapacityService
from shared.contracts import (
    EventPublished,
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationRequested,
    SeatDecided,
    envelope,
)
from shared.db import transaction
from shared.schemas import EventSpec
from tests.support.documents import event_document


@pytest.fixture
def slug():
    """A slug of its own: the gauges live in the process-wide registry."""
    return f"svc-{uuid.uuid4().hex[:8]}"


def published(slug, revision=1, **fields):
    spec = EventSpec.model_validate_json(json.dumps(event_document(slug=slug, **fields)))
    return envelope(EventPublished(event=spec, revision=revision))


def requested(slug, registration_id):
    return envelope(RegistrationRequested(registration_id=registration_id, event_slug=slug,
                                          category=None, sessions=["day-1"],
                                          requested_at=datetime.now(UTC)))


def states(db):
    with transaction(db) as session:
        return dict(session.execute(select(reservations.c.registration_id, reservations.c.state)).all())


def later_decisions(outbox):
    return [(d.registration_id, d.outcome, d.decision_seq) for d in outbox.of_type(SeatDecided)
            if d.decision_seq > 1]


def gauge(name, **labels):
    return REGISTRY.get_sample_value(name, labels)


def test_the_handlers_apply_each_message_once(db, outbox, slug):
    service = worker_factory(CapacityService, db=db, outbox=outbox)
    event = published(slug, capacity=1, confirmation_window="PT1H")
    service.on_event_published(event)
    service.on_event_published(event)                     # delivered twice
    assert service.event_seats(slug)["pools"]["event"] == {"capacity": 1, "used": 0, "left": 1}
    service.on_registration_requested([requested(slug, "a"), requested(slug, "b")])
    assert states(db) == {"a": "held", "b": "waitlisted"}

    cancelled = envelope(RegistrationCancelled(registration_id="a", event_slug=slug))
    service.on_registration_cancelled(cancelled)
    service.on_registration_cancelled(cancelled)
    confirmed = envelope(RegistrationConfirmed(registration_id="b", event_slug=slug))
    service.on_registration_confirmed(confirmed)
    service.on_registration_confirmed(confirmed)
    assert states(db) == {"a": "cancelled", "b": "confirmed"}
    assert later_decisions(outbox) == [("b", "held", 2), ("b", "confirmed", 3)]
    assert service.event_seats(slug)["pools"]["event"]["used"] == 1


def test_a_message_naming_another_event_changes_only_that_event(db, outbox, slug):
    service = worker_factory(CapacityService, db=db, outbox=outbox)
    other = f"{slug}-other"
    service.on_event_published(published(slug, capacity=1))
    service.on_event_published(published(other, capacity=3))
    service.on_event_published(published(slug, revision=2, capacity=2))
    assert service.event_seats(slug)["pools"]["event"]["capacity"] == 2
    assert service.event_seats(other)["pools"]["event"]["capacity"] == 3


def test_the_gauges_report_each_pool_and_an_empty_waiting_list_as_zero(db, outbox, slug):
    service = worker_factory(CapacityService, db=db, outbox=outbox)
    sessions = [{"slug": "day-1", "title": {"en": "Day 1"}, "capacity": 5,
                 "starts_at": "2027-03-18T10:00:00+03:00", "ends_at": "2027-03-18T18:00:00+03:00"}]
    service.on_event_published(published(slug, capacity=3, sessions=sessions))
    service.on_registration_requested([requested(slug, "a")])
    service.observe_seats()
    assert {pool: (gauge("evreg_seats_capacity", event=slug, pool=pool),
                   gauge("evreg_seats_used", event=slug, pool=pool))
            for pool in ("event", "session:day-1")} == {"event": (3, 1), "session:day-1": (5, 1)}
    assert gauge("evreg_waitlist_length", event=slug) == 0
