"""Two replicas race for an event's last seat, and each barrier against
overselling is made to do the work alone:

* PostgreSQL, the conditional pool update (``used + n <= capacity``) with the
  event's row lock bypassed;
* PostgreSQL, the event's row lock with the conditional update removed;
* SQLite, BEGIN IMMEDIATE between two engines on one file (threads, and two
  real processes racing many times).

Every mechanism has a companion test (``test_without_…``) that takes it away
and asserts that the bad outcome then does happen: the race is real.
"""
from __future__ import annotations

import json
import multiprocessing
import threading
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from services.capacity import seats, store
from services.capacity.models import outbox as outbox_table
from services.capacity.models import reservations, seat_events, seat_pools
from shared.contracts import RegistrationRequested, SeatRules
from shared.db import make_engine, run_migrations, transaction
from shared.outbox import Outbox
from tests.support.contention import InThread, postgres_service_db, run_until_it_waits
from tests.support.paths import ROOT

CAPACITY = 3
OUTBOX = Outbox(outbox_table, "contention", lambda: None)


@pytest.fixture(scope="module")
def pg():
    with postgres_service_db("capacity") as (engine, db):
        yield engine, db


@pytest.fixture
def sqlite_path(tmp_path):
    path = tmp_path / "capacity.db"
    engine = make_engine(f"sqlite:///{path}")
    run_migrations(engine, ROOT / "services" / "capacity" / "migrations")
    engine.dispose()
    return path


# -- the event, the requests, what was decided -------------------------------------
def request(slug: str, registration_id: str) -> RegistrationRequested:
    return RegistrationRequested(registration_id=registration_id, event_slug=slug, category=None,
                                 sessions=[], requested_at=datetime.now(UTC))


def new_event(db: sessionmaker, capacity: int, taken: int) -> str:
    """A new event (with a waiting list) of ``capacity`` seats, ``taken`` of them given."""
    slug = f"race-{uuid.uuid4().hex[:8]}"
    rules = SeatRules(capacity=capacity, waitlist=True, confirmation_window=None,
                      categories={}, sessions={})
    with transaction(db) as session:
        seats.apply_rules(session, OUTBOX, slug, rules, revision=1)
        if taken:
            seats.reserve_many(session, OUTBOX, [(request(slug, f"{slug}-early-{n}"), None)
                                                 for n in range(taken)])
    return slug


def event_at_its_last_seat(db: sessionmaker) -> str:
    return new_event(db, CAPACITY, taken=CAPACITY - 1)


def used(db: sessionmaker, slug: str) -> int:
    with transaction(db) as session:
        return session.execute(select(seat_pools.c.used).where(
            seat_pools.c.event_slug == slug, seat_pools.c.pool == "event")).scalar_one()


def state(db: sessionmaker, registration_id: str) -> str | None:
    with transaction(db) as session:
        return session.execute(select(reservations.c.state).where(
            reservations.c.registration_id == registration_id)).scalar()


def outbox_rows_about(db: sessionmaker, registration_id: str) -> int:
    with transaction(db) as session:
        bodies = session.execute(select(outbox_table.c.body)).scalars()
        return sum(json.loads(body)["data"]["registration_id"] == registration_id for body in bodies)


# -- the mechanisms, and the same with the mechanism taken away --------------------
def lock_event_without_lock(session, slug, must_exist=True):
    """``store.lock_event`` reading the event's row without locking it."""
    row = session.execute(select(seat_events).where(seat_events.c.event_slug == slug)).first()
    assert row is not None or not must_exist
    return row


def take_counted_without_guard(session, slug, taken):
    """``store.take_counted`` without its ``used + n <= capacity`` condition."""
    for key, count in sorted(taken.items()):
        if count > 0:
            session.execute(update(seat_pools).where(seat_pools.c.event_slug == slug,
                                                     seat_pools.c.pool == key)
                            .values(used=seat_pools.c.used + count))


def both_read_before_either_writes(monkeypatch, take_counted):
    """Each reserve_many waits, having read the pools and decided, until the
    other has too; only then do they write the pools."""
    barrier = threading.Barrier(2, timeout=10)

    def take_after_both_decided(session, slug, taken):
        barrier.wait()
        take_counted(session, slug, taken)
    monkeypatch.setattr(store, "take_counted", take_after_both_decided)


