from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

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
        deliveries.release(session, claimed)
    with transaction(db) as session:
        assert len(deliveries.claim_due(session)) == 2


def expire_leases(db):
    with transaction(db) as session:
        session.execute(update(table).values(next_attempt_at=deliveries.utcnow() - timedelta(seconds=1)))


def test_a_sender_behind_its_lease_neither_sends_nor_overwrites_the_next_claim(db):
    queue(db)
    with transaction(db) as session:
        [late] = deliveries.claim_due(session)
    expire_leases(db)
    with transaction(db) as session:
        [current] = deliveries.claim_due(session)
    assert current.lease != late.lease
    with transaction(db) as session:
        assert deliveries.take(session, late) is False        # not sent by the late sender
        assert deliveries.mark_sent(session, late) is False
        deliveries.mark_failed(session, late, "too late")
        deliveries.release(session, [late])
    with transaction(db) as session:
        assert session.execute(select(table.c.status, table.c.lease)).one() == ("sending", current.lease)
        assert deliveries.take(session, current) is True
        assert deliveries.mark_sent(session, current) is True
    with transaction(db) as session:
        assert session.execute(select(table.c.status, table.c.attempts)).one() == ("sent", 1)


def sender():
    from eventlet.queue import LightQueue

    from services.notification.mailer import Mailer
    from services.notification.sending import DeliveryWorker
    worker = DeliveryWorker()
    worker.mailer = Mailer("127.0.0.1", 9, "events@example.org", timeout=1)
    worker.mailers = LightQueue()
    worker.mailers.put(worker.mailer)
    return worker


def test_a_batch_cut_short_hands_back_only_what_was_never_started(db, monkeypatch):
    from services.notification import sending
    monkeypatch.setattr(sending, "GROUP", 1)      # a record after every message
    for number in (1, 2, 3):
        queue(db, f"status:r{number}:1")
    with transaction(db) as session:
        claimed = deliveries.claim_due(session)
    worker = sender()

    def send(sessions, mailer, row):
        if row.cause == "status:r2:1":
            raise OperationalError("UPDATE", {}, Exception("the database went away"))
        return True
    worker._send = send
    with pytest.raises(OperationalError):
        worker._send_chunk(db, claimed)
    with transaction(db) as session:
        rows = session.execute(select(table.c.cause, table.c.status).order_by(table.c.id)).all()
    # The one in flight may have gone out: it waits for its lease, not sent again at once.
    assert rows == [("status:r1:1", "sent"), ("status:r2:1", "sending"), ("status:r3:1", "queued")]


def test_a_message_that_cannot_be_built_fails_for_good_instead_of_looping(db):
    with transaction(db) as session:
        deliveries.enqueue(session, "status:r1:1", "seat_confirmed", "a@example.org", "en",
                           {"text": "no subject"}, "conf", "r1")
        [row] = deliveries.claim_due(session)
    worker = sender()
    worker._send(db, worker.mailer, row)
    with transaction(db) as session:
        stored = session.execute(select(table)).one()
    assert stored.status == "failed" and "cannot be built" in stored.last_error
