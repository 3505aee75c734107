"""The notification service's entrypoints, in process: a nameko container
with its real Database dependency on a migrated SQLite file and the SMTP
sender replaced, each entrypoint called through nameko's entrypoint_hook.

The container is never started: start() would connect the event and RPC
consumers to RabbitMQ and run the timer. A hook spawns a worker directly,
which needs only the dependencies, so those alone are set up.
"""
import uuid
from datetime import UTC, datetime, timedelta

import eventlet.semaphore
import nameko.testing.waiting
import pytest
from icalendar import Calendar
from nameko.containers import ServiceContainer
from nameko.testing.services import entrypoint_hook, replace_dependencies
from sqlalchemy import select, update

from services.notification.models import attendees, deliveries, scheduled
from services.notification.service import MIGRATIONS, NotificationService
from shared.config import Settings
from shared.contracts import (
    AnnouncementRequested,
    Attendee,
    EventPublished,
    RegistrationErased,
    RegistrationStatusChanged,
    envelope,
)
from shared.db import Database, make_engine, run_migrations, transaction
from shared.errors import EventNotKnownYet, NotFound
from shared.schemas import EventSpec, parse
from tests.support.documents import event_document

DAY_1 = datetime(2030, 3, 18, 7, tzinfo=UTC)


class Sender:
    """Stands in for the SMTP worker: remembers what it was told, sends nothing."""

    def __init__(self):
        self.calls = []

    def queued(self):
        self.calls.append("queued")

    def wake(self):
        self.calls.append("wake")


@pytest.fixture
def sender():
    return Sender()


@pytest.fixture
def container(tmp_path, monkeypatch, sender):
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("NOTIFICATION_DATABASE_URL", f"sqlite:///{tmp_path}/notification.db")
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", "9")
    settings = Settings.from_env("notification")
    engine = make_engine(settings.database_url)
    run_migrations(engine, MIGRATIONS)
    engine.dispose()
    # nameko's waiter blocks on threading.Semaphore, bound when nameko.testing
    # is imported: green only in a monkey-patched process, and the fast tier
    # does not patch. A green one lets the hooks wait without the patching.
    monkeypatch.setattr(nameko.testing.waiting, "Semaphore", eventlet.semaphore.Semaphore)
    container = ServiceContainer(NotificationService, {
        "AMQP_URI": "amqp://guest:guest@localhost:5672/", "SETTINGS": settings,
        "serializer": "json", "max_workers": 10})
    replace_dependencies(container, sender=sender)
    container.dependencies.all.setup()
    yield container
    container.dependencies.all.stop()
    # What stop() does last (its entrypoints, never started, cannot be
    # stopped): lets the hooks' waits on the container end.
    container._died.send(None)


def call(container, method, *args):
    with entrypoint_hook(container, method) as hook:
        return hook(*args)


def database(container):
    return next(dep for dep in container.dependencies if isinstance(dep, Database)).session_factory


def queued(container):
    with transaction(database(container)) as session:
        return [(r.kind, r.registration_id) for r in session.execute(
            select(deliveries).order_by(deliveries.c.id))]


def attendee(container):
    with transaction(database(container)) as session:
        return session.execute(select(attendees)).one()


def event(slug, day_1=DAY_1):
    return parse(EventSpec, event_document(slug=slug, reminders=["P1D"], sessions=[
        {"slug": "day-1", "title": {"en": "Day 1"}, "starts_at": day_1.isoformat(),
         "ends_at": (day_1 + timedelta(hours=8)).isoformat()}]))


def change(slug, status="confirmed", seq=1, registration="r1"):
    return RegistrationStatusChanged(
        registration_id=registration, event_slug=slug, status=status, previous_status="pending",
        status_seq=seq, cause=status,
        attendee=Attendee(name="Amira", email=f"{registration}@example.org", language="en",
                          timezone="Europe/Paris", country=None, category=None, sessions=["day-1"]),
        links={"self": "s", "cancel": "c", "confirm": "f", "calendar": "k", "manage": "m"})


@pytest.fixture
def slug():
    """Parsed event revisions are kept per process by (slug, revision): a
    slug of its own for each test's database."""
    return f"conf-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def seated(container, slug):
    """An event known to the service, with one confirmed seat."""
    call(container, "on_event_published", envelope(EventPublished(event=event(slug), revision=1)))
    call(container, "on_status_changed", [envelope(change(slug), "correlation-1")])


def test_a_status_change_queues_its_message_and_tells_the_sender(container, sender, slug):
    call(container, "on_event_published", envelope(EventPublished(event=event(slug), revision=1)))
    assert sender.calls == []                     # a first description tells nobody
    call(container, "on_status_changed", [envelope(change(slug), "correlation-1")])
    assert queued(container) == [("seat_confirmed", "r1")]
    assert sender.calls == ["queued"]
    with transaction(database(container)) as session:
        content = session.execute(select(deliveries.c.content)).scalar_one()
    assert content["correlation_id"] == "correlation-1"


