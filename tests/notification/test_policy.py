"""What attendees are told when: each cause queues its message once, in the
transaction of the change; reminders follow the seat and the sessions; due
reminders, announcements and calendars. A real migrated SQLite database."""
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import select, update

from services.notification import erasure, events, policy, recipients
from services.notification.models import attendees, deliveries, scheduled
from shared.contracts import AnnouncementRequested, Attendee, RegistrationStatusChanged
from shared.db import transaction
from shared.errors import EventNotKnownYet, NotFound
from shared.schemas import EventSpec, parse
from tests.support.documents import event_document

ORGANISER = "events@example.org"
SLUG = "conf"                                        # made fresh for each test
DAY_1 = datetime(2030, 3, 18, 7, tzinfo=UTC)          # 10:00 in Istanbul
DAY_2 = datetime(2030, 3, 19, 7, tzinfo=UTC)
HOLD = datetime(2030, 3, 1, 12, tzinfo=UTC)


def event(day_1=DAY_1, reminders=("P1D", "PT1H"), languages=("en", "ar", "fr")):
    return parse(EventSpec, event_document(
        slug=SLUG, languages=list(languages), reminders=list(reminders), sessions=[
            {"slug": "day-1", "title": {"en": "Day 1"}, "starts_at": day_1.isoformat(),
             "ends_at": (day_1 + timedelta(hours=8)).isoformat()},
            {"slug": "day-2", "title": {"en": "Day 2"}, "starts_at": DAY_2.isoformat(),
             "ends_at": (DAY_2 + timedelta(hours=8)).isoformat()}]))


def change(status, seq=1, registration="r1", cause=None, sessions=("day-1",)):
    return RegistrationStatusChanged(
        registration_id=registration, event_slug=SLUG, status=status, previous_status=None,
        status_seq=seq, cause=cause or status,
        attendee=Attendee(name="Amira", email=f"{registration}@example.org", language="en",
                          timezone="America/New_York", country=None, category=None,
                          sessions=list(sessions)),
        waitlist_position=4 if status == "waitlisted" else None,
        hold_expires_at=HOLD if status == "held" else None,
        links={"self": "s", "cancel": "c", "confirm": "f", "calendar": "k", "manage": "m"})


@pytest.fixture(autouse=True)
def fresh_slug():
    """Parsed event revisions are kept per process by (slug, revision): each
    test's event, in its own database, gets a slug of its own."""
    global SLUG
    SLUG = f"conf-{uuid.uuid4().hex[:8]}"


def publish(db, spec, revision=1):
    with transaction(db) as session:
        return policy.event_published(session, spec, revision, ORGANISER)


def tell(db, *changes):
    """Status changes as one batch; returns how many deliveries were queued."""
    with transaction(db) as session:
        return policy.status_changes(session, events.reader(session),
                                     [(c, "correlation-1") for c in changes], ORGANISER)


def queued(db):
    with transaction(db) as session:
        return [(r.cause, r.kind, r.recipient) for r in session.execute(
            select(deliveries).order_by(deliveries.c.id))]


def kinds(db):
    return [kind for _, kind, _ in queued(db)]


def reminders(db, state="pending"):
    with transaction(db) as session:
        return sorted((r.registration_id, r.session_slug, r.due_at) for r in session.execute(
            select(scheduled).where(scheduled.c.state == state)))


def send_due(db, now):
    with transaction(db) as session:
        return policy.send_due(session, now, events.reader(session))


def announce(db, announcement_id, slug=None):
    """An announcement as registration records it; returns how many were queued."""
    with transaction(db) as session:
        return policy.announce(session, AnnouncementRequested(
            announcement_id=announcement_id, event_slug=slug or SLUG, subject={"en": "News"},
            body={"en": "Doors open at nine."}))


def seat(db, registration, status="confirmed", sessions=("day-1",)):
    tell(db, change(status, registration=registration, sessions=sessions))


# -- status changes ------------------------------------------------------------------------