def race_two_replicas(db: sessionmaker, slug: str) -> dict:
    """Two transactions (two sessions, two connections) each ask for one seat
    at once; returns each one's outcome: None (committed) or its error."""
    def replica(registration_id):
        def work():
            with transaction(db) as session:
                seats.reserve_many(session, OUTBOX, [(request(slug, registration_id), None)])
        return InThread(work, registration_id)
    contenders = {name: replica(f"{slug}-{name}") for name in ("a", "b")}
    outcomes = {}
    for name, contender in contenders.items():
        assert contender.join(20), f"replica {name} did not finish"
        outcomes[f"{slug}-{name}"] = contender.error
    return outcomes


# -- 1. PostgreSQL: the conditional update alone -----------------------------------------
@pytest.mark.timeout(60)
def test_the_pool_guard_alone_stops_two_replicas_taking_the_last_seat(pg, monkeypatch):
    """Event lock bypassed: both replicas read used = capacity - 1 and both
    decide "seated". PostgreSQL makes the second UPDATE wait for the first to
    commit and then re-evaluates its WHERE on the new row: 0 rows, so
    SeatInvariantBroken and a rollback of everything that replica did."""
    _engine, db = pg
    slug = event_at_its_last_seat(db)
    monkeypatch.setattr(store, "lock_event", lock_event_without_lock)
    both_read_before_either_writes(monkeypatch, store.take_counted)

    outcomes = race_two_replicas(db, slug)

    winners = [rid for rid, error in outcomes.items() if error is None]
    losers = [rid for rid, error in outcomes.items() if error is not None]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert isinstance(outcomes[losers[0]], store.SeatInvariantBroken)
    assert used(db, slug) == CAPACITY
    assert state(db, winners[0]) == "confirmed"
    assert state(db, losers[0]) is None                  # no reservation row
    assert outbox_rows_about(db, losers[0]) == 0         # no decision announced
    assert outbox_rows_about(db, winners[0]) == 1


@pytest.mark.timeout(60)
def test_without_the_guard_or_the_lock_the_race_oversells(pg, monkeypatch):
    """Companion: the same race with the conditional update removed too.
    Both replicas commit "confirmed" and the pool holds capacity + 1."""
    _engine, db = pg
    slug = event_at_its_last_seat(db)
    monkeypatch.setattr(store, "lock_event", lock_event_without_lock)
    both_read_before_either_writes(monkeypatch, take_counted_without_guard)

    outcomes = race_two_replicas(db, slug)

    assert list(outcomes.values()) == [None, None]
    assert used(db, slug) == CAPACITY + 1                # oversold
    assert [state(db, rid) for rid in outcomes] == ["confirmed", "confirmed"]


# -- 1b. PostgreSQL: the event's row lock alone -------------------------------------------
def second_replica_while_first_is_open(engine, db, slug, monkeypatch, lock_event):
    """Replica A decides the last seat and keeps its transaction open; replica
    B then asks for a seat. Returns (A's session, B's thread, the statement B
    waits in while A is open)."""
    monkeypatch.setattr(store, "take_counted", take_counted_without_guard)
    monkeypatch.setattr(store, "lock_event", lock_event)
    first = db()
    seats.reserve_many(first, OUTBOX, [(request(slug, f"{slug}-a"), None)])
    replica_b, waiting_in = run_until_it_waits(engine, db, lambda session: seats.reserve_many(
        session, OUTBOX, [(request(slug, f"{slug}-b"), None)]), "replica B")
    assert not replica_b.done.is_set(), f"B went through while A was open: {replica_b.error!r}"
    return first, replica_b, waiting_in


@pytest.mark.timeout(60)
def test_the_event_lock_alone_makes_the_second_replica_wait_its_turn(pg, monkeypatch):
    """Conditional update removed: only the event's row lock stands between
    two full reserve_many calls. B blocks on the seat_events row (it has not
    read the pools) until A commits, then finds the event full: waitlisted."""
    engine, db = pg
    slug = event_at_its_last_seat(db)
    first, replica_b, waiting_in = second_replica_while_first_is_open(
        engine, db, slug, monkeypatch, store.lock_event)
    try:
        assert "FROM seat_events" in waiting_in and "FOR UPDATE" in waiting_in, waiting_in
        first.commit()
    finally:
        first.close()
    replica_b.outcome(10)
    assert state(db, f"{slug}-a") == "confirmed"
    assert state(db, f"{slug}-b") == "waitlisted"
    assert used(db, slug) == CAPACITY


