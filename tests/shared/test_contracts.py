import json
from datetime import UTC, datetime

import pytest

from shared.contracts import (
    RegistrationRequested,
    RegistrationStatusChanged,
    SeatDecided,
    SeatRules,
    UnknownContract,
    envelope,
    open_envelope,
)
from shared.schemas import EventSpec
from tests.support.documents import event_document


def test_an_envelope_round_trips_with_a_stable_id():
    message = RegistrationRequested(registration_id="r1", event_slug="e", category=None,
                                    sessions=["day-1"], requested_at=datetime.now(UTC))
    body = envelope(message, correlation_id="c1")
    assert body["type"] == "registration.requested" and body["version"] == 3
    message_id, opened = open_envelope(body, RegistrationRequested)
    assert message_id == body["message_id"] and opened == message


def test_a_message_of_another_type_or_version_is_refused():
    body = envelope(SeatDecided(registration_id="r", event_slug="e", outcome="confirmed",
                                decision_seq=1))
    with pytest.raises(UnknownContract):
        open_envelope(body, RegistrationRequested)
    with pytest.raises(UnknownContract):
        open_envelope({**body, "version": 3}, SeatDecided)
    with pytest.raises(UnknownContract):
        open_envelope({"no": "envelope"}, SeatDecided)


def test_a_newer_contract_still_reads_the_versions_it_grew_from():
    v1 = {"registration_id": "r1", "event_slug": "e", "category": None, "sessions": [],
          "requested_at": "2026-11-22T10:00:00+00:00"}
    body = {"message_id": "m1", "type": "registration.requested", "version": 1, "data": v1}
    _, opened = open_envelope(body, RegistrationRequested)
    assert opened.seat_rules is None and opened.event_revision is None
    assert opened.follows is False         # v1 and v2 requests chose their sessions
    with pytest.raises(UnknownContract):
        open_envelope({**body, "version": 4}, RegistrationRequested)     # from the future
    with pytest.raises(UnknownContract):
        open_envelope({**body, "version": 0}, RegistrationRequested)
    with pytest.raises(ValueError, match="go together"):      # rules without their revision
        RegistrationRequested(**{**v1, "seat_rules": SeatRules(
            capacity=1, waitlist=True, confirmation_window=None, categories={}, sessions={})})


def test_seat_rules_are_what_capacity_needs_of_an_event():
    document = event_document(
        capacity=250, confirmation_window="PT2H",
        categories=[{"slug": "local", "capacity": 150}, {"slug": "international", "capacity": 100}],
        sessions=[{**event_document()["sessions"][0], "capacity": 200}])
    event = EventSpec.model_validate_json(json.dumps(document))
    rules = SeatRules.of(event)
    assert rules.model_dump() == {
        "capacity": 250, "waitlist": True, "confirmation_window": "PT2H",
        "categories": {"local": 150, "international": 100}, "sessions": {"day-1": 200},
        "cancelled_sessions": []}


def test_seat_rules_name_the_cancelled_sessions():
    day = event_document()["sessions"][0]
    document = event_document(sessions=[day, {**day, "slug": "day-2", "cancelled": True}])
    rules = SeatRules.of(EventSpec.model_validate_json(json.dumps(document)))
    assert rules.sessions == {"day-1": None, "day-2": None}
    assert rules.cancelled_sessions == ["day-2"]


def test_a_seat_decision_of_v1_reads_as_one_that_leaves_the_sessions_alone():
    v1 = {"registration_id": "r", "event_slug": "e", "outcome": "confirmed", "decision_seq": 2}
    _, opened = open_envelope({"message_id": "m", "type": "seat.decided", "version": 1,
                               "data": v1}, SeatDecided)
    assert opened.sessions is None and opened.sessions_waiting is None
    assert opened.session_change is None


def test_a_status_change_of_v1_reads_with_no_session_news():
    attendee = {"name": "A", "email": "a@example.org", "language": "en", "timezone": None,
                "country": None, "category": None, "sessions": ["day-1"]}
    v1 = {"registration_id": "r", "event_slug": "e", "status": "confirmed",
          "previous_status": "pending", "status_seq": 1, "cause": "confirmed",
          "attendee": attendee, "links": {}}
    _, opened = open_envelope({"message_id": "m", "type": "registration.status_changed",
                               "version": 1, "data": v1}, RegistrationStatusChanged)
    assert opened.session_change is None
    assert opened.attendee.follows is False and opened.attendee.sessions_cancelled == []
