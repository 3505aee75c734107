"""Idempotent consumers: the ids of processed messages, recorded in the same
transaction as their effect.

The row is inserted first, so two replicas that receive the same message at
once collide on the primary key: one commits, the other rolls back and, on
redelivery, sees the message as done.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.orm import Session

from shared.db import UTCDateTime, insert_if_absent


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "processed_messages", metadata,
        Column("message_id", String(32), primary_key=True),
        Column("handler", String(100), primary_key=True),
        Column("processed_at", UTCDateTime, nullable=False),
    )


def first_delivery(session: Session, table: Table, message_id: str, handler: str) -> bool:
    """Record the message as processed; False if it already was.

    One INSERT ... ON CONFLICT DO NOTHING: on PostgreSQL a concurrent twin
    waits for the first transaction and then finds the row there."""
    return insert_if_absent(session, table, message_id=message_id, handler=handler,
                            processed_at=datetime.now(timezone.utc))


def process_once(session_factory, table: Table, body: dict, contract, handler: str, apply,
                 attempts: int = 3):
    """Open the envelope and apply ``apply(session, message)`` once per
    message id, in one transaction with the inbox record (and whatever outbox
    rows ``apply`` adds). A clash with a concurrent twin, or a deadlock, is
    retried: the inbox then tells whether anything is left to do.
    Returns the message and whether this call applied it."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    from shared.contracts import open_envelope
    from shared.db import transaction

    message_id, message = open_envelope(body, contract)
    for attempt in range(attempts):
        try:
            with transaction(session_factory) as session:
                if not first_delivery(session, table, message_id, handler):
                    return message, False
                apply(session, message)
                return message, True
        except (IntegrityError, OperationalError):
            if attempt == attempts - 1:
                raise
