"""Composing messages: every kind renders, attendee text is escaped, times and
calendars are right."""
import email
import email.policy
import json
from datetime import UTC, datetime

import pytest
from icalendar import Calendar

from services.notification import calendar, messages
from services.notification.mailer import SMTP_POLICY, Mailer, Server
from shared.contracts import Attendee, RegistrationStatusChanged
from shared.dates import in_zones
from shared.schemas import EventSpec
from tests.support.documents import event_document

EVENT = EventSpec.model_validate_json(json.dumps(event_document(
    slug="conf", venue="Istanbul", sessions=[
        {"slug": "day-1", "title": {"en": "Day 1"}, "starts_at": "2027-03-18T10:00:00+03:00",
         "ends_at": "2027-03-18T18:00:00+03:00"},
        {"slug": "day-2", "title": {"en": "Day 2"}, "starts_at": "2027-03-19T10:00:00+03:00",
         "ends_at": "2027-03-19T18:00:00+03:00"}])))


def change(status, cause=None, name="Amira", language="en", **fields):
    return RegistrationStatusChanged(
        registration_id="r1", event_slug="conf", status=status, previous_status="pending",
        status_seq=1, cause=cause or status,
        attendee=Attendee(name=name, email="a@example.org", language=language,
                          timezone="America/New_York", country=None, category=None,
                          sessions=["day-1"]),
        links={"self": "s", "cancel": "c", "confirm": "f", "calendar": "k",
               "manage": "https://events.example.org/registrations/r1?token=t"}, **fields)


HOLD = {"hold_expires_at": datetime(2027, 3, 1, 12, tzinfo=UTC)}
CASES = [("confirmed", None, {}), ("held", None, HOLD), ("waitlisted", None, {"waitlist_position": 4}),
         ("confirmed", "promoted", {}), ("held", "promoted", HOLD), ("rejected", None, {}),
         ("cancelled", None, {}), ("expired", None, {})]


@pytest.mark.parametrize("status, cause, fields", CASES)
def test_every_status_message_renders_text_and_html(status, cause, fields):
    kind, draft = messages.compose_status(EVENT, 1, change(status, cause, **fields), "events@x.org")
    assert draft.subject and "\n" not in draft.subject
    assert "Dear Amira" in draft.text and "Dear <bdi>Amira</bdi>" in draft.html
    assert draft.html.lstrip().startswith("<!DOCTYPE html>")
    assert 'dir="ltr"' in draft.html


def test_a_registration_announced_pending_is_told_it_was_received():
    # Registration announces "pending" only when the decision takes long.
    kind, draft = messages.compose_status(EVENT, 1, change("pending", "received"), "x@y")
    assert kind == "received" and draft.subject.startswith("We have received")
    assert draft.attachments == []


def test_waitlist_position_and_hold_deadline_are_told():
    _, waitlisted = messages.compose_status(EVENT, 1, change("waitlisted", waitlist_position=4), "x@y")
    assert "position 4" in waitlisted.text
    _, hold = messages.compose_status(EVENT, 1, change("held", **HOLD), "x@y")
    assert "15:00" in hold.text or "3:00" in hold.text          # Istanbul, UTC+3
    assert "7:00" in hold.text                                    # New York, UTC-5
    assert "https://events.example.org/registrations/r1?token=t" in hold.text


def test_attendee_text_is_escaped_in_html_and_never_run_as_a_template():
    name = "<script>alert(1)</script> {{ 7*7 }}"
    _, draft = messages.compose_status(EVENT, 1, change("confirmed", name=name), "x@y")
    assert "<script>" not in draft.html and "&lt;script&gt;" in draft.html
    assert "{{ 7*7 }}" in draft.text and "49" not in draft.text


def test_the_join_link_goes_only_to_attendees_with_a_confirmed_seat():
    _, confirmed = messages.compose_status(EVENT, 1, change("confirmed"), "x@y")
    _, waitlisted = messages.compose_status(EVENT, 1, change("waitlisted", waitlist_position=1), "x@y")
    assert "meet.example.org" in confirmed.text
    assert "meet.example.org" not in waitlisted.text + waitlisted.html