@pytest.mark.timeout(60)
def test_without_the_event_lock_or_the_guard_the_second_replica_oversells(pg, monkeypatch):
    """Companion: with the lock bypassed as well, B reads the pools while A is
    still open, decides "seated", and the only lock it meets is the pool row
    A wrote; once A commits, B's unguarded update goes through: oversold."""
    engine, db = pg
    slug = event_at_its_last_seat(db)
    first, replica_b, waiting_in = second_replica_while_first_is_open(
        engine, db, slug, monkeypatch, lock_event_without_lock)
    try:
        assert "UPDATE seat_pools" in waiting_in, waiting_in
        first.commit()
    finally:
        first.close()
    replica_b.outcome(10)
    assert [state(db, f"{slug}-{name}") for name in "ab"] == ["confirmed", "confirmed"]
    assert used(db, slug) == CAPACITY + 1                # oversold


# -- 2. SQLite: BEGIN IMMEDIATE between two engines on one file -----------------------
def sqlite_replica(path) -> sessionmaker:
    """What one process of a replica builds: its own engine on the shared file."""
    return sessionmaker(make_engine(f"sqlite:///{path}"), expire_on_commit=False)


def without_begin_immediate(db: sessionmaker) -> sessionmaker:
    """The engine's BEGIN IMMEDIATE taken away: pysqlite's plain (deferred) BEGIN."""
    engine = db.kw["bind"]
    for listener in list(engine.dispatch.begin):
        event.remove(engine, "begin", listener)
    event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN"))
    return db


@pytest.mark.timeout(60)
def test_sqlite_replicas_take_turns_at_the_last_seat(sqlite_path):
    """Replica A (one engine) decides the last seat and keeps its transaction
    open; replica B (another engine on the same file) cannot even begin until
    A commits, then finds the event full."""
    first_db, second_db = sqlite_replica(sqlite_path), sqlite_replica(sqlite_path)
    try:
        slug = event_at_its_last_seat(first_db)
        beginning, begun = threading.Event(), threading.Event()
        second_engine = second_db.kw["bind"]
        # its connection taken from the pool, just before BEGIN; and BEGIN done
        event.listen(second_engine, "checkout", lambda *_args: beginning.set())
        event.listen(second_engine, "begin", lambda _connection: begun.set())   # after BEGIN IMMEDIATE

        first = first_db()
        try:
            seats.reserve_many(first, OUTBOX, [(request(slug, f"{slug}-a"), None)])

            def second():
                with transaction(second_db) as session:
                    seats.reserve_many(session, OUTBOX, [(request(slug, f"{slug}-b"), None)])
            replica_b = InThread(second, "replica-b")
            assert beginning.wait(10)
            # B is inside BEGIN IMMEDIATE, waiting for A's write lock (its
            # busy timeout is 30 s): it has not begun, let alone read the pools.
            assert not begun.wait(0.5) and not replica_b.done.is_set()
            first.commit()
        finally:
            first.close()
        replica_b.outcome(10)
        assert begun.is_set()
        assert state(first_db, f"{slug}-a") == "confirmed"
        assert state(first_db, f"{slug}-b") == "waitlisted"
        assert used(first_db, slug) == CAPACITY
    finally:
        first_db.kw["bind"].dispose()
        second_db.kw["bind"].dispose()


