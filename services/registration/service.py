"""nameko entrypoints of the registration service: translate, call the domain, commit."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import ValidationError

from shared.batches import batch_handler
from shared.config import SettingsProvider
from shared.contracts import SEAT_DECIDED, SeatDecided
from shared.db import Database, in_transaction, ping, transaction
from shared.errors import DomainError, Invalid
from shared.inbox import process_batch
from shared.logs import Correlation
from shared.loop import every
from shared.messaging import rpc
from shared.metrics import REGISTRATIONS, EntrypointMetrics
from shared.outbox import OutboxRelay
from shared.schemas import (
    EventSpec,
    KeyRequest,
    OrganisationRequest,
    RegistrationRequest,
    field_errors,
    parse,
)
from shared.statuses import Status

from . import (
    announcements,
    audit,
    catalogue,
    check_ins,
    decisions,
    organisations,
    privacy,
    registrations,
    reports,
)
from .models import inbox, outbox

MIGRATIONS = Path(__file__).parent / "migrations"
RETENTION_POLL_SECONDS = 3600.0


def received_poll_seconds(settings) -> float:
    """Look for slow decisions a few times per RECEIVED_NOTICE_SECONDS."""
    return min(5.0, max(0.5, settings.received_notice_seconds / 4))


def _parse(model, data):
    try:
        return parse(model, data)
    except ValidationError as exc:
        raise Invalid("invalid request", field_errors(exc)) from None


def _parse_or_error(body) -> RegistrationRequest | Invalid:
    try:
        return _parse(RegistrationRequest, body)
    except Invalid as problem:
        return problem


def problem_of(error: DomainError) -> dict:
    return {"status": error.status, "title": error.title, "detail": error.detail,
            "fields": error.fields}


class RegistrationService:
    name = "registration"

    settings = SettingsProvider()
    db = Database()
    outbox = OutboxRelay(outbox)
    metrics = EntrypointMetrics()
    correlation = Correlation()

    @property
    def links(self):
        settings = self.settings
        return registrations.Links(settings.public_base_url, settings.secret_key)

    def _in_transaction(self, work):
        """Run ``work(session)`` in one transaction. A unique-constraint clash
        means a concurrent twin won; a dropped connection or a deadlock is
        worth another go: run again so the domain sees the current state."""
        return in_transaction(self.db, work)

    # -- RPC: keys and organisations ----------------------------------------
    @rpc(expected_exceptions=DomainError)
    def access(self, key: list | None, scopes: list[str], slug: str | None = None,
               registration_id: str | None = None) -> dict:
        """Who holds the key of this fingerprint (None: the installation key,
        which the gateway checked), once they reach the event with ``scopes``."""
        with transaction(self.db) as session:
            return organisations.access(session, key, scopes, slug, registration_id)

    @rpc(expected_exceptions=DomainError)
    def create_organisation(self, document: dict, actor: dict) -> dict:
        request = _parse(OrganisationRequest, document)
        return self._in_transaction(lambda s: organisations.create_organisation(s, actor, request))

    @rpc(expected_exceptions=DomainError)
    def list_organisations(self, principal: dict) -> list:
        with transaction(self.db) as session:
            return organisations.list_organisations(session, principal)

    @rpc(expected_exceptions=DomainError)
    def create_key(self, organisation: str, document: dict, actor: dict) -> dict:
        request = _parse(KeyRequest, document)
        return self._in_transaction(lambda s: organisations.create_key(
            s, actor, organisation, request))

    @rpc(expected_exceptions=DomainError)
    def list_keys(self, organisation: str, actor: dict) -> list:
        with transaction(self.db) as session:
            return organisations.list_keys(session, actor, organisation)

    @rpc(expected_exceptions=DomainError)
    def revoke_key(self, organisation: str, key_id: str, actor: dict) -> None:
        self._in_transaction(lambda s: organisations.revoke_key(s, actor, organisation, key_id))

    @rpc(expected_exceptions=DomainError)
    def audit_trail(self, principal: dict, event: str | None, limit: int,
                    after: str | None) -> dict:
        with transaction(self.db) as session:
            return audit.page(session, organisations.visible(principal, *audit.WHOSE), event,
                              limit, after)

    # -- RPC: organisers ---------------------------------------------------
    @rpc(expected_exceptions=DomainError)
    def create_event(self, document: dict, organisation: str | None, actor: dict) -> dict:
        spec = _parse(EventSpec, document)

        def create(session):
            owner = organisations.owner_of_new_event(session, actor, organisation)
            return catalogue.create_event(session, self.outbox, spec, owner, actor)
        return self._in_transaction(create)

    @rpc(expected_exceptions=DomainError)
    def update_event(self, slug: str, changes: dict, actor: dict) -> dict:
        return self._in_transaction(lambda s: catalogue.update_event(
            s, self.outbox, slug, changes, reports.choices_in_use, actor))

    @rpc(expected_exceptions=DomainError)
    def preview_update(self, slug: str, changes: dict) -> dict:
        """What update_event would do, doing nothing (catalogue.preview_update)."""
        return self._in_transaction(lambda s: catalogue.preview_update(
            s, slug, changes, reports.choices_in_use, reports.told))

    @rpc(expected_exceptions=DomainError)
    def list_events(self, principal: dict) -> list:
        with transaction(self.db) as session:
            return catalogue.list_events(session, principal)

    @rpc(expected_exceptions=DomainError)
    def announce(self, slug: str, idempotency_key: str | None, subject: dict, body: dict,
                 actor: dict) -> dict:
        return self._in_transaction(lambda s: announcements.announce(
            s, self.outbox, slug, idempotency_key, subject, body, actor))

    @rpc(expected_exceptions=DomainError)
    def erase(self, registration_id: str, actor: dict | None = None) -> None:
        """By an organiser (``actor``) or by the attendee (None)."""
        self._in_transaction(lambda s: privacy.erase(s, self.outbox, registration_id,
                                                     actor or audit.ATTENDEE))

    @rpc(expected_exceptions=DomainError)
    def stats(self, slug: str) -> dict:
        with transaction(self.db) as session:
            return reports.stats(session, slug)

    @rpc(expected_exceptions=DomainError)
    def queue(self, slug: str, limit: int) -> dict:
        with transaction(self.db) as session:
            return reports.queue(session, slug, limit)

    @rpc(expected_exceptions=DomainError)
    def get_event(self, slug: str) -> dict:
        return self._in_transaction(lambda s: catalogue.get_event(s, slug))

    # -- RPC: the door (the gateway checked the key's check-in scope) --------
    @rpc(expected_exceptions=DomainError)
    def check_in(self, slug: str, code: str, actor: dict) -> dict:
        return self._in_transaction(lambda s: check_ins.check_in(s, slug, code, actor))

    @rpc(expected_exceptions=DomainError)
    def check_in_search(self, slug: str, query: str, limit: int) -> dict:
        with transaction(self.db) as session:
            return check_ins.search(session, slug, query, limit)

    # -- RPC: attendees ----------------------------------------------------
    @rpc(expected_exceptions=DomainError)
    def register_many(self, submissions: list[dict]) -> list[dict]:
        """Registrations from concurrent requests, gathered by the gateway:
        one transaction for all; for each, ``{"answer"}`` or ``{"problem"}``."""
        parsed = [registrations.Submission(item["slug"], _parse_or_error(item["body"]),
                                           item.get("idempotency_key"), item.get("correlation_id"))
                  for item in submissions]
        results = self._in_transaction(lambda s: registrations.register_many(
            s, self.outbox, self.links, parsed))
        answers = [{"answer": r} if isinstance(r, dict) else {"problem": problem_of(r)}
                   for r in results]
        REGISTRATIONS.labels(Status.PENDING).inc(sum(1 for a in answers if "answer" in a))
        return answers

    @rpc(expected_exceptions=DomainError)
    def list_registrations(self, slug: str, filters: dict, limit: int, after: str | None,
                           reader: dict, audited: str | None = None) -> dict:
        """A page of the list, filtered (reports.FILTERS) and audited as
        ``audited`` says (reports.read_list)."""
        return self._in_transaction(lambda s: reports.read_list(
            s, slug, filters, limit, after, reader, audited))

    @rpc(expected_exceptions=DomainError)
    def get_registration(self, registration_id: str) -> dict:
        return self._in_transaction(lambda s: registrations.get_registration(s, registration_id))

    @rpc(expected_exceptions=DomainError)
    def cancel(self, registration_id: str, organiser: dict | None = None) -> dict:
        return self._in_transaction(lambda s: registrations.cancel(
            s, self.outbox, self.links, registration_id, organiser))

    @rpc(expected_exceptions=DomainError)
    def change_details(self, registration_id: str, changes: dict) -> dict:
        return self._in_transaction(lambda s: privacy.change_details(
            s, self.outbox, self.links, registration_id, changes))

    @rpc(expected_exceptions=DomainError)
    def confirm(self, registration_id: str) -> dict:
        return self._in_transaction(lambda s: registrations.confirm(s, self.outbox, registration_id))

    @rpc(expected_exceptions=DomainError)
    def add_session(self, registration_id: str, session: str) -> dict:
        return self._in_transaction(lambda s: registrations.add_session(
            s, self.outbox, registration_id, session))

    @rpc(expected_exceptions=DomainError)
    def unfollow(self, registration_id: str) -> dict:
        return self._in_transaction(lambda s: registrations.unfollow(
            s, self.outbox, self.links, registration_id))

    @rpc(expected_exceptions=DomainError)
    def ping(self) -> bool:
        return ping(self.db)

    @every(received_poll_seconds)
    def announce_slow_decisions(self):
        """Registrations still undecided after RECEIVED_NOTICE_SECONDS are
        announced as pending, so the attendee hears that theirs arrived."""
        def announce(session):
            return decisions.announce_slow_decisions(session, self.outbox, self.links,
                                                         notice_after)
        notice_after = timedelta(seconds=self.settings.received_notice_seconds)
        while self._in_transaction(announce) == decisions.SLOW_DECISIONS_CLAIM:
            pass

    @every(RETENTION_POLL_SECONDS, eager=True)
    def expire_personal_data(self):
        """Erase the attendees of events that ended RETENTION_DAYS ago."""
        retention = timedelta(days=self.settings.retention_days)
        while self._in_transaction(lambda s: privacy.expire_personal_data(
                s, self.outbox, retention)):
            pass

    # -- events from capacity ------------------------------------------------
    @batch_handler("capacity", SEAT_DECIDED)
    def on_seat_decided(self, bodies: list[dict]) -> None:
        applied = process_batch(
            self.db, inbox, bodies, SeatDecided, "on_seat_decided",
            lambda s, fresh: decisions.apply_seat_decisions(
                s, self.outbox, self.links, [(r.message, r.correlation_id) for r in fresh]))
        for received in applied:
            decision: SeatDecided = received.message    # type: ignore[assignment]
            REGISTRATIONS.labels(decision.outcome).inc()