def test_rtl_languages_set_the_direction():
    _, draft = messages.compose_status(EVENT, 1, change("confirmed", language="ar"), "x@y")
    assert 'dir="rtl"' in draft.html and 'lang="ar"' in draft.html


def test_a_confirmation_carries_a_calendar_of_the_chosen_sessions():
    _, draft = messages.compose_status(EVENT, 3, change("confirmed"), "x@y")
    [attachment] = draft.attachments
    parsed = Calendar.from_ical(attachment["content"])
    [vevent] = parsed.walk("VEVENT")
    assert vevent["UID"] == "r1.day-1@event-registration"
    assert vevent.decoded("DTSTART") == datetime(2027, 3, 18, 7, 0, tzinfo=UTC)
    assert vevent["SEQUENCE"] == 3


def test_times_follow_daylight_saving():
    # New York moves to summer time on 2027-03-14; Istanbul has none.
    before = in_zones(datetime(2027, 3, 13, 12, tzinfo=UTC), "Europe/Istanbul",
                        "America/New_York", "en")
    after = in_zones(datetime(2027, 3, 15, 12, tzinfo=UTC), "Europe/Istanbul",
                       "America/New_York", "en")
    assert "7:00" in before[1] and "8:00" in after[1]
    assert "3:00" in before[0] and "3:00" in after[0]


def test_a_name_cannot_inject_headers():
    mailer = Mailer(Server("localhost", 1), "events@example.org")
    content = {"subject": "Hi", "text": "t", "html": "<p>h</p>"}
    with pytest.raises(ValueError):
        mailer.build("Eve\r\nBcc: victim@example.org", "eve@example.org", content, "k")
    with pytest.raises(ValueError):
        mailer.build("Eve", "eve@example.org", {**content, "subject": "Hi\nBcc: x@example.org"}, "k")
    built = mailer.build('Eve "the" <Attendee>', "eve@example.org", content, "status.r1.1")
    message = email.message_from_bytes(built.as_bytes(), policy=email.policy.default)
    assert message["Message-ID"] == "<status.r1.1@example.org>"
    assert message["To"].addresses[0].addr_spec == "eve@example.org"
    assert message["To"].addresses[0].display_name == 'Eve "the" <Attendee>'


def test_non_ascii_headers_and_bodies_survive_the_round_trip():
    mailer = Mailer(Server("localhost", 1), "Events <events@example.org>")
    content = {"subject": "تأكيد مقعدك: Conférence", "text": "مرحبا أميرة", "html": "<p>é</p>",
               "attachments": [{"filename": "invite.ics", "mimetype": "text/calendar",
                                "content": "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"}]}
    built = mailer.build("أميرة Çelik", "amira@example.org", content, "status.r1.1")
    wire = built.as_bytes(policy=SMTP_POLICY)
    assert all(line.endswith(b"\r") and len(line) <= 999 for line in wire.split(b"\n")[:-1])
    message = email.message_from_bytes(wire, policy=email.policy.default)
    assert message["Subject"] == content["subject"]
    assert message["To"].addresses[0].display_name == "أميرة Çelik"
    assert message["From"].addresses[0].addr_spec == "events@example.org"
    assert mailer.envelope_sender == "events@example.org"
    assert message.get_body(("plain",)).get_content().strip() == "مرحبا أميرة"
    assert message.get_body(("html",)).get_content().strip() == "<p>é</p>"
    [invite] = list(message.iter_attachments())
    assert invite.get_filename() == "invite.ics" and "VCALENDAR" in invite.get_content()


def test_localized_titles_fall_back_to_the_default_language():
    assert calendar.localized({"en": "E", "ar": "ع"}, "ar", "en") == "ع"
    assert calendar.localized({"en": "E"}, "fr", "en") == "E"
