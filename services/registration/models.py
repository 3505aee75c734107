"""Tables of the registration service: organisations and their keys, the
event catalogue, registrations, and the audit trail of what organisers did."""
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

from shared.db import UTCDateTime
from shared.inbox import inbox_table
from shared.outbox import outbox_table
from shared.statuses import ACTIVE, Status, sql_in

metadata = MetaData()

# Events made before organisations existed belong to this one (migration 0004).
FIRST_ORGANISATION = "default"

organisations = Table(
    "organisations", metadata,
    Column("slug", String(80), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# An organisation's API keys: the secret itself is never stored, only its hash.
api_keys = Table(
    "api_keys", metadata,
    Column("id", String(32), primary_key=True),
    Column("organisation_slug", String(80), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("events", JSON),                         # null: every event of the organisation
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

events = Table(
    "events", metadata,
    Column("slug", String(80), primary_key=True),
    Column("organisation_slug", String(80), nullable=False, index=True,
           server_default=FIRST_ORGANISATION),
    Column("spec", JSON, nullable=False),           # the validated EventSpec document
    Column("revision", Integer, nullable=False),    # bumped on every change
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Who did what, when, to which event: written in the transaction of the action.
audit_trail = Table(
    "audit_trail", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("key_name", String(200), nullable=False),
    Column("organisation_slug", String(80), index=True),
    Column("event_slug", String(80), index=True),
    Column("action", String(40), nullable=False),
    Column("details", JSON, nullable=False),
)

ONE_PER_ADDRESS = sql_in("status", ACTIVE)
UNDECIDED = sql_in("status", {Status.PENDING})

registrations = Table(
    "registrations", metadata,
    Column("id", String(32), primary_key=True),
    Column("event_slug", String(80), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("email", String(254), nullable=False),
    Column("email_key", String(254), nullable=False),   # lower-cased, for uniqueness
    Column("language", String(8), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("country", String(2)),
    Column("category", String(80)),
    Column("sessions", JSON, nullable=False),          # held, or asked for while undecided or waiting
    Column("sessions_waiting", JSON, nullable=False),  # added later, each waited for in its own line
    Column("sessions_cancelled", JSON, nullable=False),  # held until the organisers cancelled them
    # Registered without choosing sessions: each session added later is theirs too.
    Column("follows", Boolean, nullable=False, server_default=false()),
    Column("answers", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_seq", Integer, nullable=False),      # numbers status changes
    Column("decision_seq", Integer, nullable=False),    # last seat decision applied
    Column("waitlist_position", Integer),
    Column("hold_expires_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Name, address and answers erased (the attendee asked, an organiser did, or
    # RETENTION_DAYS passed); the row stays so that the counts stay.
    Column("erased_at", UTCDateTime),
    # What the door reads (shared/check_in.py), and when it first did: once only.
    Column("check_in_code", String(10), nullable=False),
    Column("checked_in_at", UTCDateTime),
    # One active registration per address and event, enforced by the database.
    Index("uq_active_registration", "event_slug", "email_key", unique=True,
          sqlite_where=text(ONE_PER_ADDRESS), postgresql_where=text(ONE_PER_ADDRESS)),
    # An event's list, a page at a time (reports.list_for_event).
    Index("ix_registrations_list", "event_slug", "created_at", "id"),
    # A code names one registration of its event (check_ins.check_in).
    Index("uq_registrations_check_in_code", "event_slug", "check_in_code", unique=True),
    # The registrations still being decided, oldest first (the "received" notice).
    Index("ix_registrations_pending", "created_at",
          sqlite_where=text(UNDECIDED), postgresql_where=text(UNDECIDED)),
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("event_slug", String(80), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("registration_id", String(32), nullable=False),
    Column("response", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("registration_id"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
