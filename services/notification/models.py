"""Tables of the notification service: what it knows of events and attendees,
and the delivery log, which is also the queue of messages to send."""
from sqlalchemy import (
                        JSON,
                        BigInteger,
                        Column,
                        Index,
                        Integer,
                        MetaData,
                        String,
                        Table,
                        Text,
)

from shared.db import UTCDateTime
from shared.inbox import inbox_table

metadata = MetaData()

event_copies = Table(
    "event_copies", metadata,
    Column("slug", String(80), primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("spec", JSON, nullable=False),
)

# The latest snapshot of each registration, from its status changes.
attendees = Table(
    "attendees", metadata,
    Column("registration_id", String(32), primary_key=True),
    Column("event_slug", String(80), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("status_seq", Integer, nullable=False),
    Column("snapshot", JSON, nullable=False),    # the RegistrationStatusChanged data
    # The address as every letter case of it is one (recipients.address_key).
    Column("email_key", String(320), index=True),
    # Set by the one-click link: no more announcements or reminders for this event.
    Column("unsubscribed_at", UTCDateTime),
    # Set when the registration was erased: the row stays, its personal data
    # blanked, so that a status change still on its way cannot bring it back.
    Column("erased_at", UTCDateTime),
)

# Addresses a server refused for good (5xx at RCPT): nothing more is sent to them.
undeliverable = Table(
    "undeliverable_addresses", metadata,
    Column("address_key", String(320), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("refused_at", UTCDateTime, nullable=False),
)

deliveries = Table(
    "deliveries", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    # What caused the message, e.g. "status:<registration>:<seq>": unique, so
    # one cause gives one message however often its event arrives.
    Column("cause", String(200), nullable=False, unique=True),
    Column("registration_id", String(32), index=True),
    Column("event_slug", String(80), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("language", String(8), nullable=False),
    Column("content", JSON, nullable=False),        # subject, text, html, attachments
    Column("status", String(16), nullable=False),   # queued sending sent failed withdrawn
    # While "sending": the claim that holds it. Every later write names its
    # claim, so a sender whose lease ran out cannot overwrite the next one's.
    Column("lease", String(32)),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
)

# Messages due later: reminders before each chosen session. One row per cause; the timer turns a
# due row into a delivery in the same transaction that marks it sent.
scheduled = Table(
    "scheduled_messages", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("cause", String(200), nullable=False, unique=True),
    Column("registration_id", String(32), nullable=False, index=True),
    Column("event_slug", String(80), nullable=False, index=True),
    Column("kind", String(40), nullable=False),          # reminder
    Column("session_slug", String(80)),
    Column("session_starts_at", UTCDateTime),
    Column("due_at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False),          # pending sent cancelled skipped
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_scheduled_due", "state", "due_at"),
)

webhooks = Table(
    "webhooks", metadata,
    Column("id", String(32), primary_key=True),
    Column("event_slug", String(80), nullable=False, index=True),
    Column("url", String(2000), nullable=False),
    Column("secret", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

inbox = inbox_table(metadata)
