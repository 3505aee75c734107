"""Transactional outbox: events are rows written in the same transaction as the
state change that causes them, then relayed to RabbitMQ.

The relay publishes a batch of rows with publisher confirms and ``mandatory``
and one wait for the confirms: a row is marked published only after the
broker has confirmed it *and* routed it to a queue. A
crash between publish and mark republishes the row, which consumers absorb by
recording ``message_id``. Rows of one service are claimed with
``FOR UPDATE SKIP LOCKED`` so that replicas share the relay work.
"""
from __future__ import annotations

import json
import logging
import random
import time
from datetime import timedelta

from kombu import Exchange
from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text, func, select, update
from sqlalchemy.orm import Session

from shared import metrics
from shared.clock import utcnow
from shared.contracts import Contract, envelope
from shared.db import UTCDateTime, skip_locked, transaction
from shared.loop import BackgroundLoop
from shared.messaging import ConfirmedPublisher

log = logging.getLogger(__name__)
BATCH = 500
BACKLOG_EVERY = 5.0   # seconds between backlog measurements



def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox", metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("message_id", String(32), nullable=False, unique=True),
        Column("event_type", String(100), nullable=False),
        Column("body", Text, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("published_at", UTCDateTime),
        Column("attempts", Integer, nullable=False, default=0),
        Column("next_attempt_at", UTCDateTime, nullable=False),
        Index("ix_outbox_unpublished", "published_at", "next_attempt_at"),
    )


class Outbox:
    """What a worker holds: ``add(session, message)`` in its own transaction."""

    def __init__(self, table: Table, correlation_id, on_added):
        self.table = table
        # a string, or a callable read when a message is added
        self.correlation_id = correlation_id
        self._on_added = on_added

    def add(self, session: Session, message: Contract, correlation_id: str | None = None) -> str:
        return self.add_many(session, [(message, correlation_id)])[0]

    def add_many(self, session: Session, messages: list[tuple[Contract, str | None]]) -> list[str]:
        """Many messages in one INSERT; each with the correlation id of its
        cause (the worker's when none is given)."""
        if not messages:
            return []
        default = self.correlation_id() if callable(self.correlation_id) else self.correlation_id
        now = utcnow()
        rows = []
        for message, correlation_id in messages:
            body = envelope(message, correlation_id or default)
            rows.append({"message_id": body["message_id"], "event_type": message.TYPE,
                         "body": json.dumps(body), "created_at": now, "attempts": 0,
                         "next_attempt_at": now})
        session.execute(self.table.insert(), rows)
        self._on_added()
        return [row["message_id"] for row in rows]


class OutboxRelay(BackgroundLoop):
    """Relays a service's outbox: woken after each worker that wrote to it, and
    every second regardless (rows left by a crash, rows not routable yet).
    A batch of rows is published with one wait for the broker's confirms."""

    interval = 1.0

    def __init__(self, table: Table, database_attr: str = "db"):
        self.table = table
        self.database_attr = database_attr

    def setup(self):
        super().setup()
        self.service_name = self.container.service_name
        self.exchange = Exchange(f"{self.service_name}.events", type="topic", durable=True,
                                 delivery_mode=2)
        self.publisher = ConfirmedPublisher(self.container.config["AMQP_URI"])
        self._observed_at = 0.0

    def stop(self):
        super().stop()
        self.publisher.close()

    def kill(self):
        super().kill()
        self.publisher.close()

    def get_dependency(self, worker_ctx):
        return Outbox(self.table, lambda: worker_ctx.data.get("correlation_id") or worker_ctx.call_id,
                      lambda: self.wake_after_worker(worker_ctx))

    def tick(self):
        sessions = self.session_factory()
        try:
            while self.relay_once(sessions) == BATCH:
                pass
        finally:
            # A COUNT over the outbox: every few seconds, not after every worker.
            if time.monotonic() - self._observed_at >= BACKLOG_EVERY:
                self._observed_at = time.monotonic()
                self._observe_backlog(sessions)

    def relay_once(self, sessions) -> int:
        """Publish one batch of due rows; returns how many were claimed. The
        rows are marked published only after the broker confirmed them and a
        queue took them; until then they stay locked by this transaction, so
        other replicas leave them alone."""
        with transaction(sessions) as session:
            now = utcnow()
            rows = session.execute(skip_locked(
                select(self.table.c.id, self.table.c.message_id, self.table.c.event_type,
                       self.table.c.body, self.table.c.attempts)
                .where(self.table.c.published_at.is_(None), self.table.c.next_attempt_at <= now)
                .order_by(self.table.c.id).limit(BATCH), session)).all()
            if not rows:
                return 0
            unroutable = self.publisher.publish([self._message(row) for row in rows])
            published = [row.id for row in rows if row.message_id not in unroutable]
            for row in rows:
                if row.message_id in unroutable:
                    self._postpone(session, row)
                else:
                    metrics.OUTBOX_PUBLISHED.labels(self.service_name, row.event_type).inc()
            if published:
                session.execute(update(self.table).where(self.table.c.id.in_(published))
                                .values(published_at=utcnow(), attempts=self.table.c.attempts + 1))
        return len(rows)

    def _message(self, row) -> dict:
        correlation_id = json.loads(row.body).get("correlation_id") or row.message_id
        return {"exchange": self.exchange, "routing_key": row.event_type, "body": row.body,
                "message_id": row.message_id,
                # nameko turns "nameko.*" headers into the consumer's context
                # data: the correlation id travels on.
                "headers": {"nameko.correlation_id": correlation_id}}

    def _postpone(self, session, row):
        # No queue is bound yet (a consumer that has never started): keep the
        # row and try again later rather than lose the message.
        delay = min(60.0, 2 ** row.attempts) * random.uniform(0.8, 1.2)
        log.warning("%s %s has no queue to go to yet; retrying in %.0fs",
                    row.event_type, row.message_id, delay)
        session.execute(update(self.table).where(self.table.c.id == row.id).values(
            attempts=row.attempts + 1, next_attempt_at=utcnow() + timedelta(seconds=delay)))
        metrics.OUTBOX_UNROUTABLE.labels(self.service_name, row.event_type).inc()

    def _observe_backlog(self, sessions):
        try:
            with transaction(sessions) as session:
                count, oldest = session.execute(
                    select(func.count(), func.min(self.table.c.created_at))
                    .where(self.table.c.published_at.is_(None))).one()
        except Exception:
            return
        metrics.OUTBOX_BACKLOG.labels(self.service_name).set(count)
        age = max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0
        metrics.OUTBOX_OLDEST_AGE.labels(self.service_name).set(age)
