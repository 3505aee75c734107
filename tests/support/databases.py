"""Databases for the tests: PostgreSQL (whether it is reachable, and databases
of the tests' own, created and dropped through the admin URL,
TEST_POSTGRES_URL), and a shared table as a service's migrations build it."""
from __future__ import annotations

import os
import uuid

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def postgres_available() -> bool:
    try:
        import psycopg2
        psycopg2.connect(POSTGRES_ADMIN_URL, connect_timeout=3).close()
        return True
    except Exception:
        return False


class PostgresDatabases:
    def __init__(self, names):
        self.names = {name: f"evreg_test_{name}_{uuid.uuid4().hex[:8]}" for name in names}

    def _admin(self, sql):
        import psycopg2
        connection = psycopg2.connect(POSTGRES_ADMIN_URL)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
        finally:
            connection.close()

    def create(self):
        for database in self.names.values():
            self._admin(f'CREATE DATABASE "{database}"')
        return self

    def url(self, name) -> str:
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
        return f"{base}/{self.names[name]}"

    def drop(self):
        for database in self.names.values():
            try:
                self._admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            except Exception:
                pass


def require_postgres() -> None:
    """make test starts PostgreSQL: its absence is a failure, not a skip."""
    import pytest
    if not postgres_available():
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}; "
                    "make test starts it (tests/start-services.sh)")


def migrated_table(folder, service: str, make_table):
    """``make_table(MetaData())`` (a table every service shares, such as the
    outbox) checked against the one ``service``'s migrations build on SQLite
    in ``folder``: Alembic finds no difference. Returns the code's table, the
    reflected one and the dialect."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import MetaData

    from shared.db import make_engine, run_migrations
    from tests.support.paths import ROOT

    engine = make_engine(f"sqlite:///{folder}/{service}.db")
    try:
        run_migrations(engine, ROOT / "services" / service / "migrations")
        metadata = MetaData()
        table = make_table(metadata)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={
                "compare_type": True,
                "include_name": lambda name, kind, parent: kind != "table" or name == table.name})
            assert compare_metadata(context, metadata) == []
            reflected = MetaData()
            reflected.reflect(connection, only=[table.name])
        return table, reflected.tables[table.name], engine.dialect
    finally:
        engine.dispose()
