"""Idempotent consumers: the ids of processed messages, recorded in the same
transaction as their effect.

The rows are inserted first, so two replicas that receive the same message at
once collide on the primary key: one commits, the other waits for it and then
finds the message done.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.contracts import Contract, open_envelope
from shared.db import UTCDateTime, in_transaction, insert_absent
from shared.metrics import DUPLICATES_ABSORBED


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "processed_messages", metadata,
        Column("message_id", String(32), primary_key=True),
        Column("handler", String(100), primary_key=True),
        Column("processed_at", UTCDateTime, nullable=False),
    )


@dataclass(frozen=True)
class Received:
    """One message of a batch, opened: its id, its content and the
    correlation id of the request that caused it."""
    message_id: str
    message: Contract
    correlation_id: str | None


def first_deliveries(session: Session, table: Table, handler: str,
                     received: list[Received]) -> list[Received]:
    """Record the messages as processed; returns those that were not, in
    the order given, each once."""
    now = utcnow()
    ids = sorted({item.message_id for item in received})
    fresh = set(insert_absent(session, table, [
        {"message_id": message_id, "handler": handler, "processed_at": now} for message_id in ids],
        table.c.message_id))
    first = []
    for item in received:
        if item.message_id in fresh:
            fresh.discard(item.message_id)
            first.append(item)
    return first


def open_all(bodies: list[dict], contract: type[Contract]) -> list[Received]:
    received = []
    for body in bodies:
        message_id, message = open_envelope(body, contract)
        received.append(Received(message_id, message, body.get("correlation_id")))
    return received


def process_batch(session_factory, table: Table, bodies: list[dict], contract, handler: str,
                  apply) -> list[Received]:
    """Apply ``apply(session, received)`` to the messages of a batch not
    processed before, in one transaction with their inbox records (and
    whatever outbox rows ``apply`` adds). A clash with a concurrent twin, a
    deadlock or a lost connection runs the batch again: the inbox then tells
    what is left to do. Returns the messages this call applied."""
    return _apply_once(session_factory, table, open_all(bodies, contract), handler, apply)


def process_once(session_factory, table: Table, body: dict, contract, handler: str, apply):
    """``process_batch`` for one message: ``apply(session, message)``.
    Returns the message and whether this call applied it."""
    [received] = open_all([body], contract)
    applied = _apply_once(session_factory, table, [received], handler,
                          lambda session, fresh: apply(session, received.message))
    return received.message, bool(applied)


def _apply_once(session_factory, table, received, handler, apply) -> list[Received]:
    def work(session):
        fresh = first_deliveries(session, table, handler, received)
        if fresh:
            apply(session, fresh)
        return fresh
    applied = in_transaction(session_factory, work)
    # counted once committed, not per attempt (and 0 makes the series exist)
    DUPLICATES_ABSORBED.labels(handler).inc(len(received) - len(applied))
    return applied
