"""Tables of the capacity service: seat pools, reservations and the waiting list."""
from sqlalchemy import JSON, Boolean, Column, Index, Integer, MetaData, String, Table

from shared.db import UTCDateTime
from shared.inbox import inbox_table
from shared.outbox import outbox_table

metadata = MetaData()

# One row per event: its seat rules, and the row every seat change of the
# event locks first, so that changes to one event's seats happen one at a time.
seat_events = Table(
    "seat_events", metadata,
    Column("event_slug", String(80), primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("waitlist", Boolean, nullable=False),
    Column("hold_seconds", Integer),                 # confirmation window; null: no holds
    Column("next_queue_seq", Integer, nullable=False),
)

# Pools: "event" (the event's capacity), "category:<slug>", "session:<slug>".
seat_pools = Table(
    "seat_pools", metadata,
    Column("event_slug", String(80), primary_key=True),
    Column("pool", String(100), primary_key=True),
    Column("capacity", Integer),                     # null: unlimited
    Column("used", Integer, nullable=False),
)

reservations = Table(
    "reservations", metadata,
    Column("registration_id", String(32), primary_key=True),
    Column("event_slug", String(80), nullable=False),
    Column("category", String(80)),
    Column("sessions", JSON, nullable=False),
    Column("state", String(16), nullable=False),     # held confirmed waitlisted rejected cancelled expired
    Column("queue_seq", Integer),                    # order on the waiting list
    Column("hold_expires_at", UTCDateTime),
    Column("decision_seq", Integer, nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_reservations_queue", "event_slug", "state", "queue_seq"),
    Index("ix_reservations_holds", "state", "hold_expires_at"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
