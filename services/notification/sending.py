"""The sender: a background loop that ships due messages from the delivery log.

It claims a batch of due rows under one lease and sends them over several
SMTP connections at once (``SMTP_CONNECTIONS``, each kept open). Sends are
recorded in groups: one transaction marks a group sent and renews the lease
of the rows still to send, instead of two commits per message. A group closes
after 25 messages or 20 ms, so under light traffic every send is recorded at
once. The price, said in docs/reliability.md: a sender killed outright
between a send and its record may send those messages again when their lease
runs out (with the same Message-ID, so mail clients show them once).
"""
from __future__ import annotations

import logging
import smtplib
import time
from datetime import timedelta

from eventlet.greenpool import GreenPool
from eventlet.queue import LightQueue
from sqlalchemy.exc import InterfaceError, OperationalError

from shared.db import in_transaction
from shared.loop import BackgroundLoop
from shared.metrics import MESSAGES_FAILED, MESSAGES_SENT

from . import deliveries, webhooks
from .mailer import Mailer, PermanentFailure

log = logging.getLogger(__name__)
GROUP = 25            # messages sent between two records, at most
RECORD_EVERY = 0.02   # seconds a send may wait for its record, at most
# A record of what was sent rides out a dropped or restarting database
# connection for about ten seconds: left leased, the message would go again.
WRITE_RETRIES: dict = {"attempts": 8, "pause": 0.2}


class Unsendable(Exception):
    """A delivery whose message cannot be built from what was stored."""


class _Handle:
    """What a worker holds: it tells the sender that it queued messages."""

    def __init__(self, sender, worker_ctx):
        self.sender, self.worker_ctx = sender, worker_ctx

    def queued(self):
        """Send them as soon as this worker is done (and has committed)."""
        self.sender.wake_after_worker(self.worker_ctx)

    def wake(self):
        self.sender.wake()


class DeliveryWorker(BackgroundLoop):
    interval = 0.5

    def setup(self):
        super().setup()
        settings = self.container.config["SETTINGS"]
        self.connections = settings.smtp_connections
        self.mailers = LightQueue()
        for _ in range(self.connections):
            self.mailers.put(Mailer(settings.smtp_host, settings.smtp_port, settings.smtp_from))
        self.pool = GreenPool(self.connections)
        self.allow_private = settings.webhook_allow_private
        self.lease = timedelta(seconds=settings.send_lease_seconds)

    def get_dependency(self, worker_ctx):
        return _Handle(self, worker_ctx)

    def stop(self):
        super().stop()
        while not self.mailers.empty():
            self.mailers.get().close()

    def tick(self):
        sessions = self.session_factory()
        while True:
            batch = in_transaction(sessions, lambda session: deliveries.claim_due(
                session, lease=self.lease), pause=0.2)
            if batch:
                # A connection gets a group's worth at least: a few messages go
                # out over one connection with one record, not one record each.
                share = max(GROUP, -(-len(batch) // self.connections))
                chunks = [batch[i:i + share] for i in range(0, len(batch), share)]
                list(self.pool.imap(lambda chunk: self._send_chunk(sessions, chunk), chunks))
            if len(batch) < deliveries.BATCH:
                return

    def _send_chunk(self, sessions, rows):
        """Send rows over one connection, recording sends as it goes: after
        ``GROUP`` messages or ``RECORD_EVERY`` seconds, whichever comes first
        (under light traffic, after each message). Each record also renews
        the lease of the rows still to send. If something fails beyond
        retrying (the database gone for long), the rows never started are
        handed back rather than left leased for a minute."""
        mailer = self.mailers.get()
        started, sent = set(), []
        held = {row.id for row in rows}
        opened = time.monotonic()
        try:
            for index, row in enumerate(rows):
                if row.id not in held:
                    continue          # its lease ran out: another sender has it
                started.add(row.id)
                if self._send(sessions, mailer, row):
                    sent.append(row)
                last = index == len(rows) - 1
                if sent and (last or len(sent) >= GROUP or time.monotonic() - opened >= RECORD_EVERY):
                    held = self._record(sessions, sent, rows[index + 1:])
                    sent, opened = [], time.monotonic()
        except BaseException:
            self._hand_back(sessions, [row for row in rows if row.id not in started])
            raise
        finally:
            self.mailers.put(mailer)

    def _send(self, sessions, mailer, row) -> bool:
        """Send one message; True if it went out (a failure is recorded here)."""
        try:
            if row.channel == "webhook":
                webhooks.post(sessions, row, self.allow_private)
            else:
                mailer.send(self._build(mailer, row), row.recipient)
        except (PermanentFailure, webhooks.PermanentWebhookFailure, Unsendable) as exc:
            self._failed(sessions, row, str(exc), permanent=True)
            return False
        except (smtplib.SMTPException, OSError, ValueError, webhooks.WebhookFailure) as exc:
            if row.channel == "email":
                mailer.close()
            self._failed(sessions, row, f"{type(exc).__name__}: {exc}")
            return False
        MESSAGES_SENT.labels(row.kind, row.channel).inc()
        log.info("sent %s by %s", row.kind, row.channel, extra={
            "correlation_id": row.content.get("correlation_id"), "kind": row.kind,
            "registration_id": row.registration_id, "event_slug": row.event_slug})
        return True

    def _record(self, sessions, sent, following) -> set:
        """Mark ``sent`` sent and renew the lease of ``following``, in one
        transaction that rides out a dropped connection; returns the ids of
        ``following`` still held (a lease that ran out belongs to another
        sender now)."""
        def write(session):
            return (deliveries.mark_sent_many(session, sent),
                    deliveries.renew(session, following, self.lease))
        recorded, held = in_transaction(sessions, write, **WRITE_RETRIES)
        if recorded < len(sent):
            log.warning("%d messages were sent after their lease ran out; the sender that took "
                        "them over sends them again", len(sent) - recorded)
        return held

    def _hand_back(self, sessions, rows):
        if not rows:
            return
        try:
            in_transaction(sessions, lambda session: deliveries.release(session, rows),
                           **WRITE_RETRIES)
        except (OperationalError, InterfaceError) as exc:
            log.warning("could not hand back %d claimed messages; they are sent when "
                        "their lease runs out: %s", len(rows), exc)

    def _build(self, mailer, row):
        content = row.content
        try:
            return mailer.build(content.get("recipient_name", ""), row.recipient, content,
                                message_key=row.cause.replace(":", "."))
        except (KeyError, TypeError, ValueError) as exc:
            # A row no retry can send: failed for good, not looped on.
            raise Unsendable(f"the message cannot be built: {type(exc).__name__}: {exc}") from exc

    def _failed(self, sessions, row, error, permanent=False):
        final = in_transaction(sessions, lambda session: deliveries.mark_failed(
            session, row, error, permanent), **WRITE_RETRIES)
        MESSAGES_FAILED.labels(row.kind, row.channel, "yes" if final else "no").inc()
        (log.error if final else log.warning)(
            "%s to %s for %s: attempt %d failed%s: %s", row.kind, row.recipient, row.cause,
            row.attempts + 1, " for good" if final else ", will retry", error)
