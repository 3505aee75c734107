"""The sender: a background loop that ships due messages from the delivery log."""
from __future__ import annotations

import logging
import smtplib
import time

import eventlet
from sqlalchemy.exc import InterfaceError, OperationalError

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
            self._send_batch(sessions, batch)
            if len(batch) < deliveries.BATCH:
                return

    def _send_batch(self, sessions, batch):
        """Send the claimed messages while the lease is safely ours; whatever
        is left (time ran short, or the database went away mid-batch) is
        handed back rather than left leased for a minute."""
        deadline = time.monotonic() + deliveries.SEND_WITHIN.total_seconds()
        unsent = list(batch)
        try:
            while unsent and time.monotonic() < deadline:
                self._send(sessions, unsent[0])
                unsent.pop(0)
        finally:
            if unsent:
                self._hand_back(sessions, [row.id for row in unsent])

    def _hand_back(self, sessions, delivery_ids):
        try:
            self._write(sessions, lambda session: deliveries.release(session, delivery_ids))
        except (OperationalError, InterfaceError) as exc:
            log.warning("could not hand back %d claimed messages; they are sent when "
                        "their lease runs out: %s", len(delivery_ids), exc)

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
        # The message is out: a row left leased would be sent again when its
        # lease ran out, so the record rides out a dropped connection.
        self._write(sessions, lambda session: deliveries.mark_sent(session, row.id))

    @staticmethod
    def _write(sessions, change, attempts=8):
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

    def _email(self, row):
        content = row.content
        message = self.mailer.build(content.get("recipient_name", ""), row.recipient, content,
                                    message_key=row.cause.replace(":", "."))
        self.mailer.send(message)

    def _failed(self, sessions, row, error, permanent=False):
        final = self._write(sessions, lambda session: deliveries.mark_failed(
            session, row, error, permanent))
        MESSAGES_FAILED.labels(row.kind, row.channel, "yes" if final else "no").inc()
        (log.error if final else log.warning)(
            "%s to %s for %s: attempt %d failed%s: %s", row.kind, row.recipient, row.cause,
            row.attempts + 1, " for good" if final else ", will retry", error)
