"""The sender: a background loop that ships due messages from the delivery log."""
from __future__ import annotations

import logging
import smtplib

import eventlet
from sqlalchemy.exc import OperationalError

from shared.db import transaction
from shared.loop import BackgroundLoop
from shared.metrics import MESSAGES_FAILED, MESSAGES_SENT

from . import deliveries, webhooks
from .mailer import Mailer, PermanentFailure

log = logging.getLogger(__name__)


class DeliveryWorker(BackgroundLoop):
    interval = 0.5

    def setup(self):
        super().setup()
        settings = self.container.config["SETTINGS"]
        self.mailer = Mailer(settings.smtp_host, settings.smtp_port, settings.smtp_from)

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
            for row in batch:
                self._send(sessions, row)
            if len(batch) < 50:
                return

    def _send(self, sessions, row):
        try:
            if row.channel == "webhook":
                webhooks.post(sessions, row)
            else:
                self._email(row)
        except (PermanentFailure, webhooks.PermanentWebhookFailure) as exc:
            self._failed(sessions, row, str(exc), permanent=True)
        except (smtplib.SMTPException, OSError, ValueError) as exc:
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
        """The message is out: record it, even across a dropped database
        connection (a row left leased would be sent again when it ran out)."""
        for attempt in range(5):
            try:
                with transaction(sessions) as session:
                    deliveries.mark_sent(session, row.id)
                return
            except OperationalError:
                if attempt == 4:
                    raise
                eventlet.sleep(0.2 * (attempt + 1))

    def _email(self, row):
        content = row.content
        message = self.mailer.build(content.get("recipient_name", ""), row.recipient, content,
                                    message_key=row.cause.replace(":", "."))
        self.mailer.send(message)

    def _failed(self, sessions, row, error, permanent=False):
        with transaction(sessions) as session:
            final = deliveries.mark_failed(session, row, error, permanent)
        MESSAGES_FAILED.labels(row.kind, row.channel, "yes" if final else "no").inc()
        (log.error if final else log.warning)(
            "%s to %s for %s: attempt %d failed%s: %s", row.kind, row.recipient, row.cause,
            row.attempts + 1, " for good" if final else ", will retry", error)
