import pytest


@pytest.fixture
def db(service_db):
    """A migrated notification database (SQLite)."""
    return service_db("notification")
