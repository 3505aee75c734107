"""What the services really return fits the gateway's answer models, byte
for byte: their real RPC methods (nameko's worker_factory, on SQLite) fed
through ``http_api.answer``, which refuses any field its model lacks."""
import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from nameko.testing.services import worker_factory

from services.capacity import seats
from services.capacity.models import outbox as capacity_outbox
from services.capacity.service import CapacityService
from services.gateway import views
from services.gateway.http_api import answer
from services.gateway.models import (
    ApiKey,
    AuditEntry,
    Event,
    Organisation,
    Registration,
    RegistrationAccepted,
    Stats,
    Webhook,
)
from services.notification.service import NotificationService
from services.registration.models import outbox as registration_outbox
from services.registration.organisations import INSTALLATION
from services.registration.service import RegistrationService
from shared.config import Settings
from shared.contracts import RegistrationRequested
from shared.db import transaction
from shared.schemas import EventSpec, parse
from tests.conftest import RecordingOutbox
from tests.support.documents import event_document


def passes(shape, data):
    """``data`` answered through ``shape`` is what the service said, unchanged."""
    response = answer(shape, data)
    assert response.get_data(as_text=True) == json.dumps(data, ensure_ascii=False)


@pytest.fixture
def services(service_db):
    settings = SimpleNamespace(public_base_url="http://localhost:8000", secret_key="s",
                               webhook_allow_private=True, smtp_from="events@example.org")
    return SimpleNamespace(
        registration=worker_factory(RegistrationService, db=service_db("registration"),
                                    outbox=RecordingOutbox(registration_outbox), settings=settings),
        capacity=worker_factory(CapacityService, db=service_db("capacity"),
                                outbox=RecordingOutbox(capacity_outbox)),
        notification=worker_factory(NotificationService, db=service_db("notification"),
                                    settings=settings))


def test_events_registrations_stats_and_webhooks_fit_their_models(services):
    document = event_document(slug="conf", venue="Istanbul", confirmation_window="PT48H",
                              categories=[{"slug": "local", "capacity": 5}],
                              questions=[{"slug": "topic", "label": {"en": "Topic"}}])
    registration, capacity = services.registration, services.capacity
    passes(Event, registration.create_event(document, None, INSTALLATION))
    for event in registration.list_events(INSTALLATION):
        passes(Event, event)
    event = registration.get_event("conf")
    passes(Event, event)
    passes(Event, views.public_event(event))
    passes(Event, registration.update_event("conf", {"capacity": 20}, INSTALLATION))
    passes(Organisation, registration.create_organisation({"slug": "c", "name": "C"}, INSTALLATION))
    passes(ApiKey, registration.create_key("c", {"name": "k", "scopes": ["events"]}, INSTALLATION))
    for key in registration.list_keys("c", INSTALLATION):
        passes(ApiKey, key)

    [result] = registration.register_many([{
        "slug": "conf", "body": {"name": "Amira", "email": "amira@example.org", "category": "local",
                                 "answers": {"topic": "seats"}, "country": "PS"},
        "idempotency_key": "k1", "correlation_id": "c1"}])
    passes(RegistrationAccepted, json.loads(json.dumps(result["answer"])))   # as RPC sends it
    registration_id = result["answer"]["id"]
    passes(Registration, registration.get_registration(registration_id))
    passes(list[Registration],
           registration.list_registrations("conf", {}, 100, None, INSTALLATION, "read")["rows"])
    passes(list[AuditEntry], registration.audit_trail(INSTALLATION, None, 100, None)["entries"])

    with transaction(capacity.db) as session:
        seats.apply_event(session, capacity.outbox, parse(EventSpec, document), 1)
        seats.reserve(session, capacity.outbox, RegistrationRequested(
            registration_id=registration_id, event_slug="conf", category="local",
            sessions=["day-1"], requested_at=datetime.now(UTC)))
    event_seats = capacity.event_seats("conf")
    assert event_seats["pools"]["category:local"]["used"] == 1
    passes(Event, {**event, "seats": event_seats})
    passes(Stats, views.stats("conf", registration.stats("conf"), event_seats,
                              services.notification.message_counts("conf"),
                              lambda code: Settings.from_env().country_names.name(code, "en"),
                              event["sessions"]))
    passes(Registration, registration.unfollow(registration_id))
    passes(Registration, registration.cancel(registration_id))

    hook = services.notification.add_webhook("conf", "https://203.0.113.5/hook")
    passes(Webhook, hook)
    passes(list[Webhook], services.notification.list_webhooks("conf"))
