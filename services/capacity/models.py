"""Tables of the capacity service: seat pools, reservations and the waiting list."""
from sqlalchemy import JSON, Boolean, Column, Index, Integer, MetaData, String, Table, false

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
    # A session the organisers cancelled: capacity 0, and nobody waits for it.
    Column("cancelled", Boolean, nullable=False, server_default=false()),
)

reservations = Table(
    "reservations", metadata,
    Column("registration_id", String(32), primary_key=True),
    Column("event_slug", String(80), nullable=False),
    Column("category", String(80)),
    Column("sessions", JSON, nullable=False),        # held; asked for while waiting
    Column("state", String(16), nullable=False),     # held confirmed waitlisted rejected cancelled expired
    # First come, first served: the order capacity decided requests in (0
    # for those decided before it was counted).
    Column("arrival_seq", Integer, nullable=False, server_default="0"),
    Column("queue_seq", Integer),                    # order on the waiting list
    # Registered without choosing sessions: a seat brings every open session.
    Column("follows", Boolean, nullable=False, server_default=false()),
    Column("hold_expires_at", UTCDateTime),
    Column("decision_seq", Integer, nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_reservations_queue", "event_slug", "state", "queue_seq"),
    Index("ix_reservations_holds", "state", "hold_expires_at"),
)

# A registration with its seat, in line for one session it does not hold
# (added after it chose, or asked for later): served in queue_seq order.
session_waits = Table(
    "session_waits", metadata,
    Column("registration_id", String(32), primary_key=True),
    Column("session", String(80), primary_key=True),
    Column("event_slug", String(80), nullable=False),
    Column("queue_seq", Integer, nullable=False),
    Index("ix_session_waits_line", "event_slug", "session", "queue_seq"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
