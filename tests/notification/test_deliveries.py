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


def test_claimed_messages_handed_back_are_due_again_at_once(db):
    queue(db, "status:r1:1")
    queue(db, "status:r2:1")
    with transaction(db) as session:
        claimed = deliveries.claim_due(session)
    with transaction(db) as session:
        deliveries.release(session, [row.id for row in claimed])
    with transaction(db) as session:
        assert len(deliveries.claim_due(session)) == 2


def test_a_sender_short_of_time_hands_its_batch_back_unsent(db, monkeypatch):
    from services.notification.sending import DeliveryWorker
    queue(db, "status:r1:1")
    queue(db, "status:r2:1")
    with transaction(db) as session:
        claimed = deliveries.claim_due(session)
    monkeypatch.setattr(deliveries, "SEND_WITHIN", timedelta(0))
    worker = DeliveryWorker()
    worker._send = lambda sessions, row: pytest.fail("sent after the deadline")
    worker._send_batch(db, claimed)
    with transaction(db) as session:
        rows = session.execute(select(table.c.status, table.c.attempts)).all()
    assert rows == [("queued", 0), ("queued", 0)]
