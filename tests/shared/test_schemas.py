import pytest
from pydantic import ValidationError

from shared.schemas import EventSpec, RegistrationRequest, parse_duration
from tests.support.documents import event_document


def test_a_complete_event_is_accepted():
    spec = EventSpec.model_validate_json(__import__("json").dumps(event_document(
        confirmation_window="PT48H",
        categories=[{"slug": "local", "capacity": 150}, {"slug": "international", "capacity": 100}],
        questions=[{"slug": "questions_for_speakers", "label": {"en": "Questions"}}])))
    assert spec.default_language == "en"
    assert spec.sessions[0].starts_at.utcoffset().total_seconds() == 3 * 3600


@pytest.mark.parametrize("change, field", [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"languages": ["en", "xx"]}, "languages"),
    ({"format": "virtual"}, "format"),
    ({"capacity": -1}, "capacity"),
    ({"capacity": "300"}, "capacity"),                      # strict: no string numbers
    ({"reminders": ["tomorrow"]}, "reminders"),
    ({"reminders": ["PT0S"]}, "reminders"),
    ({"confirmation_window": "48h"}, "confirmation_window"),
    ({"slug": "Not A Slug"}, "slug"),
    ({"sessions": []}, "sessions"),
    ({"join_url": "javascript:alert(1)"}, "join_url"),
    ({"unknown_field": 1}, "unknown_field"),
    ({"title": {"en": "a\r\nb"}}, "title"),
])
def test_invalid_events_name_the_offending_field(change, field):
    with pytest.raises(ValidationError) as error:
        EventSpec.model_validate_json(__import__("json").dumps(event_document(**change)))
    assert any(field in ".".join(map(str, e["loc"])) or field in e["msg"] for e in error.value.errors())


def test_sessions_need_offsets_and_order():
    naive = event_document(sessions=[{"slug": "a", "title": {"en": "A"},
                                      "starts_at": "2027-01-01T10:00:00", "ends_at": "2027-01-01T11:00:00"}])
    backwards = event_document(sessions=[{"slug": "a", "title": {"en": "A"},
                                          "starts_at": "2027-01-01T10:00:00Z", "ends_at": "2027-01-01T09:00:00Z"}])
    # Year 1 would overflow the reminder and calendar arithmetic later on.
    ancient = event_document(sessions=[{"slug": "a", "title": {"en": "A"},
                                        "starts_at": "0001-01-01T00:00:00+03:00",
                                        "ends_at": "0001-01-01T01:00:00+03:00"}])
    for document in (naive, backwards, ancient):
        with pytest.raises(ValidationError):
            EventSpec.model_validate_json(__import__("json").dumps(document))


def test_the_default_language_needs_a_title():
    with pytest.raises(ValidationError):
        EventSpec.model_validate_json(__import__("json").dumps(event_document(languages=["ar", "en"],
                                                                            title={"en": "Only English"})))


def test_registration_normalises_email_and_country():
    request = RegistrationRequest.model_validate_json(
        '{"name": " Ali ", "email": "Ali@EXAMPLE.org", "country": "tr"}')
    assert request.name == "Ali"
    assert request.email == "Ali@example.org"
    assert request.country == "TR"


@pytest.mark.parametrize("body", [
    '{"name": "A", "email": "not-an-address"}',
    '{"name": "", "email": "a@example.org"}',
    '{"name": "A\\r\\nBcc: victim@example.org", "email": "a@example.org"}',
    '{"name": "A", "email": "a@example.org", "timezone": "Nowhere/City"}',
    '{"name": "A", "email": "a@example.org", "language": "de"}',
    '{"name": "A", "email": "a@example.org", "country": "XX"}',
    '{"name": 5, "email": "a@example.org"}',
    '{"name": "A", "email": "a@example.org", "sessions": "day-1"}',
    '{"name": "A", "email": "a@example.org", "extra": true}',
])
def test_bad_registrations_are_refused(body):
    with pytest.raises(ValidationError):
        RegistrationRequest.model_validate_json(body)


def test_durations():
    assert parse_duration("P7D").days == 7
    assert parse_duration("PT1H30M").total_seconds() == 5400
    with pytest.raises(ValueError):
        parse_duration("7 days")
