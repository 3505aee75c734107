"""nameko entrypoints of the notification service."""
from __future__ import annotations

import logging
import smtplib
from dataclasses import replace
from pathlib import Path

from shared.batches import batch_handler
from shared.clock import utcnow
from shared.config import Settings, SettingsProvider
from shared.contracts import (
    ANNOUNCEMENT_REQUESTED,
    EVENT_PUBLISHED,
    REGISTRATION_ERASED,
    REGISTRATION_STATUS_CHANGED,
    AnnouncementRequested,
    EventPublished,
    RegistrationErased,
    RegistrationStatusChanged,
)
from shared.db import Database, ping, transaction
from shared.errors import DomainError
from shared.inbox import process_batch, process_once
from shared.logs import Correlation
from shared.loop import every
from shared.messaging import event_handler, rpc
from shared.metrics import REMINDERS_DUE, REMINDERS_OVERDUE, UNSUBSCRIBES, EntrypointMetrics

from . import erasure, events, history, messages, policy, recipients, schedule, webhooks
from .mailer import DkimSigner, Mailer, Server, ServerUnavailable
from .models import inbox
from .sending import DeliveryWorker

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


def preflight(settings: Settings) -> None:
    """A DKIM key that cannot sign stops the start; an SMTP server that is
    away or refuses the login is not fatal (messages wait in the delivery
    log), but the operator is told at once, in one line."""
    mailer = Mailer(replace(Server.of(settings), timeout=3), settings.smtp_from,
                    DkimSigner.of(settings))
    try:
        mailer.connect().quit()
    except ServerUnavailable as exc:
        log.warning("%s; messages will wait and be retried. Start one with 'make mail' or set "
                    "SMTP_HOST, SMTP_PORT, SMTP_SECURITY and the login", exc)
    except (OSError, smtplib.SMTPException):
        pass       # it answered the login; a hiccup on QUIT says nothing


class NotificationService:
    name = "notification"

    settings = SettingsProvider()
    db = Database()
    sender = DeliveryWorker()
    metrics = EntrypointMetrics()
    correlation = Correlation()

    @property
    def organiser(self) -> str:
        return self.settings.smtp_from

    # -- events -------------------------------------------------------------------------
    @event_handler("registration", EVENT_PUBLISHED)
    def on_event_published(self, body):
        def keep(session, message: EventPublished):
            if policy.event_published(session, message.event, message.revision, self.organiser):
                self.sender.queued()
        process_once(self.db, inbox, body, EventPublished, "on_event_published", keep)

    @batch_handler("registration", REGISTRATION_STATUS_CHANGED)
    def on_status_changed(self, bodies):
        def tell(session, fresh):
            if policy.status_changes(session, events.reader(session),
                                     [(r.message, r.correlation_id) for r in fresh], self.organiser):
                self.sender.queued()
        process_batch(self.db, inbox, bodies, RegistrationStatusChanged, "on_status_changed", tell)

    @event_handler("registration", REGISTRATION_ERASED)
    def on_registration_erased(self, body):
        """The attendee's personal data leaves this service in one
        transaction with the message's inbox record (erasure.py)."""
        def erase(session, message: RegistrationErased):
            if erasure.erase(session, message.registration_id, message.event_slug):
                self.sender.queued()
        message, applied = process_once(self.db, inbox, body, RegistrationErased,
                                        "on_registration_erased", erase)
        if applied:
            log.info("erased what was known of a registration", extra={
                "registration_id": message.registration_id, "event_slug": message.event_slug})

    @event_handler("registration", ANNOUNCEMENT_REQUESTED)
    def on_announcement_requested(self, body):
        """An event not known here yet raises EventNotKnownYet: the message
        waits in the retry queues for it."""
        def announce(session, message: AnnouncementRequested):
            if policy.announce(session, message):
                self.sender.queued()
        process_once(self.db, inbox, body, AnnouncementRequested, "on_announcement_requested", announce)

    @every(lambda settings: settings.reminder_poll_seconds)
    def send_scheduled(self):
        """Reminders that fell due, including any that fell due while no
        replica was running (unless their session has begun): a claim at a
        time, each committed and handed to the sender before the next."""
        now = utcnow()
        while True:
            with transaction(self.db) as session:
                claimed, queued = policy.send_due(session, now, events.reader(session))
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
    def audience(self, slug: str) -> int:
        """How many attendees an announcement of this event would reach now."""
        with transaction(self.db) as session:
            return recipients.audience(session, slug)

    @rpc(expected_exceptions=DomainError)
    def add_webhook(self, slug: str, url: str) -> dict:
        """The gateway has checked the event with its owner, registration."""
        webhooks.check_url(url, self.settings.webhook_allow_private)
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

    @rpc(expected_exceptions=DomainError)
    def preview(self, slug: str, kind: str, language: str) -> dict:
        with transaction(self.db) as session:
            event, revision = events.described(session, slug)
        return messages.preview(event, revision, kind, language, self.settings.public_base_url,
                                self.organiser)

    @rpc(expected_exceptions=DomainError)
    def preview_announcement(self, slug: str, language: str, subject: str, body: str) -> dict:
        """An announcement not yet sent, as an attendee reading that language gets it."""
        with transaction(self.db) as session:
            event, _ = events.described(session, slug)
        return messages.preview_announcement(event, language, subject, body,
                                             self.settings.public_base_url)

    @rpc(expected_exceptions=DomainError)
    def message_counts(self, slug: str) -> dict:
        with transaction(self.db) as session:
            return history.counts_of_event(session, slug)

    @rpc(expected_exceptions=DomainError)
    def history(self, registration_id: str) -> list:
        """The registration's messages, newest first."""
        with transaction(self.db) as session:
            return history.of_registration(session, registration_id)

    @rpc(expected_exceptions=DomainError)
    def resend_last(self, registration_id: str) -> dict:
        """A copy of the registration's last message that went (or failed),
        sent again as a message of its own."""
        with transaction(self.db) as session:
            resent = history.resend_last(session, registration_id)
        self.sender.queued()
        return resent

    @rpc(expected_exceptions=DomainError)
    def reach_of_event(self, slug: str) -> dict:
        """Who unsubscribed or cannot be reached, for lists, exports and stats."""
        with transaction(self.db) as session:
            return recipients.of_event(session, slug)

    # -- attendees and operations -------------------------------------------------------
    @rpc(expected_exceptions=DomainError)
    def unsubscribe(self, registration_id: str) -> dict:
        with transaction(self.db) as session:
            result, changed = recipients.unsubscribe(session, registration_id)
        if changed:
            UNSUBSCRIBES.inc()
            log.info("an attendee unsubscribed from the bulk mail of %s", result["event"],
                     extra={"registration_id": registration_id, "event_slug": result["event"]})
        return result

    @rpc(expected_exceptions=DomainError)
    def reach_of_registration(self, registration_id: str) -> dict:
        with transaction(self.db) as session:
            return recipients.of_registration(session, registration_id)

    @rpc(expected_exceptions=DomainError)
    def calendar(self, registration_id: str) -> str:
        with transaction(self.db) as session:
            return policy.calendar_for(session, registration_id, self.organiser)

    @rpc
    def mail_problem(self) -> str | None:
        """Why this replica's sender cannot send now, or None."""
        return self.sender.problem

    @rpc(expected_exceptions=DomainError)
    def ping(self) -> bool:
        return ping(self.db)