@pytest.mark.timeout(60)
def test_without_begin_immediate_sqlite_replicas_do_not_take_turns(sqlite_path, monkeypatch):
    """Companion: with a deferred BEGIN both replicas read the pools in their
    own transactions, then both write: they do not queue, one of them fails
    with "database is locked" (SQLite cannot upgrade a stale read snapshot)."""
    first_db = without_begin_immediate(sqlite_replica(sqlite_path))
    second_db = without_begin_immediate(sqlite_replica(sqlite_path))
    try:
        slug = event_at_its_last_seat(first_db)
        both_read_before_either_writes(monkeypatch, store.take_counted)
        outcomes = {}
        for name, db in (("a", first_db), ("b", second_db)):
            def work(db=db, rid=f"{slug}-{name}"):
                with transaction(db) as session:
                    seats.reserve_many(session, OUTBOX, [(request(slug, rid), None)])
            outcomes[name] = InThread(work, name)
        errors = [contender.error for contender in outcomes.values() if contender.join(40)]
        assert len(errors) == 2, "a replica did not finish"
        failed = [error for error in errors if error is not None]
        assert len(failed) == 1, errors
        assert isinstance(failed[0], OperationalError) and "database is locked" in str(failed[0])
        assert used(first_db, slug) == CAPACITY
    finally:
        first_db.kw["bind"].dispose()
        second_db.kw["bind"].dispose()


ROUNDS = 25            # events raced for
PER_ROUND = 3          # requests each process makes for each event
SMALL = 2              # seats of each event


def _race_process(path: str, name: str, slugs: list[str], barrier, results, deferred: bool) -> None:
    """One replica in a process of its own: for each event, once the other
    process is ready too, ask for PER_ROUND seats, one transaction each."""
    db = sqlite_replica(path)
    if deferred:
        without_begin_immediate(db)
    errors: list[str] = []
    try:
        for slug in slugs:
            barrier.wait(timeout=30)
            for n in range(PER_ROUND):
                try:
                    with transaction(db) as session:
                        seats.reserve_many(session, OUTBOX, [(request(slug, f"{slug}-{name}-{n}"), None)])
                except Exception as error:
                    errors.append(f"{type(error).__name__}: {error}")
    finally:
        db.kw["bind"].dispose()
        results.put((name, errors))


def race_two_processes(path, slugs: list[str], deferred: bool = False) -> dict:
    """Two real processes race for the events; returns each one's errors."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [context.Process(target=_race_process, args=(str(path), name, slugs, barrier, results, deferred))
                 for name in ("p1", "p2")]
    for process in processes:
        process.start()
    reports = dict(results.get(timeout=90) for _ in processes)
    for process in processes:
        process.join(10)
        assert process.exitcode == 0
    return reports


@pytest.mark.timeout(120)
def test_two_processes_racing_on_small_sqlite_pools_never_oversell(sqlite_path):
    """Two real processes, each with its own engine on the file, race for
    ROUNDS events of SMALL seats; every event ends exactly full, every
    request decided, and no transaction failed (the conditional update never
    had to stop anything: BEGIN IMMEDIATE did the work)."""
    db = sqlite_replica(sqlite_path)
    try:
        slugs = [new_event(db, SMALL, taken=0) for _ in range(ROUNDS)]
        assert race_two_processes(sqlite_path, slugs) == {"p1": [], "p2": []}
        with transaction(db) as session:
            pools = {row.event_slug: row for row in session.execute(
                select(seat_pools).where(seat_pools.c.pool == "event"))}
            counts = dict(session.execute(select(reservations.c.state, func.count())
                                          .group_by(reservations.c.state)).all())
        for slug in slugs:
            assert pools[slug].used == pools[slug].capacity, slug      # full, never over
        assert counts == {"confirmed": ROUNDS * SMALL,
                          "waitlisted": ROUNDS * (2 * PER_ROUND - SMALL)}
    finally:
        db.kw["bind"].dispose()


@pytest.mark.timeout(120)
def test_without_begin_immediate_racing_processes_fail_instead_of_queueing(sqlite_path):
    """Companion: the same race with a deferred BEGIN. The processes really
    do overlap: many transactions fail with "database is locked" (by hand,
    72 of 150 failed). Not oversold even so: SQLite will not let a stale
    read snapshot write, and the conditional update stands behind that."""
    db = sqlite_replica(sqlite_path)
    try:
        slugs = [new_event(db, SMALL, taken=0) for _ in range(ROUNDS)]
        errors = [error for errors in race_two_processes(sqlite_path, slugs, deferred=True).values()
                  for error in errors]
        assert errors and all("database is locked" in error for error in errors)
        assert all(used(db, slug) <= SMALL for slug in slugs)
    finally:
        db.kw["bind"].dispose()
