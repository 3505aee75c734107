"""nameko entrypoints of the notification service."""
from __future__ import annotations

import logging
import smtplib
from pathlib import Path

from nameko.dependency_providers import Config
from nameko.timer import timer
from sqlalchemy import select, update

from shared.statuses import Status
from shared.config import Settings
from shared.contracts import (EVENT_PUBLISHED, REGISTRATION_STATUS_CHANGED, EventPublished,
                              RegistrationStatusChanged)
from shared.db import Database, ping, transaction
from shared.errors import DomainError, NotFound, NotYet
from shared.batches import batch_handler
from shared.inbox import process_batch, process_once
from shared.messaging import event_handler, rpc
from shared.logs import Correlation
from shared.metrics import REMINDERS_DUE, REMINDERS_OVERDUE, EntrypointMetrics
from shared.schemas import EventSpec, parse

from . import attendees, calendar, messages, schedule, webhooks
from .models import attendees as attendees_table
from .models import event_copies, inbox
from .sending import DeliveryWorker

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


class EventNotKnownYet(NotYet):
    """A status change for an event whose description has not arrived yet."""


def preflight(settings: Settings) -> None:
    """An absent SMTP server is not fatal (messages wait in the delivery log),
    but the operator is told at once, in one line."""
    try:
        smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=3).quit()
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("cannot reach the SMTP server at smtp://%s:%s (%s); messages will wait "
                    "and be retried. Start one with 'make mail' or set SMTP_HOST/SMTP_PORT",
                    settings.smtp_host, settings.smtp_port, exc)


def reminder_interval() -> float:
    import os
    return float(os.environ.get("REMINDER_POLL_SECONDS") or 5)


class Service:
    name = "notification"

    config = Config()
    db = Database()
    sender = DeliveryWorker()
    metrics = EntrypointMetrics()
    correlation = Correlation()

    @property
    def organiser(self) -> str:
        return self.config["SETTINGS"].smtp_from

    # -- events -------------------------------------------------------------------------
    @event_handler("registration", EVENT_PUBLISHED)
    def on_event_published(self, body):
        process_once(self.db, inbox, body, EventPublished, "on_event_published", self._store_event)

    @batch_handler("registration", REGISTRATION_STATUS_CHANGED)
    def on_status_changed(self, bodies):
        def tell(session, fresh):
            if attendees.status_changes(session, self._events(session),
                                        [(r.message, r.correlation_id) for r in fresh], self.organiser):
                self.sender.queued()
        process_batch(self.db, inbox, bodies, RegistrationStatusChanged, "on_status_changed", tell)

    @timer(interval=reminder_interval())
    def send_scheduled(self):
        """Reminders that fell due, including any that fell due while no
        replica was running (unless their session has begun): a claim at a
        time, each committed and handed to the sender before the next."""
        now = schedule.utcnow()
        while True:
            with transaction(self.db) as session:
                claimed, queued = attendees.send_due(session, now, self._events(session))
            if queued:
                self.sender.wake()
            if claimed < schedule.CLAIM:
                break
        with transaction(self.db) as session:
            due, late = schedule.pending_count(session, now)
        REMINDERS_DUE.set(due)
        REMINDERS_OVERDUE.set(late)

    # -- organisers -------------------------------------------------------------------
    @rpc(expected_exceptions=DomainError)
    def announce(self, slug: str, announcement_id: str, subject: dict, body: dict) -> dict:
        with transaction(self.db) as session:
            try:
                event, _ = self._event(session, slug)
            except EventNotKnownYet:
                return {"id": announcement_id, "recipients": 0}   # no attendee known yet either
            recipients = attendees.announce(session, event, announcement_id, subject, body)
        self.sender.wake()
        return {"id": announcement_id, "recipients": recipients}

    @rpc(expected_exceptions=DomainError)
    def add_webhook(self, slug: str, url: str) -> dict:
        """The gateway has checked the event with its owner, registration."""
        webhooks.check_url(url, self.config["SETTINGS"].webhook_allow_private)
        with transaction(self.db) as session:
            return webhooks.add(session, slug, url)

    @rpc(expected_exceptions=DomainError)
    def list_webhooks(self, slug: str) -> list:
        with transaction(self.db) as session:
            return webhooks.list_for(session, slug)

    @rpc(expected_exceptions=DomainError)
    def remove_webhook(self, slug: str, hook_id: str) -> None:
        with transaction(self.db) as session:
            webhooks.remove(session, slug, hook_id)

    # -- attendees and operations -------------------------------------------------------
    @rpc(expected_exceptions=DomainError)
    def calendar(self, registration_id: str) -> str:
        with transaction(self.db) as session:
            row = session.execute(select(attendees_table).where(
                attendees_table.c.registration_id == registration_id)).first()
            if row is None:
                raise NotFound("no such registration")
            event, revision = self._event(session, row.event_slug)
        change = attendees._parse(row.snapshot)
        return calendar.build(event, registration_id, change.attendee.sessions,
                              messages.language_for(event, change.attendee.language), revision,
                              self.organiser, seated=row.status == Status.CONFIRMED).decode()

    @rpc(expected_exceptions=DomainError)
    def ping(self) -> bool:
        return ping(self.db)

    # -- helpers -------------------------------------------------------------------------
    def _store_event(self, session, message: EventPublished):
        current = session.execute(select(event_copies).where(
            event_copies.c.slug == message.event.slug)).first()
        document = message.event.model_dump(mode="json")
        if current is None:
            session.execute(event_copies.insert().values(
                slug=message.event.slug, revision=message.revision, spec=document))
            return
        if current.revision >= message.revision:
            return   # an older description, overtaken by a newer one
        session.execute(update(event_copies).where(event_copies.c.slug == message.event.slug)
                        .values(revision=message.revision, spec=document))
        before = parsed_event(current.slug, current.revision, current.spec)
        if attendees.event_changed(session, before, message.event, message.revision, self.organiser):
            self.sender.queued()

    def _events(self, session):
        """``event_for(slug)`` for one transaction: each event read once."""
        known = {}

        def event_for(slug):
            if slug not in known:
                known[slug] = self._event(session, slug)
            return known[slug]
        return event_for

    def _event(self, session, slug) -> tuple[EventSpec, int]:
        row = session.execute(select(event_copies).where(event_copies.c.slug == slug)).first()
        if row is None:
            raise EventNotKnownYet(slug)
        return parsed_event(slug, row.revision, row.spec), row.revision


_parsed: dict[tuple[str, int], EventSpec] = {}


def parsed_event(slug: str, revision: int, document) -> EventSpec:
    """A revision never changes once written, so its parsed form can be kept."""
    key = (slug, revision)
    if key not in _parsed:
        if len(_parsed) > 1000:
            _parsed.clear()
        _parsed[key] = parse(EventSpec, document)
    return _parsed[key]
