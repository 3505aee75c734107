"""The documents the gateway answers with, as pydantic models.

Handlers build every JSON answer through one of these (``http_api.answer``)
and the OpenAPI document shows the same models, so what the API returns and
what it says it returns are one thing. Unknown fields are refused
(``extra="forbid"``): a field a service starts returning fails loudly here
until the model, and with it the document, says it.
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from shared.schemas import EventSpec, Slug, Strict
from shared.statuses import ALL, Status

# The services send times as ISO 8601 text; the gateway passes them on unchanged.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ProblemField(Answer):
    field: str
    message: str


class ProblemDocument(Answer):
    """RFC 9457; ``errors`` names each offending field."""
    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[ProblemField] | None = None


class Links(Answer):
    self: str
    cancel: str
    confirm: str
    calendar: str
    manage: str
    unsubscribe: str


class RegistrationAccepted(Answer):
    id: str
    status: Status
    token: str
    links: Links


class Undeliverable(Answer):
    """A server refused the address for good: nothing more is sent to it."""
    reason: str
    refused_at: Timestamp


class Registration(Answer):
    id: str
    event: str
    status: Status
    waitlist_position: int | None
    hold_expires_at: Timestamp | None
    name: str
    email: str
    language: str
    timezone: str
    country: str | None
    category: str | None
    sessions: list[str]
    # Sessions added after the attendee chose, each waited for in its own line;
    # sessions theirs until the organisers cancelled them; whether sessions
    # added later become theirs (registered without choosing). Defaults: a
    # registration service older than series says none of these.
    sessions_waiting: list[str] = []
    sessions_cancelled: list[str] = []
    follows: bool = False
    answers: dict[str, str | bool]
    # What the door reads (shown as text and QR in the confirmation), and when it did.
    check_in_code: str | None = None
    checked_in_at: Timestamp | None = None
    created_at: Timestamp
    updated_at: Timestamp
    # From the notification service; null on a registration's own view while
    # that service does not answer.
    unsubscribed_at: Timestamp | None = None
    undeliverable: Undeliverable | None = None


class SessionChoice(Strict):
    """A session of the event to add to a registration that holds a seat."""
    session: Slug


class Pool(Answer):
    capacity: int | None
    used: int
    left: int | None


class Seats(Answer):
    pools: dict[str, Pool]
    states: dict[str, int]


class MissingTranslation(Answer):
    """An organiser text that some of the event's languages lack; their
    readers read it in the event's default language."""
    field: str = Field(examples=["sessions.day-2.title"])
    languages: list[str]


class Event(EventSpec):
    """An event as stored; without an organiser key, no ``join_url``,
    ``revision`` and ``organisation``; with one, also ``seats`` and
    ``missing_translations``."""
    revision: int | None = None
    organisation: str | None = None
    seats: Seats | None = None
    missing_translations: list[MissingTranslation] | None = None


class EventPatch(BaseModel):
    """Any top-level fields of an event but its slug; the registration
    service checks the event they make."""

    @classmethod
    def model_json_schema(cls, *args, **kwargs) -> dict:
        schema = EventSpec.model_json_schema(*args, **kwargs)
        schema["properties"].pop("slug")
        schema.pop("required", None)
        return {**schema, "title": "EventPatch"}


def _with_counts(name: str, doc: str, count, before: dict, after: dict | None = None) -> Any:
    """A model with one count per status (shared.statuses) between the fields
    ``before`` and ``after``; made at run time so that a new status is
    counted without an edit here."""
    counts = {status.value: count for status in ALL}
    return create_model(name, __base__=Answer, __doc__=doc, **before, **counts, **(after or {}))


class MailCounts(Answer):
    """The event's messages by state (queued: waiting or being sent), the
    attendees who unsubscribed from announcements and reminders, and the
    addresses refused for good."""
    queued: int = 0
    sent: int = 0
    failed: int = 0
    withdrawn: int = 0
    undeliverable: int
    unsubscribed: int