def test_a_status_change_queues_one_message_however_often_it_arrives(db):
    publish(db, event())
    assert tell(db, change("confirmed")) == 1
    assert tell(db, change("confirmed")) == 0
    assert queued(db) == [("status:r1:1", "seat_confirmed", "r1@example.org")]


def test_the_same_change_twice_in_one_batch_queues_once(db):
    publish(db, event())
    assert tell(db, change("confirmed"), change("confirmed")) == 1
    assert len(queued(db)) == 1


def test_each_change_of_a_registration_is_a_cause_of_its_own(db):
    publish(db, event())
    tell(db, change("waitlisted", 1))
    tell(db, change("confirmed", 2, cause="promoted"))
    assert [cause for cause, _, _ in queued(db)] == ["status:r1:1", "status:r1:2"]
    assert kinds(db) == ["waitlisted", "promoted"]


def test_an_older_change_does_not_overwrite_the_newer_status_or_its_reminders(db):
    publish(db, event())
    tell(db, change("cancelled", 2))
    tell(db, change("confirmed", 1))           # overtaken on the way
    with transaction(db) as session:
        stored = session.execute(select(attendees)).one()
    assert (stored.status, stored.status_seq) == ("cancelled", 2)
    assert reminders(db) == []


def test_an_older_change_after_a_newer_one_queues_nothing(db):
    publish(db, event())
    tell(db, change("cancelled", 2))
    assert tell(db, change("confirmed", 1)) == 0
    assert kinds(db) == ["cancelled"]


KINDS = [("confirmed", "confirmed", "seat_confirmed"), ("confirmed", "promoted", "promoted"),
         ("held", "held", "hold"), ("held", "promoted", "promoted"),
         ("waitlisted", "waitlisted", "waitlisted"), ("rejected", "rejected", "rejected"),
         ("cancelled", "cancelled", "cancelled"), ("expired", "expired", "hold_expired"),
         ("pending", "received", "received")]


@pytest.mark.parametrize("status, cause, kind", KINDS)
def test_each_status_and_cause_sends_its_kind(db, status, cause, kind):
    publish(db, event())
    assert tell(db, change(status, cause=cause)) == 1
    assert kinds(db) == [kind]


def test_a_pending_registration_not_announced_as_received_is_told_nothing(db):
    publish(db, event())
    assert tell(db, change("pending", cause="requested")) == 0
    assert queued(db) == []


def test_a_status_change_for_an_event_not_known_yet_waits_for_the_event(db):
    with pytest.raises(EventNotKnownYet):
        tell(db, change("confirmed"))
    assert queued(db) == [] and reminders(db) == []


# -- reminders -----------------------------------------------------------------------------

def test_a_confirmed_seat_schedules_each_reminder_offset_before_each_chosen_session(db):
    publish(db, event(reminders=("P1D", "PT1H")))
    tell(db, change("confirmed", sessions=["day-1"]))
    assert reminders(db) == [("r1", "day-1", DAY_1 - timedelta(days=1)),
                             ("r1", "day-1", DAY_1 - timedelta(hours=1))]


@pytest.mark.parametrize("status", ["held", "waitlisted", "pending"])
def test_only_a_confirmed_seat_gets_reminders(db, status):
    publish(db, event())
    tell(db, change(status, cause="received" if status == "pending" else None))
    assert reminders(db) == []


def test_a_cancellation_cancels_the_reminders(db):
    publish(db, event())
    tell(db, change("confirmed", 1))
    tell(db, change("cancelled", 2))
    assert reminders(db) == []
    assert len(reminders(db, "cancelled")) == 2
    assert kinds(db) == ["seat_confirmed", "cancelled"]


# -- event changes -------------------------------------------------------------------------

def test_the_first_description_of_an_event_tells_nobody(db):
    assert publish(db, event()) is False
    assert queued(db) == []


