"""Two claimers on the same due rows, on a real PostgreSQL: the delivery log's
senders and the reminder timers of two replicas.

Claims use ``FOR UPDATE SKIP LOCKED``: while claimer A's transaction is open,
claimer B takes none of A's rows and does not wait for them; together they
take each row once. Every connection has a lock_timeout, so a claim that
would wait fails fast instead of hanging. A delivery lease that has run out
is taken over, and the first sender's stale lease then changes nothing.

Each mechanism has a companion test (``test_without_…``) that takes it away
(SKIP LOCKED replaced by a plain FOR UPDATE, or by no lock; the lease left
out of the writes) and asserts that the bad outcome then does happen.
"""
from __future__ import annotations

from datetime import timedelta

import psycopg2.errors
import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import OperationalError

from services.notification import deliveries, schedule
from services.notification.models import deliveries as deliveries_table
from services.notification.models import scheduled
from shared.clock import utcnow
from shared.db import transaction
from tests.support.contention import postgres_service_db, run_until_it_waits

ROWS = 10
A_TAKES = 4


@pytest.fixture(scope="module")
def pg():
    with postgres_service_db("notification") as (engine, db):
        yield engine, db


@pytest.fixture
def due_deliveries(pg):
    _engine, db = pg
    with transaction(db) as session:
        session.execute(delete(deliveries_table))
        deliveries.enqueue_many(session, [
            deliveries.queued_row(f"status:r{n}:1", "confirmed", f"a{n}@example.org", "en",
                                  {"subject": "s"}, "conf", f"r{n}") for n in range(ROWS)])
        return set(session.execute(select(deliveries_table.c.id)).scalars())


@pytest.fixture
def due_reminders(pg):
    _engine, db = pg
    now = utcnow()
    with transaction(db) as session:
        session.execute(delete(scheduled))
        session.execute(scheduled.insert(), [
            {"cause": f"reminder:r{n}:day-1:P1D", "registration_id": f"r{n}", "event_slug": "conf",
             "kind": "reminder", "session_slug": "day-1", "session_starts_at": now + timedelta(days=1),
             "due_at": now - timedelta(minutes=1, seconds=n), "state": "pending", "created_at": now}
            for n in range(ROWS)])
        return set(session.execute(select(scheduled.c.id)).scalars())


def plain_lock(query, session):
    """``skip_locked`` replaced by a plain FOR UPDATE: claimers wait for each other."""
    return query.with_for_update()


def no_lock(query, session):
    """``skip_locked`` replaced by no lock at all."""
    return query


def lock_timed_out(error: BaseException) -> bool:
    return isinstance(error, OperationalError) and isinstance(error.orig, psycopg2.errors.LockNotAvailable)


def assert_second_claim_waits(db, claim_first, claim_second):
    """A claims and keeps its transaction open; B's claim waits on A's rows
    (cut short by a lock_timeout) instead of skipping them."""
    first = db()
    try:
        claim_first(first)
        with pytest.raises(OperationalError) as raised, transaction(db) as second:
            second.execute(text("SET LOCAL lock_timeout = '300ms'"))     # the wait, cut short
            claim_second(second)
        assert lock_timed_out(raised.value)
    finally:
        first.rollback()
        first.close()


def delivery_rows(db) -> dict:
    with transaction(db) as session:
        return {row.id: row for row in session.execute(select(deliveries_table))}


# -- deliveries: two senders ----------------------------------------------------------
@pytest.mark.timeout(30)
def test_a_second_sender_skips_the_rows_of_an_open_claim_without_waiting(pg, due_deliveries):
    _engine, db = pg
    first = db()
    try:
        claimed_a = deliveries.claim_due(first, limit=A_TAKES)      # A's transaction stays open
        with transaction(db) as second:                             # lock_timeout: never hangs
            claimed_b = deliveries.claim_due(second)
        first.commit()
    finally:
        first.close()
    ids_a, ids_b = {row.id for row in claimed_a}, {row.id for row in claimed_b}
    assert len(ids_a) == A_TAKES
    assert ids_a.isdisjoint(ids_b)
    assert ids_a | ids_b == due_deliveries                         # each row taken exactly once
    rows = delivery_rows(db)
    lease_a, lease_b = claimed_a[0].lease, claimed_b[0].lease
    assert lease_a != lease_b
    assert {rows[i].lease for i in ids_a} == {lease_a} and {rows[i].lease for i in ids_b} == {lease_b}
    assert {row.status for row in rows.values()} == {"sending"}


@pytest.mark.timeout(30)
def test_without_skip_locked_a_second_sender_waits_for_the_first(pg, due_deliveries, monkeypatch):
    """Companion: a plain FOR UPDATE makes B wait on A's rows (here until its
    lock_timeout fails it): the senders would take turns instead of sharing."""
    _engine, db = pg
    monkeypatch.setattr(deliveries, "skip_locked", plain_lock)
    assert_second_claim_waits(db, lambda session: deliveries.claim_due(session, limit=A_TAKES),
                              deliveries.claim_due)


@pytest.mark.timeout(30)
def test_without_any_lock_a_second_sender_claims_the_rows_of_the_first(pg, due_deliveries, monkeypatch):
    """Companion: with no lock B reads A's rows as due too; its UPDATE waits
    for A's and, once A commits, leases the same rows again: each of A's
    messages would be sent twice."""
    engine, db = pg
    monkeypatch.setattr(deliveries, "skip_locked", no_lock)
    first = db()
    try:
        claimed_a = deliveries.claim_due(first, limit=A_TAKES)
        replica_b, _ = run_until_it_waits(engine, db, deliveries.claim_due, "sender B")
        first.commit()
    finally:
        first.close()
    claimed_b = replica_b.outcome(10)
    ids_a, ids_b = {row.id for row in claimed_a}, {row.id for row in claimed_b}
    assert ids_a <= ids_b                                           # A's rows claimed twice
    assert ids_b == due_deliveries


