"""Who may still be written to. The one-click unsubscribe stops an
attendee's announcements and reminders at once (queued ones withdrawn,
pending reminders cancelled, none scheduled again) and nothing else; an
address refused for good gets nothing more, in any letter case. Previews
render every kind for the event. A real migrated SQLite database."""
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from services.notification import deliveries as log
from services.notification import messages, recipients
from services.notification.models import deliveries
from shared.db import transaction
from shared.errors import Invalid, NotFound
from tests.notification import test_policy as p
from tests.notification.samples import EVENT, KINDS
from tests.notification.test_policy import DAY_1, announce, event, publish, reminders, seat, send_due, tell


@pytest.fixture(autouse=True)
def fresh_slug():
    """A slug of its own for each test's event (see test_policy.fresh_slug)."""
    p.SLUG = f"conf-{uuid.uuid4().hex[:8]}"


def unsubscribe(db, registration):
    with transaction(db) as session:
        return recipients.unsubscribe(session, registration)


def statuses(db):
    with transaction(db) as session:
        return {row.cause: (row.kind, row.status) for row in session.execute(select(deliveries))}


def test_unsubscribing_withdraws_that_attendees_bulk_mail_only(db):
    publish(db, event())
    seat(db, "r1")
    seat(db, "r2")
    announce(db, "first")
    assert len(reminders(db)) == 4
    result, changed = unsubscribe(db, "r1")
    assert changed and result["event"] == p.SLUG and result["unsubscribed_at"]
    by_cause = statuses(db)
    assert {cause.split(":")[2]: status for cause, (kind, status) in by_cause.items()
            if kind == "announcement"} == {"r1": "withdrawn", "r2": "queued"}
    assert by_cause["status:r1:1"] == ("seat_confirmed", "queued")     # news of the seat still goes
    assert {registration for registration, _, _ in reminders(db)} == {"r2"}
    assert {registration for registration, _, _ in reminders(db, "cancelled")} == {"r1"}
    again, changed = unsubscribe(db, "r1")
    assert not changed and again == result                            # providers may POST twice


def test_after_unsubscribing_no_announcement_or_reminder_is_queued_again(db):
    publish(db, event())
    seat(db, "r1")
    seat(db, "r2")
    unsubscribe(db, "r1")
    assert announce(db, "second") == 1
    tell(db, p.change("confirmed", seq=2, registration="r1", sessions=("day-1", "day-2")))
    assert {registration for registration, _, _ in reminders(db)} == {"r2"}
    assert "status:r1:2" in statuses(db)                            # status messages still go
    send_due(db, DAY_1 - timedelta(minutes=30))
    assert [cause for cause, (kind, _) in statuses(db).items()
            if kind in recipients.BULK_KINDS and ":r1:" in cause + ":"] == []


def test_a_reminder_already_due_is_skipped_for_an_attendee_who_unsubscribed(db):
    publish(db, event())
    seat(db, "r1")
    with transaction(db) as session:       # as if the reminders had been revived meanwhile
        session.execute(recipients.attendees.update().values(unsubscribed_at=log.utcnow()))
    claimed, queued = send_due(db, DAY_1 - timedelta(minutes=30))
    assert (claimed, queued) == (2, 0)


def test_unsubscribing_an_unknown_registration_is_not_found(db):
    with pytest.raises(NotFound):
        unsubscribe(db, "nobody")


def test_an_address_refused_for_good_gets_nothing_more_in_any_letter_case(db):
    publish(db, event())
    seat(db, "r1")
    announce(db, "first")
    with transaction(db) as session:
        recipients.refused(session, "R1@Example.ORG", "550 5.1.1 no such user")
    assert {status for _, status in statuses(db).values()} == {"failed"}
    tell(db, p.change("cancelled", seq=2, registration="r1"))
    with transaction(db) as session:
        row = session.execute(select(deliveries).where(deliveries.c.cause == "status:r1:2")).one()
        reach = recipients.of_event(session, p.SLUG)
    assert (row.status, row.attempts) == ("failed", 0)
    assert row.last_error == "the address is undeliverable: 550 5.1.1 no such user"
    assert reach["r1"]["undeliverable"]["reason"] == "550 5.1.1 no such user"
    assert reach["r1"]["unsubscribed_at"] is None


def test_reach_of_an_event_names_only_those_mail_does_not_reach(db):
    publish(db, event())
    for registration in ("r1", "r2", "r3"):
        seat(db, registration)
    unsubscribe(db, "r2")
    with transaction(db) as session:
        recipients.refused(session, "r3@example.org", "550 gone")
        reach = recipients.of_event(session, p.SLUG)
        one = recipients.of_registration(session, "r1")
    assert sorted(reach) == ["r2", "r3"]
    assert reach["r2"]["undeliverable"] is None and reach["r3"]["unsubscribed_at"] is None
    assert one == {"unsubscribed_at": None, "undeliverable": None}


@pytest.mark.parametrize("kind", KINDS)
def test_a_preview_renders_every_kind_in_every_language_of_the_event(kind):
    for language in EVENT.languages:
        preview = messages.preview(EVENT, 3, kind, language, "https://events.example.org",
                                   "events@example.org")
        assert set(preview) == {"subject", "text", "html"}
        assert preview["subject"] and f'lang="{language}"' in preview["html"]
        assert "Amina Example" in preview["text"]
        if kind in recipients.BULK_KINDS:
            assert "https://events.example.org/unsubscribe/" in preview["html"]


def test_a_preview_of_an_unknown_kind_or_a_language_the_event_lacks_is_refused():
    with pytest.raises(NotFound, match="the kinds are received, seat_confirmed"):
        messages.preview(EVENT, 1, "invoice", "en", "https://x", "events@example.org")
    small = EVENT.model_copy(update={"languages": ["en", "fr"]})
    with pytest.raises(Invalid):
        messages.preview(small, 1, "hold", "ar", "https://x", "events@example.org")