def test_a_moved_session_is_told_to_its_seated_attendees_only(db):
    publish(db, event(), 1)
    seat(db, "r1")
    seat(db, "r2", status="held")
    seat(db, "r3", status="waitlisted")
    seat(db, "r4", sessions=["day-2"])             # not in the moved session
    tell(db, change("confirmed", 1, "r5"), change("cancelled", 2, "r5"))
    before = len(queued(db))
    assert publish(db, event(day_1=DAY_1 + timedelta(hours=3)), 2) is True
    assert queued(db)[before:] == [("moved:r1:day-1:2", "session_moved", "r1@example.org"),
                                   ("moved:r2:day-1:2", "session_moved", "r2@example.org")]


def test_a_moved_session_moves_its_reminders(db):
    publish(db, event(), 1)
    seat(db, "r1")
    seat(db, "r2", sessions=["day-2"])
    publish(db, event(day_1=DAY_1 + timedelta(hours=3)), 2)
    moved = DAY_1 + timedelta(hours=3)
    assert reminders(db) == [("r1", "day-1", moved - timedelta(days=1)),
                             ("r1", "day-1", moved - timedelta(hours=1)),
                             ("r2", "day-2", DAY_2 - timedelta(days=1)),
                             ("r2", "day-2", DAY_2 - timedelta(hours=1))]


def test_an_older_revision_of_the_event_is_ignored(db):
    moved = DAY_1 + timedelta(hours=3)
    publish(db, event(), 1)
    seat(db, "r1")
    publish(db, event(day_1=moved), 3)
    told = queued(db)
    assert publish(db, event(day_1=DAY_1 + timedelta(hours=5)), 2) is False
    assert queued(db) == told
    with transaction(db) as session:
        spec, revision = events.get(session, SLUG)
    assert revision == 3 and spec.sessions[0].starts_at == moved
    assert [due for _, _, due in reminders(db)] == [moved - timedelta(days=1),
                                                    moved - timedelta(hours=1)]


def test_the_same_revision_published_twice_tells_once(db):
    publish(db, event(), 1)
    seat(db, "r1")
    publish(db, event(day_1=DAY_1 + timedelta(hours=3)), 2)
    assert publish(db, event(day_1=DAY_1 + timedelta(hours=3)), 2) is False
    assert kinds(db) == ["seat_confirmed", "session_moved"]


def test_changed_reminder_offsets_reschedule_without_a_message(db):
    publish(db, event(reminders=("P1D",)), 1)
    seat(db, "r1")
    assert publish(db, event(reminders=("P7D",)), 2) is False
    assert reminders(db) == [("r1", "day-1", DAY_1 - timedelta(days=7))]
    assert kinds(db) == ["seat_confirmed"]


def test_a_session_moved_and_moved_back_keeps_its_reminders(db):
    publish(db, event(), 1)
    seat(db, "r1")
    planned = reminders(db)
    publish(db, event(day_1=DAY_1 + timedelta(hours=3)), 2)
    publish(db, event(), 3)
    assert reminders(db) == planned


# -- due reminders -------------------------------------------------------------------------

def test_due_reminders_become_deliveries_once(db):
    publish(db, event(reminders=("P1D", "PT1H")))
    seat(db, "r1")
    assert send_due(db, DAY_1 - timedelta(hours=12)) == (1, 1)
    assert send_due(db, DAY_1 - timedelta(hours=12)) == (0, 0)
    assert send_due(db, DAY_1 - timedelta(minutes=30)) == (1, 1)
    assert send_due(db, DAY_1 - timedelta(minutes=30)) == (0, 0)
    reminder_rows = [(cause, kind) for cause, kind, _ in queued(db) if kind == "reminder"]
    assert reminder_rows == [("reminder:r1:day-1:P1D:20300318T070000Z", "reminder"),
                             ("reminder:r1:day-1:PT1H:20300318T070000Z", "reminder")]
    assert reminders(db) == [] and len(reminders(db, "sent")) == 2


def test_a_reminder_whose_session_has_begun_is_skipped(db):
    publish(db, event())
    seat(db, "r1")
    assert send_due(db, DAY_1 + timedelta(minutes=1)) == (2, 0)
    assert len(reminders(db, "skipped")) == 2
    assert kinds(db) == ["seat_confirmed"]


