"""Reminders and notices are planned from a registration's status and the
event's sessions; changes reconcile the plan."""
import json
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select

from services.notification import schedule
from services.notification.models import scheduled
from shared.db import transaction
from shared.schemas import EventSpec, moved_sessions
from tests.support.documents import event_document

NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)


def event(starts_at="2027-03-18T10:00:00+03:00", reminders=("P7D", "P1D", "PT1H")):
    return EventSpec.model_validate_json(json.dumps(event_document(
        slug="conf", reminders=list(reminders), sessions=[
            {"slug": "day-1", "title": {"en": "Day 1"}, "starts_at": starts_at,
             "ends_at": "2027-03-18T18:00:00+03:00"},
            {"slug": "day-2", "title": {"en": "Day 2"}, "starts_at": "2027-03-19T10:00:00+03:00",
             "ends_at": "2027-03-19T18:00:00+03:00"}])))


def pending(db):
    with transaction(db) as session:
        return sorted((r.kind, r.session_slug, r.due_at.replace(tzinfo=UTC))
                      for r in session.execute(select(scheduled).where(scheduled.c.state == "pending")))


def test_a_confirmed_seat_gets_each_offset_before_each_chosen_session(db):
    with transaction(db) as session:
        schedule.reconcile(session, event(), "r1", "confirmed", ["day-1"], NOW)
    due = [row[2] for row in pending(db)]
    start = datetime(2027, 3, 18, 7, tzinfo=UTC)
    assert due == [start - timedelta(days=7), start - timedelta(days=1), start - timedelta(hours=1)]


def test_reminders_already_past_are_not_scheduled(db):
    with transaction(db) as session:
        schedule.reconcile(session, event(), "r1", "confirmed", ["day-1"],
                           datetime(2027, 3, 17, 12, tzinfo=UTC))
    assert [row[2].hour for row in pending(db)] == [6]     # only the hour-before one


def test_a_reminder_due_the_very_instant_the_seat_is_confirmed_is_not_scheduled(db):
    hour_before = datetime(2027, 3, 18, 6, tzinfo=UTC)
    with transaction(db) as session:
        schedule.reconcile(session, event(reminders=("P1D", "PT1H")), "r1", "confirmed", ["day-1"], hour_before)
    assert pending(db) == []
    with transaction(db) as session:
        schedule.reconcile(session, event(reminders=("PT1H",)), "r2", "confirmed", ["day-1"],
                           hour_before - timedelta(seconds=1))
    assert pending(db) == [("reminder", "day-1", hour_before)]


def test_a_session_moved_and_moved_back_gets_its_first_reminders_again(db):
    moved = event(starts_at="2027-03-18T14:00:00+03:00", reminders=("PT1H",))
    with transaction(db) as session:
        schedule.reconcile(session, event(reminders=("PT1H",)), "r1", "confirmed", ["day-1"], NOW)
        schedule.reconcile(session, moved, "r1", "confirmed", ["day-1"], NOW)
        schedule.reconcile(session, event(reminders=("PT1H",)), "r1", "confirmed", ["day-1"], NOW)
    assert pending(db) == [("reminder", "day-1", datetime(2027, 3, 18, 6, tzinfo=UTC))]
    with transaction(db) as session:
        states = dict(session.execute(select(scheduled.c.due_at, scheduled.c.state)).all())
    assert {due.replace(tzinfo=UTC).hour: state for due, state in states.items()} == {6: "pending", 10: "cancelled"}


def test_a_moved_session_moves_its_reminders(db):
    with transaction(db) as session:
        schedule.reconcile(session, event(), "r1", "confirmed", ["day-1"], NOW)
        schedule.reconcile(session, event(starts_at="2027-03-18T14:00:00+03:00"), "r1",
                           "confirmed", ["day-1"], NOW)
    assert [row[2].hour for row in pending(db)] == [11, 11, 10]


def test_cancellation_cancels_the_reminders(db):
    with transaction(db) as session:
        schedule.reconcile(session, event(), "r1", "pending", ["day-1"], NOW)
    assert pending(db) == []            # the "received" notice is registration's to send
    with transaction(db) as session:
        schedule.reconcile(session, event(), "r1", "confirmed", ["day-1"], NOW)
    assert {row[0] for row in pending(db)} == {"reminder"}
    with transaction(db) as session:
        schedule.reconcile(session, event(), "r1", "cancelled", ["day-1"], NOW)
    assert pending(db) == []


