"""The sender: a background loop that ships due messages from the delivery log."""
from __future__ import annotations

import logging
import smtplib

import eventlet
from sqlalchemy.exc import InterfaceError, OperationalError

from shared.db import transaction
from shared.loop import BackgroundLoop
from shared.metrics import MESSAGES_FAILED, MESSAGES_SENT

from . import deliveries, webhooks
from .mailer import Mailer, PermanentFailure

log = logging.getLogger(__name__)


class Unsendable(Exception):
    """A delivery whose message cannot be built from what was stored."""


class DeliveryWorker(BackgroundLoop):
    interval = 0.5

    def setup(self):
        super().setup()
        settings = self.container.config["SETTINGS"]
        self.mailer = Mailer(settings.smtp_host, settings.smtp_port, settings.smtp_from)
        self.allow_private = settings.webhook_allow_private

    def get_dependency(self, worker_ctx):
        return self

    def queued(self):
        """A worker queued a message: send it as soon as the worker is done."""
        self.wake_after_worker()

    def stop(self):
        super().stop()
        self.mailer.close()

    def tick(self):
        sessions = self.session_factory()
        while True:
            with transaction(sessions) as session:
                batch = deliveries.claim_due(session)
            self._send_batch(sessions, batch)
            if len(batch) < deliveries.BATCH:
                return

    def _send_batch(self, sessions, batch):
        """Send the claimed messages in turn. If something fails beyond
        retrying (the database gone for long), the messages not yet started
        are handed back rather than left leased for a minute."""
        unsent = list(batch)
        try:
            while unsent:
                self._send(sessions, unsent.pop(0))
        finally:
            if unsent:
                self._hand_back(sessions, unsent)

    def _hand_back(self, sessions, rows):
        try:
            self._retrying_write(sessions, lambda session: deliveries.release(session, rows))
        except (OperationalError, InterfaceError) as exc:
            log.warning("could not hand back %d claimed messages; they are sent when "
                        "their lease runs out: %s", len(rows), exc)

    def _send(self, sessions, row):
        # The lease is renewed just before the send: while earlier messages of
        # the batch went out, this one's may have run out and been taken.
        if not self._retrying_write(sessions, lambda session: deliveries.take(session, row)):
            return
        try:
            if row.channel == "webhook":
                webhooks.post(sessions, row, self.allow_private)
            else:
                self.mailer.send(self._build(row))
        except (PermanentFailure, webhooks.PermanentWebhookFailure, Unsendable) as exc:
            self._failed(sessions, row, str(exc), permanent=True)
        except (smtplib.SMTPException, OSError, ValueError, webhooks.WebhookFailure) as exc:
            if row.channel == "email":
                self.mailer.close()
            self._failed(sessions, row, f"{type(exc).__name__}: {exc}")
        else:
            self._record_sent(sessions, row)
            MESSAGES_SENT.labels(row.kind, row.channel).inc()
            log.info("sent %s by %s", row.kind, row.channel, extra={
                "correlation_id": row.content.get("correlation_id"), "kind": row.kind,
                "registration_id": row.registration_id, "event_slug": row.event_slug})

    def _record_sent(self, sessions, row):
        # The message is out: a row left leased would be sent again when its
        # lease ran out, so the record rides out a dropped connection.
        if not self._retrying_write(sessions, lambda session: deliveries.mark_sent(session, row)):
            log.warning("%s for %s was sent after its lease ran out; the sender that took "
                        "it over sends it again", row.kind, row.cause)

    @staticmethod
    def _retrying_write(sessions, change, attempts=8):
        """One small write, retried across a dropped or restarting database
        connection for about ten seconds."""
        for attempt in range(attempts):
            try:
                with transaction(sessions) as session:
                    return change(session)
            except (OperationalError, InterfaceError):
                if attempt == attempts - 1:
                    raise
                eventlet.sleep(min(2.0, 0.2 * 2 ** attempt))

    def _build(self, row):
        content = row.content
        try:
            return self.mailer.build(content.get("recipient_name", ""), row.recipient, content,
                                     message_key=row.cause.replace(":", "."))
        except (KeyError, TypeError, ValueError) as exc:
            # A row no retry can send: failed for good, not looped on.
            raise Unsendable(f"the message cannot be built: {type(exc).__name__}: {exc}") from exc

    def _failed(self, sessions, row, error, permanent=False):
        final = self._retrying_write(sessions, lambda session: deliveries.mark_failed(
            session, row, error, permanent))
        MESSAGES_FAILED.labels(row.kind, row.channel, "yes" if final else "no").inc()
        (log.error if final else log.warning)(
            "%s to %s for %s: attempt %d failed%s: %s", row.kind, row.recipient, row.cause,
            row.attempts + 1, " for good" if final else ", will retry", error)
