import os
import sys
import warnings
from pathlib import Path

# eventlet announces its maintenance mode on import; nameko 2 needs it.
warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")

# Tests import the project's packages from the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")

import pytest  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from shared.db import make_engine, run_migrations  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def service_db(tmp_path):
    """A migrated SQLite database of one service: ``service_db("capacity")``."""
    engines = []

    def make(service: str) -> sessionmaker:
        engine = make_engine(f"sqlite:///{tmp_path / service}.db")
        run_migrations(engine, ROOT / "services" / service / "migrations")
        engines.append(engine)
        return sessionmaker(engine, expire_on_commit=False)
    yield make
    for engine in engines:
        engine.dispose()


class RecordingOutbox:
    """The real Outbox writing to the real table, remembering what it wrote."""

    def __init__(self, table):
        from shared.outbox import Outbox
        self.messages = []
        self._outbox = Outbox(table, "test-correlation", lambda: None)

    def add(self, session, message, correlation_id=None):
        return self.add_many(session, [(message, correlation_id)])[0]

    def add_many(self, session, messages):
        self.messages.extend(message for message, _ in messages)
        return self._outbox.add_many(session, messages)

    def of_type(self, cls):
        return [m for m in self.messages if isinstance(m, cls)]