def test_due_rows_are_claimed(db):
    with transaction(db) as session:
        schedule.reconcile(session, event(), "r1", "confirmed", ["day-1", "day-2"], NOW)
    with transaction(db) as session:
        due = schedule.claim_due(session, datetime(2027, 3, 12, 12, tzinfo=UTC))
    assert [(r.session_slug, r.kind) for r in due] == [("day-1", "reminder"), ("day-2", "reminder")]


def test_moved_sessions_are_found():
    assert moved_sessions(event(), event(starts_at="2027-03-18T11:00:00+03:00")) == ["day-1"]
    assert moved_sessions(event(), event()) == []


def test_a_reminder_sent_is_never_scheduled_again(db):
    with transaction(db) as session:
        schedule.reconcile(session, event(), "r1", "confirmed", ["day-1"], NOW)
    with transaction(db) as session:
        due = schedule.claim_due(session, datetime(2027, 3, 12, 12, tzinfo=UTC))
        schedule.mark_many(session, [row.id for row in due], "sent")
    with transaction(db) as session:       # the status told again (a duplicate, a resend)
        schedule.reconcile(session, event(), "r1", "confirmed", ["day-1"], NOW)
    assert [row[2].day for row in pending(db)] == [17, 18]     # the day before, the hour before
    with transaction(db) as session:
        states = sorted(session.execute(select(scheduled.c.state)).scalars())
    assert states == ["pending", "pending", "sent"]


def test_a_reminder_is_due_at_its_moment_earliest_first_a_claim_at_a_time(db):
    with transaction(db) as session:
        schedule.reconcile(session, event(reminders=("PT1H",)), "r1", "confirmed", ["day-2", "day-1"], NOW)
    day_1 = datetime(2027, 3, 18, 6, tzinfo=UTC)           # 10:00+03:00, an hour before
    with transaction(db) as session:
        assert schedule.claim_due(session, day_1 - timedelta(seconds=1)) == []
        [first] = schedule.claim_due(session, day_1 + timedelta(days=2), limit=1)
        assert (first.session_slug, first.due_at.replace(tzinfo=UTC)) == ("day-1", day_1)
        assert [r.session_slug for r in schedule.claim_due(session, day_1)] == ["day-1"]


def test_the_earliest_reminder_is_claimed_first_whoever_was_scheduled_first(db):
    with transaction(db) as session:
        schedule.reconcile(session, event(reminders=("PT1H",)), "r1", "confirmed", ["day-2"], NOW)
    with transaction(db) as session:
        schedule.reconcile(session, event(reminders=("PT1H",)), "r2", "confirmed", ["day-1"], NOW)
    with transaction(db) as session:
        [first] = schedule.claim_due(session, datetime(2027, 3, 20, tzinfo=UTC), limit=1)
    assert (first.registration_id, first.session_slug) == ("r2", "day-1")


def test_the_counts_of_due_and_late_reminders(db):
    with transaction(db) as session:
        schedule.reconcile(session, event(reminders=("P1D", "PT1H")), "r1", "confirmed", ["day-1"], NOW)
        schedule.reconcile(session, event(reminders=("P1D", "PT1H")), "r2", "confirmed", ["day-2"], NOW)
    hour_before = datetime(2027, 3, 18, 6, tzinfo=UTC)      # day-1's; its day-before is 23 h earlier
    with transaction(db) as session:
        assert schedule.pending_count(session, hour_before - timedelta(days=2)) == (0, 0)
        assert schedule.pending_count(session, hour_before - timedelta(hours=23)) == (1, 0)   # due this instant
        assert schedule.pending_count(session, hour_before - timedelta(hours=23) + timedelta(seconds=59)) == (1, 0)
        assert schedule.pending_count(session, hour_before - timedelta(hours=23) + timedelta(minutes=1)) == (1, 1)
        assert schedule.pending_count(session, hour_before - timedelta(hours=23) + timedelta(seconds=90)) == (1, 1)
        assert schedule.pending_count(session, hour_before) == (2, 1)
        due = schedule.claim_due(session, hour_before)
        schedule.mark_many(session, [row.id for row in due], "sent")
        assert schedule.pending_count(session, hour_before) == (0, 0)      # sent ones are not counted


def test_a_reminders_cause_names_its_session_start_in_utc_whatever_the_servers_zone(monkeypatch):
    import time
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        start = datetime(2027, 3, 18, 10, tzinfo=UTC)
        causes = {schedule.reminder_cause("r1", "day-1", "PT1H", start.astimezone(timezone(timedelta(hours=h))))
                  for h in (0, 3, -5)}
        assert causes == {"reminder:r1:day-1:PT1H:20270318T100000Z"}
    finally:
        monkeypatch.undo()
        time.tzset()
