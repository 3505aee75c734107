"""nameko entrypoints of the registration service: translate, call the domain, commit."""
from __future__ import annotations

from pathlib import Path

from nameko.dependency_providers import Config
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError

from shared.contracts import SEAT_DECIDED, SeatDecided
from shared.db import Database, ping, transaction
from shared.errors import DomainError, Invalid
from shared.inbox import process_once
from shared.messaging import event_handler, rpc
from shared.logs import Correlation
from shared.metrics import REGISTRATIONS, EntrypointMetrics
from shared.outbox import OutboxRelay
from shared.schemas import EventSpec, RegistrationRequest, field_errors, parse

from . import catalogue, registrations
from .models import inbox, outbox

MIGRATIONS = Path(__file__).parent / "migrations"


def _parse(model, data):
    try:
        return parse(model, data)
    except ValidationError as exc:
        raise Invalid("invalid request", field_errors(exc)) from None


class Service:
    name = "registration"

    config = Config()
    db = Database()
    outbox = OutboxRelay(outbox)
    metrics = EntrypointMetrics()
    correlation = Correlation()

    @property
    def links(self):
        settings = self.config["SETTINGS"]
        return registrations.Links(settings.public_base_url, settings.secret_key)

    def _in_transaction(self, work, retries: int = 2):
        """Run ``work(session)`` in one transaction. A unique-constraint clash
        means a concurrent twin won; a dropped connection or a deadlock is
        worth another go: run again so the domain sees the current state."""
        for attempt in range(retries + 1):
            try:
                with transaction(self.db) as session:
                    return work(session)
            except (IntegrityError, OperationalError):
                if attempt == retries:
                    raise

    # -- RPC: organisers ---------------------------------------------------
    @rpc(expected_exceptions=DomainError)
    def create_event(self, document: dict) -> dict:
        spec = _parse(EventSpec, document)
        return self._in_transaction(lambda s: catalogue.create_event(s, self.outbox, spec))

    @rpc(expected_exceptions=DomainError)
    def update_event(self, slug: str, changes: dict) -> dict:
        return self._in_transaction(lambda s: catalogue.update_event(
            s, self.outbox, slug, changes, registrations.choices_in_use))

    @rpc(expected_exceptions=DomainError)
    def stats(self, slug: str) -> dict:
        with transaction(self.db) as session:
            return registrations.stats(session, slug)

    @rpc(expected_exceptions=DomainError)
    def get_event(self, slug: str) -> dict:
        def read(session):
            spec, revision = catalogue.load_event(session, slug)
            return {**spec.model_dump(mode="json"), "revision": revision}
        return self._in_transaction(read)

    # -- RPC: attendees ----------------------------------------------------
    @rpc(expected_exceptions=DomainError)
    def register(self, slug: str, body: dict, idempotency_key: str | None = None) -> dict:
        request = _parse(RegistrationRequest, body)
        answer = self._in_transaction(lambda s: registrations.register(
            s, self.outbox, self.links, slug, request, idempotency_key))
        REGISTRATIONS.labels("pending").inc()
        return answer

    @rpc(expected_exceptions=DomainError)
    def list_registrations(self, slug: str, status: str | None = None) -> list:
        with transaction(self.db) as session:
            return registrations.list_for_event(session, slug, status)

    @rpc(expected_exceptions=DomainError)
    def get_registration(self, registration_id: str) -> dict:
        return self._in_transaction(lambda s: registrations.get_registration(s, registration_id))

    @rpc(expected_exceptions=DomainError)
    def cancel(self, registration_id: str) -> dict:
        return self._in_transaction(lambda s: registrations.cancel(
            s, self.outbox, self.links, registration_id))

    @rpc(expected_exceptions=DomainError)
    def confirm(self, registration_id: str) -> dict:
        return self._in_transaction(lambda s: registrations.confirm(s, self.outbox, registration_id))

    @rpc(expected_exceptions=DomainError)
    def ping(self) -> bool:
        return ping(self.db)

    # -- events from capacity ------------------------------------------------
    @event_handler("capacity", SEAT_DECIDED)
    def on_seat_decided(self, body: dict) -> None:
        decision, applied = process_once(
            self.db, inbox, body, SeatDecided, "on_seat_decided",
            lambda s, m: registrations.apply_seat_decision(s, self.outbox, self.links, m))
        if applied:
            REGISTRATIONS.labels(decision.outcome).inc()
