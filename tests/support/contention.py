"""Helpers for the contention tests: a migrated PostgreSQL database of one
service, work run in a thread whose outcome is kept, and work run until it
waits on a lock another transaction holds."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from shared.db import make_engine, run_migrations, transaction
from tests.support.databases import PostgresDatabases, require_postgres
from tests.support.paths import ROOT
from tests.support.waiting import wait_until

# A claim or lock that should never wait fails after this long instead of
# hanging the test (and a regression shows up as LockNotAvailable).
LOCK_TIMEOUT_MS = 3000


@contextlib.contextmanager
def postgres_service_db(service: str, lock_timeout_ms: int = LOCK_TIMEOUT_MS,
                        migrate: bool = True) -> Iterator[tuple[Engine, sessionmaker]]:
    """A fresh PostgreSQL database (with ``service``'s migrations applied unless
    not ``migrate``); every connection of its engine gives up waiting for a
    lock after ``lock_timeout_ms``."""
    require_postgres()
    databases = PostgresDatabases([service]).create()
    engine = make_engine(databases.url(service))

    @event.listens_for(engine, "connect")
    def _lock_timeout(dbapi_connection, _record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
        dbapi_connection.commit()

    try:
        if migrate:
            run_migrations(engine, ROOT / "services" / service / "migrations")
        yield engine, sessionmaker(engine, expire_on_commit=False)
    finally:
        engine.dispose()
        databases.drop()


class InThread:
    """``work()`` in a thread of its own; ``outcome()`` its result or its error."""

    def __init__(self, work: Callable, name: str = "contender"):
        self.result = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)
        self._thread.start()

    def _run(self, work):
        try:
            self.result = work()
        except BaseException as error:    # noqa: B036 - kept and reported by outcome()
            self.error = error
        finally:
            self.done.set()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def outcome(self, timeout: float = 10.0):
        if not self.join(timeout):
            raise AssertionError(f"{self._thread.name} did not finish within {timeout}s")
        if self.error is not None:
            raise self.error
        return self.result


def backend_pid(session: Session) -> int:
    """The PostgreSQL backend serving this session (starts its transaction)."""
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def lock_wait(engine: Engine, pid: int) -> str | None:
    """The statement backend ``pid`` is running while it waits for a lock
    held by another transaction; None when it is not waiting on one."""
    with engine.connect() as connection:
        row = connection.execute(text(
            "SELECT wait_event_type, query FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).first()
    if row is None or row.wait_event_type != "Lock":
        return None
    return str(row.query)


def run_until_it_waits(engine: Engine, db: sessionmaker, work: Callable[[Session], object],
                       name: str, timeout: float = 10.0) -> tuple[InThread, str | None]:
    """``work(session)`` in a transaction of its own, in a thread; returns once
    it waits for a lock another transaction holds (with the statement it waits
    in) or has finished (None)."""
    pid: list[int] = []

    def run():
        with transaction(db) as session:
            pid.append(backend_pid(session))
            return work(session)
    contender = InThread(run, name)
    wait_until(lambda: contender.done.is_set() or (pid and lock_wait(engine, pid[0]) is not None),
               timeout, interval=0.01, message=f"{name} to wait on a lock")
    return contender, lock_wait(engine, pid[0]) if pid else None
