from datetime import timedelta

import pytest
from sqlalchemy import select, update

from services.notification import deliveries
from services.notification.models import deliveries as table
from shared.db import transaction


@pytest.fixture
def db(service_db):
    return service_db("notification")


def queue(db, cause="status:r1:1"):
    with transaction(db) as session:
        return deliveries.enqueue(session, cause, "seat_confirmed", "a@example.org", "en",
                                  {"subject": "s", "text": "t", "html": "h"}, "conf", "r1")


def test_one_cause_queues_one_message(db):
    assert queue(db) is True
    assert queue(db) is False
    with transaction(db) as session:
        assert len(session.execute(select(table)).all()) == 1


def test_claimed_messages_are_leased_and_a_dead_senders_lease_runs_out(db):
    queue(db)
    with transaction(db) as session:
        [row] = deliveries.claim_due(session)
    with transaction(db) as session:
        assert deliveries.claim_due(session) == []          # leased to the first sender
        session.execute(update(table).values(next_attempt_at=deliveries.utcnow() - timedelta(seconds=1)))
    with transaction(db) as session:
        assert len(deliveries.claim_due(session)) == 1      # the lease ran out: sent again


def test_failures_back_off_and_are_kept(db):
    queue(db)
    with transaction(db) as session:
        [row] = deliveries.claim_due(session)
        assert deliveries.mark_failed(session, row, "refused") is False
    with transaction(db) as session:
        stored = session.execute(select(table)).one()
    assert stored.status == "queued" and stored.attempts == 1 and stored.last_error == "refused"
    assert deliveries.backoff(1) <= timedelta(seconds=1.2)
    assert deliveries.backoff(5) >= timedelta(seconds=12)
    assert deliveries.backoff(50) <= timedelta(hours=1.2)


def test_a_permanent_refusal_is_failed_in_the_log(db):
    queue(db)
    with transaction(db) as session:
        [row] = deliveries.claim_due(session)
        assert deliveries.mark_failed(session, row, "550 no such user", permanent=True)
    with transaction(db) as session:
        assert session.execute(select(table.c.status)).scalar() == "failed"
