"""Message contracts: the only thing the services share.

Every message is an envelope ``{message_id, type, version, occurred_at,
correlation_id, data}``. ``message_id`` is the stable id consumers record to
stay idempotent (nameko sets no AMQP message id of its own). A consumer accepts
the versions it knows and refuses the rest loudly, which sends the message to
the dead-letter queue instead of misreading it.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.clock import utcnow
from shared.schemas import EventSpec
from shared.statuses import DECISIONS, Status

# Event types, published on "<source service>.events" with the type as routing key.
EVENT_PUBLISHED = "event.published"                    # registration -> capacity, notification
REGISTRATION_REQUESTED = "registration.requested"      # registration -> capacity
REGISTRATION_CANCELLED = "registration.cancelled"      # registration -> capacity
REGISTRATION_CONFIRMED = "registration.confirmed"      # registration -> capacity (hold confirmed)
SESSION_REQUESTED = "registration.session_requested"   # registration -> capacity (an attendee adds one)
REGISTRATION_UNFOLLOWED = "registration.unfollowed"    # registration -> capacity (no more added sessions)
REGISTRATION_STATUS_CHANGED = "registration.status_changed"  # registration -> notification
REGISTRATION_ERASED = "registration.erased"            # registration -> notification
ANNOUNCEMENT_REQUESTED = "announcement.requested"      # registration -> notification
SEAT_DECIDED = "seat.decided"                          # capacity -> registration

# The kinds of message notification writes to attendees (each can be previewed).
MESSAGE_KINDS = ("received", "seat_confirmed", "hold", "waitlisted", "promoted", "hold_expired",
                 "cancelled", "rejected", "reminder", "session_moved", "announcement",
                 "session_added", "session_cancelled")


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    # The oldest version this one still reads: a newer version may only add
    # optional fields, so that messages already queued survive an upgrade.
    READS_BACK_TO: ClassVar[int | None] = None


class EventPublished(Contract):
    """v2: the event may carry ``timezone_label`` (optional). Every v2 event
    has the key, even as null, which a v1 reader's closed EventSpec refuses:
    the version says so loudly. v1 events read as having no label.
    v3: each session says whether it is ``cancelled``."""
    TYPE: ClassVar[str] = EVENT_PUBLISHED
    VERSION: ClassVar[int] = 3
    READS_BACK_TO: ClassVar[int | None] = 1
    event: EventSpec
    revision: int


class SeatRules(BaseModel):
    """What capacity needs of an event: its pools and waiting-list rules.
    A cancelled session seats nobody."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    capacity: int | None
    waitlist: bool
    confirmation_window: str | None
    categories: dict[str, int | None]
    sessions: dict[str, int | None]
    cancelled_sessions: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, event: EventSpec) -> SeatRules:
        return cls(capacity=event.capacity, waitlist=event.waitlist,
                   confirmation_window=event.confirmation_window,
                   categories={c.slug: c.capacity for c in event.categories},
                   sessions={s.slug: s.capacity for s in event.sessions},
                   cancelled_sessions=[s.slug for s in event.sessions if s.cancelled])


class RegistrationRequested(Contract):
    """v2 carries the event's seat rules as the registration saw them, so
    that capacity can decide at once even when the event's own message (on
    another queue) has not arrived yet: a request is never deferred and
    overtaken by a later one. v1 requests wait for that message.
    v3: ``follows`` (registered without choosing sessions: each session
    added later is theirs too), and seat rules that name cancelled sessions."""
    TYPE: ClassVar[str] = REGISTRATION_REQUESTED
    VERSION: ClassVar[int] = 3
    READS_BACK_TO: ClassVar[int | None] = 1
    registration_id: str
    event_slug: str
    category: str | None
    sessions: list[str]
    requested_at: datetime
    event_revision: int | None = None
    seat_rules: SeatRules | None = None
    follows: bool = False

    @model_validator(mode="after")
    def _rules_come_with_their_revision(self):
        if (self.event_revision is None) != (self.seat_rules is None):
            raise ValueError("event_revision and seat_rules go together")
        return self


class RegistrationCancelled(Contract):
    TYPE: ClassVar[str] = REGISTRATION_CANCELLED
    registration_id: str
    event_slug: str


class RegistrationConfirmed(Contract):
    TYPE: ClassVar[str] = REGISTRATION_CONFIRMED
    registration_id: str
    event_slug: str


class SessionRequested(Contract):
    """An attendee with a seat asks for a session they did not choose."""
    TYPE: ClassVar[str] = SESSION_REQUESTED
    registration_id: str
    event_slug: str
    session: str


class RegistrationUnfollowed(Contract):
    """The attendee stopped following: sessions added later are not theirs."""
    TYPE: ClassVar[str] = REGISTRATION_UNFOLLOWED
    registration_id: str
    event_slug: str


class RegistrationErased(Contract):
    """The attendee's personal data is gone from registration: every copy
    elsewhere (snapshots, message bodies, webhook payloads) goes too. The
    seat, if any, was released first by ``RegistrationCancelled``."""
    TYPE: ClassVar[str] = REGISTRATION_ERASED
    registration_id: str
    event_slug: str