Counts = _with_counts("Counts", "Registrations by status.", (int, ...), {})
# ``session_cancelled``, not ``cancelled``: that name counts cancelled registrations.
PoolCounts = _with_counts("PoolCounts", "A category's or session's pool and counts; a status "
                          "nobody is in is left out. A session says whether the organisers "
                          "cancelled it.", (int, 0), {"seats": (Pool | None, None)},
                          {"session_cancelled": (bool | None, None)})
CountryCounts = _with_counts("CountryCounts", "A country's name (COUNTRY_NAMES, else CLDR's, in "
                             "the event's default language) and its registrations by status.",
                             (int, ...), {"name": (str, ...)})
# mypy cannot see a model made at run time as a type.
ByPool = dict[str, PoolCounts]  # type: ignore[valid-type]
Stats = _with_counts(
    "Stats", "Seats and counts: the event's, then per category, session, language and country.",
    (int, ...), {"event": (str, ...), "seats": (Pool, ...)},
    {"per_category": (ByPool, ...), "per_session": (ByPool, ...),
     "per_language": (dict[str, Counts], ...),  # type: ignore[valid-type]
     "per_country": (dict[str, CountryCounts], ...),  # type: ignore[valid-type]
     "mail": (MailCounts, ...),
     "checked_in": (int, 0),
     "timeline": (list[tuple[Timestamp, int]], Field(default_factory=list, description=(
         "registrations made in each hour (UTC), oldest first; hours with none are left out")))})


class MessagePreview(Answer):
    subject: str
    text: str
    html: str


class CheckIn(Answer):
    """Who a check-in code is, and when they came in."""
    id: str
    name: str
    status: Status
    category: str | None
    sessions: list[str]
    checked_in_at: Timestamp | None
    check_in_code: str


class CheckIns(Answer):
    """The room (checked in, of the registrations with a seat) and the
    seats whose name or address matched the search."""
    checked_in: int
    seats: int
    matches: list[CheckIn]


class Hold(Answer):
    id: str
    name: str
    category: str | None
    hold_expires_at: Timestamp | None


class Waiting(Answer):
    id: str
    name: str
    category: str | None
    waitlist_position: int | None
    created_at: Timestamp


class Queue(Answer):
    """Seats held until a deadline, soonest first, and the waiting list in
    its order: the first ``limit`` of each, and how many there are."""
    holds: list[Hold]
    holds_total: int
    waiting: list[Waiting]
    waiting_total: int


class ChangePreview(Answer):
    """What a change of the event would do, were it made now: how many
    people the waiting list would seat (in all, and per pool: ``event``,
    ``category:<slug>``, ``session:<slug>``), and how many attendees would
    be told of each moved or cancelled session."""
    promoted: int
    per_pool: dict[str, int]
    told: dict[str, int]


class MessageRecord(Answer):
    """One message to an attendee, from the delivery log (its subject is
    gone once they are erased)."""
    id: int | str
    kind: str
    channel: str
    language: str
    subject: str | None
    status: str
    attempts: int
    created_at: Timestamp
    sent_at: Timestamp | None
    last_error: str | None


class Webhook(Answer):
    """The secret (and the event) only in the answer that creates it."""
    id: str
    event_slug: str | None = None
    url: str
    secret: str | None = None
    created_at: Timestamp


class AnnouncementAccepted(Answer):
    id: str
    recipients: int


class Organisation(Answer):
    slug: str
    name: str
    created_at: Timestamp


class ApiKey(Answer):
    """``key``, the secret, only in the answer that creates it: keep it then."""
    id: str
    organisation: str
    name: str
    scopes: list[str]
    events: list[str] | None
    created_at: Timestamp
    revoked_at: Timestamp | None
    key: str | None = None


class AuditEntry(Answer):
    """Who (``key_id``, ``key_name``) did what (``action``, ``details``),
    when, to which event. Registrations are named by id only."""
    id: str
    at: Timestamp
    key_id: str
    key_name: str
    organisation: str | None
    event: str | None
    action: str
    details: dict[str, Any]


class Health(Answer):
    status: str


class Ready(Answer):
    status: str
    checks: dict[str, str]
