"""The sender: a background loop that ships due messages from the delivery log.

It claims a batch of due rows under one lease and sends them over several
SMTP connections at once (``SMTP_CONNECTIONS``, each kept open). Sends are
recorded in groups: one transaction marks a group sent and renews the lease
of the rows still to send, instead of two commits per message. A group closes
after 25 messages or 20 ms, so under light traffic every send is recorded at
once. The price, said in docs/reliability.md: a sender killed outright
between a send and its record may send those messages again when their lease
runs out (with the same Message-ID, so mail clients show them once).

A server that takes nothing (unreachable, no TLS, a refused login) is no
message's fault: the messages go back to the log unchanged, the sender pauses
(1 s, doubling to a minute) and says why once, in the log, in ``problem``
(which /ready shows) and in the ``evreg_smtp_up`` gauge. An address refused
for good is remembered (recipients.refused): nothing more goes to it.
"""
from __future__ import annotations

import logging
import smtplib
import time
from datetime import timedelta
from functools import partial

from eventlet.greenpool import GreenPool
from eventlet.queue import LightQueue
from sqlalchemy.exc import InterfaceError, OperationalError

from shared.clock import utcnow
from shared.db import in_transaction
from shared.loop import BackgroundLoop
from shared.metrics import ADDRESSES_REFUSED, MESSAGES_FAILED, MESSAGES_SENT, SMTP_UP

from . import deliveries, recipients, webhooks
from .mailer import DkimSigner, Mailer, PermanentFailure, Server, ServerUnavailable

log = logging.getLogger(__name__)
GROUP = 25            # messages sent between two records, at most
RECORD_EVERY = 0.02   # seconds a send may wait for its record, at most
# A record of what was sent rides out a dropped or restarting database
# connection for about ten seconds: left leased, the message would go again.
WRITE_RETRIES: dict = {"attempts": 8, "pause": 0.2}
SERVER_PAUSE_MAX = 60.0   # seconds between tries of a server that takes nothing, at most


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

    @property
    def problem(self) -> str | None:
        return self.sender.problem


class DeliveryWorker(BackgroundLoop):
    interval = 0.5

    def setup(self):
        super().setup()
        settings = self.container.config["SETTINGS"]
        self.connections = settings.smtp_connections
        self.mailers = LightQueue()
        server, signer = Server.of(settings), DkimSigner.of(settings)
        for _ in range(self.connections):
            self.mailers.put(Mailer(server, settings.smtp_from, signer))
        self.problem: str | None = None      # why the server takes nothing, while it does not
        self._server_ok = False
        self._pauses = 0
        self._resume_at = 0.0
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
            # While the SMTP server is paused, webhooks still go.
            channels = ("webhook",) if time.monotonic() < self._resume_at else None
            batch = in_transaction(sessions, partial(deliveries.claim_due, lease=self.lease,
                                                     channels=channels), pause=0.2)
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
        except ServerUnavailable as exc:
            # The row that met it is not started: it goes back with the rest.
            started.discard(row.id)
            self._server_down(sessions, str(exc), [r for r in rows if r.id not in started])
            if sent:
                self._record(sessions, sent, [])
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
                self._server_up(mailer)
        except PermanentFailure as exc:
            self._failed(sessions, row, str(exc), permanent=True, address_refused=exc.address)
            return False
        except (webhooks.PermanentWebhookFailure, Unsendable) as exc:
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

    def _server_down(self, sessions, problem: str, rows) -> None:
        """Nothing can go: the rows go back unchanged, due when the next try
        of the server is, and the operator is told once per cause."""
        if time.monotonic() >= self._resume_at:     # not yet paused by a sibling connection
            self._pauses += 1
            self._resume_at = time.monotonic() + min(SERVER_PAUSE_MAX, 2.0 ** (self._pauses - 1))
        self._server_ok = False
        if problem != self.problem:
            log.error("cannot send email: %s; messages wait in the delivery log and the "
                      "server is tried again, at least every %d s", problem, SERVER_PAUSE_MAX)
        self.problem = problem
        SMTP_UP.set(0)
        until = utcnow() + timedelta(seconds=max(0.0, self._resume_at - time.monotonic()))
        in_transaction(sessions, lambda session: deliveries.postpone(session, rows, until, problem),
                       **WRITE_RETRIES)

    def _server_up(self, mailer) -> None:
        if self._server_ok:
            return
        if self.problem is not None:
            log.info("the SMTP server %s takes mail again", mailer.server.where)
        self.problem, self._pauses, self._resume_at, self._server_ok = None, 0, 0.0, True
        SMTP_UP.set(1)

    def _failed(self, sessions, row, error, permanent=False, address_refused=False):
        def write(session):
            # Only while the claim holds the row: one withdrawn meanwhile (its
            # registration erased) must not bring its address back. A sender
            # that took the row over meets the same refusal and records it.
            if address_refused and deliveries.held(session, row):
                recipients.refused(session, row.recipient, error)
            return deliveries.mark_failed(session, row, error, permanent)
        final = in_transaction(sessions, write, **WRITE_RETRIES)
        if address_refused:
            ADDRESSES_REFUSED.inc()
        MESSAGES_FAILED.labels(row.kind, row.channel, "yes" if final else "no").inc()
        (log.error if final else log.warning)(
            "%s to %s for %s: attempt %d failed%s: %s", row.kind, row.recipient, row.cause,
            row.attempts + 1, " for good" if final else ", will retry", error)