class AnnouncementRequested(Contract):
    """An organiser's message to every attendee with a seat, recorded (and
    audited) by registration; ``announcement_id`` makes a repeat one message.
    ``subject`` and ``body`` map a language to its text; the event's default
    language is always there."""
    TYPE: ClassVar[str] = ANNOUNCEMENT_REQUESTED
    announcement_id: str
    event_slug: str
    subject: dict[str, str]
    body: dict[str, str]


SessionVerdict = Literal["seated", "waitlisted", "refused", "cancelled"]
SessionReason = Literal["added", "asked", "freed", "cancelled"]


class SessionOutcome(BaseModel):
    """What became of one session of a registration whose status stays:
    a seat in it, its waiting list (``position``), refused (full, no
    waiting list), or cancelled by the organisers. ``reason``: the session
    was just added to the event, the attendee asked for it, or a seat in it
    came free."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    session: str
    outcome: SessionVerdict
    reason: SessionReason
    position: int | None = None


class SeatDecided(Contract):
    """Capacity's word on one registration; ``decision_seq`` orders the words.
    v2: each word may carry the whole of the registration's sessions
    (``sessions``: held, or asked for while waiting; ``sessions_waiting``:
    each in its own line), and ``session_change`` when the word is about one
    session and the status stays."""
    TYPE: ClassVar[str] = SEAT_DECIDED
    VERSION: ClassVar[int] = 2
    READS_BACK_TO: ClassVar[int | None] = 1
    registration_id: str
    event_slug: str
    outcome: Status
    decision_seq: int
    promoted: bool = False
    waitlist_position: int | None = None
    hold_expires_at: datetime | None = None
    reason: str | None = None
    sessions: list[str] | None = None
    sessions_waiting: list[str] | None = None
    session_change: SessionOutcome | None = None

    @field_validator("outcome")
    @classmethod
    def _a_decision(cls, outcome: Status) -> Status:
        if outcome not in DECISIONS:
            raise ValueError(f"capacity does not decide {outcome.value!r}")
        return outcome


class Attendee(BaseModel):
    """``sessions``: held (or asked for while waiting); ``sessions_waiting``:
    later sessions they wait for one by one; ``sessions_cancelled``: theirs
    until the organisers cancelled them (calendars show them cancelled);
    ``follows``: sessions added later become theirs; ``check_in_code``: what
    the door reads to let them in (shared/check_in.py)."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    email: str
    language: str
    timezone: str | None
    country: str | None
    category: str | None
    sessions: list[str]
    sessions_waiting: list[str] = Field(default_factory=list)
    sessions_cancelled: list[str] = Field(default_factory=list)
    follows: bool = False
    check_in_code: str | None = None


class RegistrationStatusChanged(Contract):
    """Carries everything a message to the attendee needs, so notification
    never has to ask registration for it. ``status_seq`` numbers the changes of
    one registration: (registration_id, status_seq) is the cause of a message.
    v2: the attendee's sessions in full, and ``session_change`` when the
    change is about one session (the status then stays).
    v3: the attendee may carry a ``check_in_code`` (a v2 reader's closed
    Attendee refuses the key: the version says so loudly)."""
    TYPE: ClassVar[str] = REGISTRATION_STATUS_CHANGED
    VERSION: ClassVar[int] = 3
    READS_BACK_TO: ClassVar[int | None] = 1
    registration_id: str
    event_slug: str
    status: Status
    previous_status: Status | None
    status_seq: int
    cause: str
    attendee: Attendee
    waitlist_position: int | None = None
    hold_expires_at: datetime | None = None
    links: dict[str, str]
    session_change: SessionOutcome | None = None


class UnknownContract(Exception):
    """A message of a type or version this code does not understand."""


def envelope(message: Contract, correlation_id: str | None = None) -> dict:
    return {
        "message_id": uuid.uuid4().hex,
        "type": message.TYPE,
        "version": message.VERSION,
        "occurred_at": utcnow().isoformat(),
        "correlation_id": correlation_id,
        "data": message.model_dump(mode="json"),
    }


def open_envelope(body: dict, expected: type[Contract]) -> tuple[str, Contract]:
    """(message_id, contract) from a received body, or UnknownContract."""
    if not isinstance(body, dict) or "message_id" not in body:
        raise UnknownContract(f"not an envelope: {str(body)[:200]}")
    kind, version = body.get("type"), body.get("version")
    oldest = expected.READS_BACK_TO or expected.VERSION
    if kind != expected.TYPE or not isinstance(version, int) or not oldest <= version <= expected.VERSION:
        raise UnknownContract(f"expected {expected.TYPE} v{oldest}..v{expected.VERSION}, "
                              f"got {kind} v{version}")
    # JSON rules (datetimes from strings), as the schemas are strict.
    return body["message_id"], expected.model_validate_json(json.dumps(body["data"]))
