import pytest

from services.registration.models import outbox as outbox_table
from tests.conftest import RecordingOutbox


@pytest.fixture
def db(service_db):
    """A migrated registration database (SQLite)."""
    return service_db("registration")


@pytest.fixture
def outbox():
    return RecordingOutbox(outbox_table)