def test_a_reminder_for_an_attendee_whose_seat_is_gone_is_skipped(db):
    publish(db, event(reminders=("P1D",)))
    seat(db, "r1")
    # A cancellation cancels the plan in its own transaction; only one that
    # raced the claim leaves a due row behind a seat that is gone.
    gone = change("cancelled", 2)
    with transaction(db) as session:
        session.execute(update(attendees).values(status="cancelled", status_seq=2,
                                                 snapshot=gone.model_dump(mode="json")))
    assert send_due(db, DAY_1 - timedelta(hours=12)) == (1, 0)
    assert len(reminders(db, "skipped")) == 1
    assert kinds(db) == ["seat_confirmed"]


def test_nothing_due_claims_nothing(db):
    publish(db, event())
    seat(db, "r1")
    assert send_due(db, DAY_1 - timedelta(days=2)) == (0, 0)
    assert len(reminders(db)) == 2


# -- announcements -------------------------------------------------------------------------

def test_an_announcement_reaches_every_seated_attendee_once_per_id(db):
    publish(db, event())
    seat(db, "r1")
    seat(db, "r2", status="held")
    seat(db, "r3", status="waitlisted")
    tell(db, change("confirmed", 1, "r4"), change("cancelled", 2, "r4"))
    assert announce(db, "a1") == 2
    announced = [(c, r) for c, kind, r in queued(db) if kind == "announcement"]
    assert announced == [("announcement:a1:r1", "r1@example.org"), ("announcement:a1:r2", "r2@example.org")]
    assert announce(db, "a1") == 0                         # a repeat sends nothing
    assert announce(db, "a2") == 2 and kinds(db).count("announcement") == 4


def test_an_announcement_for_an_event_not_known_yet_waits_for_it(db):
    with pytest.raises(EventNotKnownYet):
        announce(db, "a1", slug="unknown")
    assert queued(db) == []


def test_the_audience_is_whom_an_announcement_reaches(db):
    publish(db, event())
    seat(db, "r1")
    seat(db, "r2", status="held")
    seat(db, "r3", status="waitlisted")
    seat(db, "r4")
    seat(db, "r5")
    with transaction(db) as session:
        recipients.unsubscribe(session, "r4")
        erasure.erase(session, "r5", SLUG)
        assert recipients.audience(session, SLUG) == 2
        assert recipients.audience(session, "unknown") == 0
    assert announce(db, "a1") == 2


# -- calendars -----------------------------------------------------------------------------

def test_the_calendar_of_a_registration_is_icalendar_of_its_sessions(db):
    publish(db, event(), 4)
    seat(db, "r1", sessions=["day-2"])
    with transaction(db) as session:
        [entry] = Calendar.from_ical(policy.calendar_for(session, "r1", ORGANISER)).walk("VEVENT")
    assert entry["UID"] == "r1.day-2@event-registration"
    assert entry.decoded("DTSTART") == DAY_2
    assert entry["SEQUENCE"] == 4
    assert "meet.example.org" in entry["URL"]            # a confirmed seat: the join link
    assert str(entry["ORGANIZER"]) == f"mailto:{ORGANISER}"


def test_the_calendar_follows_a_moved_session(db):
    publish(db, event(), 1)
    seat(db, "r1")
    publish(db, event(day_1=DAY_1 + timedelta(hours=3)), 2)
    with transaction(db) as session:
        [entry] = Calendar.from_ical(policy.calendar_for(session, "r1", ORGANISER)).walk("VEVENT")
    assert entry.decoded("DTSTART") == DAY_1 + timedelta(hours=3) and entry["SEQUENCE"] == 2


def test_a_calendar_without_a_seat_has_no_join_link(db):
    publish(db, event())
    seat(db, "r1", status="waitlisted")
    with transaction(db) as session:
        [entry] = Calendar.from_ical(policy.calendar_for(session, "r1", ORGANISER)).walk("VEVENT")
    assert "URL" not in entry


def test_an_unknown_registration_has_no_calendar(db):
    publish(db, event())
    with transaction(db) as session, pytest.raises(NotFound) as missing:
        policy.calendar_for(session, "nobody", ORGANISER)
    assert missing.value.status == 404
