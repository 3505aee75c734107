from datetime import datetime, timezone

import pytest

from shared.contracts import (RegistrationRequested, SeatDecided, UnknownContract, envelope,
                              open_envelope)


def test_an_envelope_round_trips_with_a_stable_id():
    message = RegistrationRequested(registration_id="r1", event_slug="e", category=None,
                                    sessions=["day-1"], requested_at=datetime.now(timezone.utc))
    body = envelope(message, correlation_id="c1")
    assert body["type"] == "registration.requested" and body["version"] == 1
    message_id, opened = open_envelope(body, RegistrationRequested)
    assert message_id == body["message_id"] and opened == message


def test_a_message_of_another_type_or_version_is_refused():
    body = envelope(SeatDecided(registration_id="r", event_slug="e", outcome="confirmed",
                                decision_seq=1))
    with pytest.raises(UnknownContract):
        open_envelope(body, RegistrationRequested)
    with pytest.raises(UnknownContract):
        open_envelope({**body, "version": 2}, SeatDecided)
    with pytest.raises(UnknownContract):
        open_envelope({"no": "envelope"}, SeatDecided)
