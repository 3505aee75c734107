"""Reminders and notices are planned from a registration's status and the
event's sessions; changes reconcile the plan."""
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from services.notification import schedule
from services.notification.models import scheduled
from shared.db import transaction
from shared.schemas import EventSpec
from tests.support.documents import event_document

NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)


def event(starts_at="2027-03-18T10:00:00+03:00", reminders=("P7D", "P1D", "PT1H")):
    return EventSpec.model_validate_json(json.dumps(event_document(
        slug="conf", reminders=list(reminders), sessions=[
            {"slug": "day-1", "title": {"en": "Day 1"}, "starts_at": starts_at,
             "ends_at": "2027-03-18T18:00:00+03:00"},
            {"slug": "day-2", "title": {"en": "Day 2"}, "starts_at": "2027-03-19T10:00:00+03:00",
             "ends_at": "2027-03-19T18:00:00+03:00"}])))


@pytest.fixture
def db(service_db):
    return service_db("notification")


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
    assert schedule.moved_sessions(event(), event(starts_at="2027-03-18T11:00:00+03:00")) == ["day-1"]
    assert schedule.moved_sessions(event(), event()) == []
