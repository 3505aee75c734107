"""Each service's Alembic migrations build exactly the schema its models
describe, on SQLite and on PostgreSQL."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared.db import make_engine, run_migrations
from tests.support.databases import PostgresDatabases, require_postgres
from tests.support.paths import ROOT

SERVICES = ("registration", "capacity", "notification")


def models_of(service):
    module = __import__(f"services.{service}.models", fromlist=["metadata"])
    return module.metadata


def assert_matches(engine, service):
    run_migrations(engine, ROOT / "services" / service / "migrations")
    run_migrations(engine, ROOT / "services" / service / "migrations")     # idempotent
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), models_of(service))
    assert differences == []


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_models_on_sqlite(tmp_path, service):
    engine = make_engine(f"sqlite:///{tmp_path}/{service}.db")
    try:
        assert_matches(engine, service)
    finally:
        engine.dispose()


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_models_on_postgres(service):
    require_postgres()
    databases = PostgresDatabases([service]).create()
    engine = make_engine(databases.url(service))
    try:
        assert_matches(engine, service)
    finally:
        engine.dispose()
        databases.drop()