def test_a_message_delivered_twice_is_handled_once(container, sender, slug):
    call(container, "on_event_published", envelope(EventPublished(event=event(slug), revision=1)))
    body = envelope(change(slug))
    call(container, "on_status_changed", [body, body])
    call(container, "on_status_changed", [body])
    assert queued(container) == [("seat_confirmed", "r1")]
    assert sender.calls == ["queued"]


def test_a_batch_of_changes_queues_each_and_tells_the_sender_once(container, sender, slug):
    call(container, "on_event_published", envelope(EventPublished(event=event(slug), revision=1)))
    call(container, "on_status_changed", [envelope(change(slug, registration="r1")),
                                          envelope(change(slug, "waitlisted", registration="r2"))])
    assert sorted(queued(container)) == [("seat_confirmed", "r1"), ("waitlisted", "r2")]
    assert sender.calls == ["queued"]


def test_a_moved_session_is_queued_and_the_sender_told(container, sender, slug, seated):
    moved = EventPublished(event=event(slug, DAY_1 + timedelta(hours=2)), revision=2)
    call(container, "on_event_published", envelope(moved))
    assert queued(container)[-1] == ("session_moved", "r1")
    assert sender.calls == ["queued", "queued"]


def test_a_status_change_for_an_unknown_event_fails_for_a_retry(container, sender, slug):
    with pytest.raises(EventNotKnownYet):
        call(container, "on_status_changed", [envelope(change(slug))])
    assert queued(container) == [] and sender.calls == []


def announcement(slug, announcement_id="a" * 32):
    return AnnouncementRequested(announcement_id=announcement_id, event_slug=slug,
                                 subject={"en": "News"}, body={"en": "Doors at nine."})


def test_a_requested_announcement_is_queued_once_however_often_it_arrives(container, sender, slug,
                                                                          seated):
    body = envelope(announcement(slug))
    call(container, "on_announcement_requested", body)
    call(container, "on_announcement_requested", body)                     # redelivered
    call(container, "on_announcement_requested", envelope(announcement(slug)))   # published twice
    assert [kind for kind, _ in queued(container)].count("announcement") == 1
    assert sender.calls == ["queued", "queued"]


def test_a_requested_announcement_for_an_unknown_event_fails_for_a_retry(container, sender, slug):
    body = envelope(announcement(slug))
    with pytest.raises(EventNotKnownYet):
        call(container, "on_announcement_requested", body)
    call(container, "on_event_published", envelope(EventPublished(event=event(slug), revision=1)))
    call(container, "on_status_changed", [envelope(change(slug))])
    call(container, "on_announcement_requested", body)                     # the retry is not skipped
    assert ("announcement", "r1") in queued(container)


def test_the_audience_rpc_counts_whom_an_announcement_would_reach(container, slug, seated):
    call(container, "on_status_changed", [envelope(change(slug, "waitlisted", registration="r2"))])
    assert call(container, "audience", slug) == 1
    assert call(container, "audience", "unknown") == 0


def test_an_erasure_is_applied_once_and_a_late_change_restores_nothing(container, sender, slug,
                                                                        seated):
    body = envelope(RegistrationErased(registration_id="r1", event_slug=slug))
    call(container, "on_registration_erased", body)
    before = attendee(container), queued(container)
    call(container, "on_registration_erased", body)
    call(container, "on_status_changed", [envelope(change(slug, "cancelled", seq=2))])
    assert (attendee(container), queued(container)) == before and before[0].erased_at is not None
    with transaction(database(container)) as session:
        assert session.execute(select(deliveries.c.recipient, deliveries.c.content,
                                      deliveries.c.status)).one() == ("", {}, "withdrawn")
    assert sender.calls == ["queued"]                          # no webhooks: nothing new to send


def test_the_calendar_rpc_gives_icalendar_text(container, slug, seated):
    text = call(container, "calendar", "r1")
    [entry] = Calendar.from_ical(text).walk("VEVENT")
    assert entry["UID"] == "r1.day-1@event-registration"
    assert entry.decoded("DTSTART") == DAY_1
    with pytest.raises(NotFound):
        call(container, "calendar", "nobody")


def test_send_scheduled_turns_a_due_reminder_into_a_delivery_once(container, sender, slug, seated):
    with transaction(database(container)) as session:
        session.execute(update(scheduled).values(due_at=datetime.now(UTC) - timedelta(minutes=1)))
    call(container, "send_scheduled")
    assert queued(container) == [("seat_confirmed", "r1"), ("reminder", "r1")]
    assert sender.calls == ["queued", "wake"]
    call(container, "send_scheduled")
    assert len(queued(container)) == 2 and sender.calls == ["queued", "wake"]
    with transaction(database(container)) as session:
        assert session.execute(select(scheduled.c.state)).scalars().all() == ["sent"]


def test_ping_answers_when_the_database_does(container):
    assert call(container, "ping") is True
