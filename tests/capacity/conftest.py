import pytest

from services.capacity.models import outbox as outbox_table
from tests.conftest import RecordingOutbox


@pytest.fixture
def db(service_db):
    """A migrated SQLite database of the capacity service."""
    return service_db("capacity")


@pytest.fixture
def outbox():
    """The capacity outbox, remembering what was written to it."""
    return RecordingOutbox(outbox_table)
