"""Database helpers: engines that are safe under eventlet, transactions, migrations.

SQLite is the embedded default: one connection per process (green threads
queue for it instead of deadlocking on the file lock) and every transaction
starts with BEGIN IMMEDIATE so that writers across processes serialize instead
of failing on lock upgrades. PostgreSQL uses psycopg2 made green by psycogreen
(patched at start-up, shared/startup.py); a plain ``postgresql://`` URL selects it.
"""
from __future__ import annotations

import contextlib
import fcntl
from datetime import UTC
from pathlib import Path
from typing import Any, cast

from nameko.extensions import DependencyProvider
from sqlalchemy import DateTime, TypeDecorator, create_engine, event, text
from sqlalchemy.engine import Connection, CursorResult, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back as an aware datetime.

    SQLite keeps no offset: without this, 10:00+03:00 would come back as
    10:00 and be taken for UTC."""
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give it a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def skip_locked(query, session: Session):
    """Rows for this transaction alone: other claimers skip them (PostgreSQL).
    SQLite needs nothing: BEGIN IMMEDIATE already serializes writers."""
    return query if is_sqlite(session.get_bind()) else query.with_for_update(skip_locked=True)


def locked(query, session: Session, read: bool = False):
    """Rows locked until this transaction ends: ``FOR UPDATE`` (``FOR SHARE``
    with ``read``) on PostgreSQL; SQLite's BEGIN IMMEDIATE serializes writers."""
    return query if is_sqlite(session.get_bind()) else query.with_for_update(read=read)


def make_engine(url: str, pool_size: int = 10) -> Engine:
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    # No pre-ping: it costs a round trip per transaction. A connection found
    # dead fails its transaction, SQLAlchemy then discards the pool's stale
    # connections, and every caller retries (``retrying``, the loops' next tick).
    return create_engine(parsed, pool_size=pool_size, max_overflow=pool_size,
                         pool_recycle=1800)


def _sqlite_engine(url) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=60,
                           connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Take transaction control away from pysqlite so BEGIN IMMEDIATE works.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextlib.contextmanager
def transaction(session_factory: sessionmaker):
    """One unit of work: committed on success, rolled back on any error."""
    session: Session = session_factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def rowcount(result) -> int:
    """How many rows an INSERT, UPDATE or DELETE touched."""
    return cast(CursorResult, result).rowcount


def _upsert_dialect(session: Session) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def insert_if_absent(session: Session, table, **values) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True if this call inserted the row.
    On PostgreSQL a concurrent insert of the same key is waited for, so the
    loser finds the winner's row instead of failing."""
    insert = _upsert_dialect(session)
    result = session.execute(insert(table).values(**values).on_conflict_do_nothing())
    return rowcount(result) == 1


def insert_absent(session: Session, table, rows: list[dict], returning) -> list:
    """Many rows in one INSERT ... ON CONFLICT DO NOTHING; returns the
    ``returning`` column of the rows this call inserted (the others existed,
    or were inserted by a concurrent transaction that committed first). Give
    rows in a fixed order (sorted by key) so that two such inserts over the
    same keys cannot deadlock."""
    if not rows:
        return []
    insert = _upsert_dialect(session)
    return list(session.execute(
        insert(table).values(rows).on_conflict_do_nothing().returning(returning)).scalars())


def retrying(work, attempts: int = 3, pause: float = 0.0):
    """``work()`` again after a lost connection, a deadlock or a clash with a
    concurrent twin (each a reason to look at the current state anew)."""
    from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
    for attempt in range(attempts):
        try:
            return work()
        except (IntegrityError, OperationalError, InterfaceError):
            if attempt == attempts - 1:
                raise
            if pause:
                import eventlet
                eventlet.sleep(min(2.0, pause * 2 ** attempt))


def in_transaction(session_factory: sessionmaker, work, attempts: int = 3, pause: float = 0.0):
    """``work(session)`` in one transaction, run again (``retrying``) after a
    lost connection, a deadlock or a clash with a concurrent twin."""
    def once():
        with transaction(session_factory) as session:
            return work(session)
    return retrying(once, attempts, pause)


def ping(session_factory: sessionmaker) -> bool:
    """Readiness: the database answers a query."""
    with transaction(session_factory) as session:
        session.execute(text("SELECT 1"))
    return True


def check_reachable(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def run_migrations(engine: Engine, migrations_dir: Path) -> None:
    """Bring the schema to the newest Alembic revision.

    Replicas start together, so upgrades are serialized: an advisory lock on
    PostgreSQL, a file lock beside the SQLite database.
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    with _migration_lock(engine):
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")


@contextlib.contextmanager
def _migration_lock(engine: Engine):
    if is_sqlite(engine):
        lock_path = f"{engine.url.database or 'memory'}.migrate.lock"
        with open(lock_path, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(724201)"))
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(724201)"))
            connection.commit()


class Database(DependencyProvider):
    """Gives each worker the service's session factory.

    Workers open their own transactions with ``transaction(self.db)`` so that a
    state change is committed inside the service method, before nameko acks.
    """

    def setup(self):
        settings = self.container.config["SETTINGS"]
        pool_size = max(10, self.container.config.get("max_workers", 10))
        self.engine = make_engine(settings.database_url, pool_size=pool_size)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)

    def stop(self):
        self.engine.dispose()

    def get_dependency(self, worker_ctx):
        return self.session_factory