# -- deliveries: a lease that ran out -------------------------------------------------
def lease_runs_out(db, rows) -> None:
    with transaction(db) as session:
        session.execute(update(deliveries_table).where(deliveries_table.c.id.in_([r.id for r in rows]))
                        .values(next_attempt_at=utcnow() - timedelta(seconds=1)))


def stale_sender_writes(db, rows) -> tuple[set, int]:
    """What sender A, whose lease ran out, tries: renew, then record the sends."""
    with transaction(db) as session:
        renewed = deliveries.renew(session, rows)
        sent = deliveries.mark_sent_many(session, rows)
    return renewed, sent


@pytest.mark.timeout(30)
def test_a_lease_that_ran_out_is_taken_over_and_the_stale_sender_changes_nothing(pg, due_deliveries):
    _engine, db = pg
    with transaction(db) as session:
        claimed_a = deliveries.claim_due(session, limit=A_TAKES)
    lease_runs_out(db, claimed_a)
    with transaction(db) as session:
        claimed_b = deliveries.claim_due(session)
    ids_a = {row.id for row in claimed_a}
    assert ids_a <= {row.id for row in claimed_b}                   # B took A's rows over
    lease_b = claimed_b[0].lease

    assert stale_sender_writes(db, claimed_a) == (set(), 0)
    with transaction(db) as session:
        assert not deliveries.take(session, claimed_a[0])
        deliveries.release(session, claimed_a)
        assert deliveries.mark_failed(session, claimed_a[1], "timeout") is False
    rows = delivery_rows(db)
    for row_id in ids_a:                                            # still B's, untouched
        assert (rows[row_id].status, rows[row_id].lease, rows[row_id].attempts,
                rows[row_id].sent_at, rows[row_id].last_error) == ("sending", lease_b, 0, None, None)
    with transaction(db) as session:
        assert deliveries.mark_sent_many(session, claimed_b) == ROWS
    assert {row.status for row in delivery_rows(db).values()} == {"sent"}


@pytest.mark.timeout(30)
def test_without_the_lease_in_its_writes_a_stale_sender_overwrites_the_new_one(pg, due_deliveries, monkeypatch):
    """Companion: writes that name only the row (not its lease) let A, whose
    lease ran out, renew and record rows that B holds now."""
    _engine, db = pg
    monkeypatch.setattr(deliveries, "_held", lambda rows: (deliveries_table.c.status == "sending")
                        & deliveries_table.c.id.in_([row.id for row in rows]))
    with transaction(db) as session:
        claimed_a = deliveries.claim_due(session, limit=A_TAKES)
    lease_runs_out(db, claimed_a)
    with transaction(db) as session:
        deliveries.claim_due(session)
    renewed, sent = stale_sender_writes(db, claimed_a)
    assert renewed == {row.id for row in claimed_a} and sent == A_TAKES     # B's rows, written by A


# -- reminders: two timers -------------------------------------------------------------
@pytest.mark.timeout(30)
def test_a_second_timer_skips_the_reminders_of_an_open_claim_and_each_is_sent_once(pg, due_reminders):
    _engine, db = pg
    now = utcnow()
    first = db()
    try:
        claimed_a = schedule.claim_due(first, now, limit=A_TAKES)
        with transaction(db) as second:                             # lock_timeout: never hangs
            claimed_b = schedule.claim_due(second, now)
            schedule.mark_many(second, [row.id for row in claimed_b], "sent")
        schedule.mark_many(first, [row.id for row in claimed_a], "sent")
        first.commit()
    finally:
        first.close()
    ids_a, ids_b = {row.id for row in claimed_a}, {row.id for row in claimed_b}
    assert len(ids_a) == A_TAKES and ids_a.isdisjoint(ids_b)
    assert ids_a | ids_b == due_reminders
    with transaction(db) as session:
        assert set(session.execute(select(scheduled.c.state)).scalars()) == {"sent"}
        assert schedule.claim_due(session, utcnow()) == []


@pytest.mark.timeout(30)
def test_without_skip_locked_a_second_timer_waits_for_the_first(pg, due_reminders, monkeypatch):
    """Companion: a plain FOR UPDATE makes B wait (until its lock_timeout)."""
    _engine, db = pg
    monkeypatch.setattr(schedule, "skip_locked", plain_lock)
    now = utcnow()
    assert_second_claim_waits(db, lambda session: schedule.claim_due(session, now, limit=A_TAKES),
                              lambda session: schedule.claim_due(session, now))


@pytest.mark.timeout(30)
def test_without_any_lock_two_timers_claim_the_same_reminders(pg, due_reminders, monkeypatch):
    """Companion: with no lock B claims A's reminders too: sent twice."""
    _engine, db = pg
    monkeypatch.setattr(schedule, "skip_locked", no_lock)
    now = utcnow()
    first = db()
    try:
        claimed_a = schedule.claim_due(first, now, limit=A_TAKES)
        with transaction(db) as second:
            claimed_b = schedule.claim_due(second, now)
    finally:
        first.rollback()
        first.close()
    assert {row.id for row in claimed_a} <= {row.id for row in claimed_b}
