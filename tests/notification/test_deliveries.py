from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from services.notification import deliveries
from services.notification.models import deliveries as table
from shared.db import transaction


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

    from services.notification.mailer import Mailer, Server
    from services.notification.sending import DeliveryWorker
    worker = DeliveryWorker()
    worker.lease = deliveries.LEASE
    worker.mailer = Mailer(Server("127.0.0.1", 9, timeout=1), "events@example.org")
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


# -- the log's rules at their edges (a frozen clock) -----------------------------------
T0 = datetime(2027, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    """deliveries' clock, frozen; ``clock.now = ...`` moves it."""
    class Clock:
        now = T0
    monkeypatch.setattr(deliveries, "utcnow", lambda: Clock.now)
    return Clock


def aware(value):
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def stored_rows(db):
    with transaction(db) as session:
        return session.execute(select(table).order_by(table.c.id)).all()


def test_a_queued_message_keeps_what_it_was_queued_with_and_goes_by_email(db):
    queue(db)
    [row] = stored_rows(db)
    assert (row.cause, row.kind, row.channel, row.recipient, row.language, row.event_slug,
            row.registration_id, row.status, row.attempts) == (
        "status:r1:1", "seat_confirmed", "email", "a@example.org", "en", "conf", "r1", "queued", 0)
    assert row.content == {"subject": "s", "text": "t", "html": "h"}


def test_a_message_goes_by_email_unless_queued_for_another_channel(db):
    row = deliveries.queued_row("status:r1:1", "seat_confirmed", "a@example.org", "en", {}, "conf", "r1")
    assert row["channel"] == "email"
    with transaction(db) as session:
        assert deliveries.enqueue(session, "webhook:1:r1:1", "status_changed", "https://example.org/hook", "",
                                  {"payload": {}}, "conf", "r1", channel="webhook")
    [stored] = stored_rows(db)
    assert (stored.channel, stored.recipient) == ("webhook", "https://example.org/hook")


def test_a_message_queued_now_is_due_now_and_leased_for_the_lease_asked(db, clock):
    queue(db)
    with transaction(db) as session:
        [row] = deliveries.claim_due(session, lease=timedelta(seconds=5))
    assert row.status == "sending" and row.lease
    assert aware(row.next_attempt_at) == T0 + timedelta(seconds=5)
    clock.now = T0 + timedelta(seconds=5)
    with transaction(db) as session:                # the lease ran out at its very deadline
        [again] = deliveries.claim_due(session)
    assert again.lease != row.lease and aware(again.next_attempt_at) == clock.now + deliveries.LEASE


def test_sent_and_failed_messages_are_never_claimed_again(db, clock):
    queue(db, "status:r1:1")
    queue(db, "status:r2:1")
    with transaction(db) as session:
        sent, failed = deliveries.claim_due(session)
        deliveries.mark_sent(session, sent)
        deliveries.mark_failed(session, failed, "550 no such user", permanent=True)
    clock.now = T0 + timedelta(days=30)
    with transaction(db) as session:
        assert deliveries.claim_due(session) == []


def test_a_sender_takes_at_most_its_batch_oldest_first(db):
    for number in (1, 2, 3):
        queue(db, f"status:r{number}:1")
    with transaction(db) as session:
        assert [row.cause for row in deliveries.claim_due(session, limit=2)] == ["status:r1:1", "status:r2:1"]
    with transaction(db) as session:
        assert [row.cause for row in deliveries.claim_due(session, limit=2)] == ["status:r3:1"]


def test_the_oldest_messages_are_claimed_first_whenever_each_fell_due(db, clock):
    for number in (1, 2, 3):
        queue(db, f"status:r{number}:1")
    with transaction(db) as session:                # the oldest fell due last (a retry, say)
        for number, seconds in ((1, 1), (2, 3), (3, 2)):
            session.execute(update(table).where(table.c.cause == f"status:r{number}:1").values(
                next_attempt_at=T0 - timedelta(seconds=seconds)))
    with transaction(db) as session:
        assert [row.cause for row in deliveries.claim_due(session, limit=2)] == ["status:r1:1", "status:r2:1"]


def test_a_message_handed_back_is_queued_due_now_and_holds_no_lease(db, clock):
    queue(db)
    with transaction(db) as session:
        claimed = deliveries.claim_due(session)
    clock.now = T0 + timedelta(seconds=10)
    with transaction(db) as session:
        deliveries.release(session, claimed)
    [stored] = stored_rows(db)
    assert (stored.status, stored.lease, aware(stored.next_attempt_at)) == ("queued", None, clock.now)


def test_a_renewed_lease_keeps_other_senders_away_past_the_first_deadline(db, clock):
    queue(db)
    with transaction(db) as session:
        claimed = deliveries.claim_due(session)
    clock.now = T0 + deliveries.LEASE - timedelta(seconds=1)
    with transaction(db) as session:
        assert deliveries.renew(session, claimed) == {claimed[0].id}
        assert deliveries.renew(session, []) == set()
    clock.now = T0 + deliveries.LEASE + timedelta(seconds=30)
    with transaction(db) as session:
        assert deliveries.claim_due(session) == []


def test_a_retry_that_succeeds_records_when_and_forgets_the_error(db, clock, monkeypatch):
    monkeypatch.setattr(deliveries.random, "uniform", lambda low, high: high)
    queue(db)
    with transaction(db) as session:
        [row] = deliveries.claim_due(session)
        deliveries.mark_failed(session, row, "451 try later " + "x" * 2000)
    [stored] = stored_rows(db)
    assert stored.status == "queued" and stored.lease is None
    assert len(stored.last_error) == 1000 and stored.last_error.startswith("451 try later")
    # retried after its backoff (1 s, at most a fifth more), not at once and not a lease later
    assert aware(stored.next_attempt_at) == T0 + timedelta(seconds=1.2)
    clock.now = T0 + timedelta(seconds=1.2)
    with transaction(db) as session:
        [row] = deliveries.claim_due(session)
        assert deliveries.mark_sent_many(session, []) == 0
        assert deliveries.mark_sent_many(session, [row]) == 1
    [stored] = stored_rows(db)
    assert (stored.status, stored.attempts, stored.last_error, stored.lease) == ("sent", 2, None, None)
    assert aware(stored.sent_at) == clock.now


def test_the_thirtieth_failed_attempt_is_the_last(db):
    queue(db)
    with transaction(db) as session:
        session.execute(update(table).values(attempts=deliveries.MAX_ATTEMPTS - 2))
    with transaction(db) as session:
        [row] = deliveries.claim_due(session)
        assert deliveries.mark_failed(session, row, "refused") is False      # the 29th
        session.execute(update(table).values(next_attempt_at=deliveries.utcnow()))
    with transaction(db) as session:
        [row] = deliveries.claim_due(session)
        assert deliveries.mark_failed(session, row, "refused") is True       # the 30th
    [stored] = stored_rows(db)
    assert (stored.status, stored.attempts) == ("failed", deliveries.MAX_ATTEMPTS)


@pytest.mark.parametrize("jitter", ["low", "high"])
def test_the_backoff_doubles_from_a_second_to_an_hour_within_a_fifth(monkeypatch, jitter):
    factor = 0.8 if jitter == "low" else 1.2
    monkeypatch.setattr(deliveries.random, "uniform", lambda low, high: low if jitter == "low" else high)
    assert [deliveries.backoff(n) for n in (1, 2, 3, 6)] == [
        timedelta(seconds=s * factor) for s in (1, 2, 4, 32)]
    assert deliveries.backoff(13) == deliveries.backoff(30) == timedelta(hours=1) * factor
