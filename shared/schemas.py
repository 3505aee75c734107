"""The shapes of the documents the API accepts: an event and a registration.

They are part of the contract because the gateway validates them at the door
and the registration service stores and republishes them. Unknown fields are
refused (``extra="forbid"``): a typo must not be silently ignored.
"""
from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Annotated, Literal, TypeVar, get_args
from zoneinfo import ZoneInfo, available_timezones

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from shared.countries import CODES as COUNTRY_CODES
from shared.languages import SUPPORTED_LANGUAGES

SLUG = r"^[a-z0-9](?:[a-z0-9_-]{0,78}[a-z0-9])?$"
_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)


def _no_control_chars(value: str) -> str:
    # CR/LF and other controls could break a mail header or a CSV cell.
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must not contain control characters")
    return value


Slug = Annotated[str, StringConstraints(pattern=SLUG)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
                 AfterValidator(_no_control_chars)]
LongText = Annotated[str, StringConstraints(max_length=4000)]


def _one_line(value: str) -> str:
    # A zone's name sits inside a sentence, a subject line and an .ics line.
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value):
        raise ValueError("must be one line of plain text")
    return value


ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80),
                      AfterValidator(_one_line)]


def _language(value: str) -> str:
    if value not in SUPPORTED_LANGUAGES:
        raise ValueError(f"unsupported language; use one of {', '.join(SUPPORTED_LANGUAGES)}")
    return value


def _timezone(value: str) -> str:
    if value not in _timezones():
        raise ValueError("unknown IANA time zone, e.g. Europe/Istanbul")
    ZoneInfo(value)
    return value


@lru_cache(maxsize=1)
def _timezones() -> frozenset:
    return frozenset(available_timezones())


def _country(value: str) -> str:
    if value.upper() not in COUNTRY_CODES:
        raise ValueError("unknown ISO 3166-1 alpha-2 country code")
    return value.upper()


def parse_duration(value: str) -> timedelta:
    """A positive ISO 8601 duration such as P7D or PT1H30M."""
    if not isinstance(value, str) or not value.startswith("P"):
        raise ValueError("must be an ISO 8601 duration such as P7D or PT48H")
    try:
        duration = _DURATION.validate_python(value)
    except Exception:
        raise ValueError("must be an ISO 8601 duration such as P7D or PT48H") from None
    if duration <= timedelta(0):
        raise ValueError("must be longer than zero")
    return duration


def _duration(value: str) -> str:
    parse_duration(value)
    return value


# The JSON schema (OpenAPI) of each says what the validator accepts.
Language = Annotated[str, AfterValidator(_language),
                     WithJsonSchema({"type": "string", "enum": list(SUPPORTED_LANGUAGES)})]
TimeZoneName = Annotated[str, AfterValidator(_timezone), WithJsonSchema(
    {"type": "string", "description": "an IANA time zone", "example": "Europe/Istanbul"})]
Country = Annotated[str, AfterValidator(_country), WithJsonSchema(
    {"type": "string", "pattern": "^[A-Za-z]{2}$", "description": "ISO 3166-1 alpha-2 code"})]
Duration = Annotated[str, AfterValidator(_duration), WithJsonSchema(
    {"type": "string", "pattern": "^P", "description": "a positive ISO 8601 duration",
     "example": "PT48H"})]
Localized = Annotated[dict[Language, Text], Field(min_length=1)]
# The event's own name of its time zone, per language ("Jerusalem time", "بتوقيت القدس الشريف").
ZoneLabel = Annotated[dict[Language, ShortText], Field(min_length=1)]


class Strict(BaseModel):
    # strict: "3" is not a number and "yes" is not a boolean; datetimes and
    # URLs still parse from JSON strings (validate with model_validate_json).
    model_config = ConfigDict(extra="forbid", strict=True)


class Category(Strict):
    slug: Slug
    capacity: int | None = Field(default=None, ge=0, le=1_000_000)
    title: Localized | None = None


YEARS = (2000, 2200)


class SessionSpec(Strict):
    slug: Slug
    title: Localized
    starts_at: datetime
    ends_at: datetime
    capacity: int | None = Field(default=None, ge=0, le=1_000_000)
    # Cancelled by the organisers: it stays listed (calendars show it
    # cancelled), seats nobody and is never open again.
    cancelled: bool = False

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a UTC offset, e.g. 2026-12-18T10:00:00+03:00")
        # Reminders and calendars do arithmetic on these: keep far from year 1 and 9999.
        if not YEARS[0] <= value.year <= YEARS[1]:
            raise ValueError(f"must be between the years {YEARS[0]} and {YEARS[1]}")
        return value

    @model_validator(mode="after")
    def _ordered(self):
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class Question(Strict):
    slug: Slug
    label: Localized
    type: Literal["text", "choice", "boolean"] = "text"
    required: bool = False
    options: list[Text] | None = Field(default=None, max_length=50)

    @model_validator(mode="after")
    def _choices(self):
        if self.type == "choice" and not self.options:
            raise ValueError("a choice question needs options")
        return self


def _unique(items, what):
    slugs = [item.slug for item in items]
    if len(slugs) != len(set(slugs)):
        raise ValueError(f"{what} slugs must be unique")


class EventSpec(Strict):
    slug: Slug
    title: Localized
    timezone: TimeZoneName
    # Names the event's zone in the pages, messages and calendars instead of
    # its CLDR city ("Jerusalem Time"); a language left out gets the city.
    timezone_label: ZoneLabel | None = None
    languages: list[Language] = Field(min_length=1, max_length=len(SUPPORTED_LANGUAGES))
    format: Literal["in_person", "online", "hybrid"]
    venue: Text | None = None
    join_url: HttpUrl | None = None
    capacity: int | None = Field(default=None, ge=0, le=1_000_000)
    waitlist: bool = True
    confirmation_window: Duration | None = None
    categories: list[Category] = Field(default_factory=list, max_length=50)
    sessions: list[SessionSpec] = Field(min_length=1, max_length=100)
    questions: list[Question] = Field(default_factory=list, max_length=50)
    reminders: list[Duration] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _consistent(self):
        if len(set(self.languages)) != len(self.languages):
            raise ValueError("languages must not repeat")
        _unique(self.categories, "category")
        _unique(self.sessions, "session")
        _unique(self.questions, "question")
        if self.languages[0] not in self.title:
            raise ValueError(f"title needs the default language ({self.languages[0]})")
        return self

    @property
    def default_language(self) -> str:
        return self.languages[0]

    @property
    def open_sessions(self) -> list[str]:
        """The sessions not cancelled, in the event's order."""
        return [s.slug for s in self.sessions if not s.cancelled]


# What a new revision of an event changes in its programme: each service
# that acts on a change (notification tells, capacity releases, registration
# counts whom beforehand) reads it here.
def moved_sessions(before: EventSpec, after: EventSpec) -> list[str]:
    """Sessions still on whose times change."""
    old = {s.slug: (s.starts_at, s.ends_at) for s in before.sessions}
    return [s.slug for s in after.sessions
            if s.slug in old and old[s.slug] != (s.starts_at, s.ends_at) and not s.cancelled]


def added_sessions(before: EventSpec, after: EventSpec) -> list[str]:
    """Open sessions the newer revision has and the older had not."""
    old = {s.slug for s in before.sessions}
    return [slug for slug in after.open_sessions if slug not in old]


def cancelled_sessions(before: EventSpec, after: EventSpec) -> list[str]:
    """Sessions the newer revision cancels (still listed, no longer open)."""
    listed = {s.slug for s in after.sessions}
    return [slug for slug in before.open_sessions if slug not in after.open_sessions
            and slug in listed]


class RegistrationRequest(Strict):
    name: Text
    email: Annotated[str, StringConstraints(max_length=254)]
    language: Language | None = None
    timezone: TimeZoneName | None = None
    country: Country | None = None
    category: Slug | None = None
    sessions: list[Slug] | None = Field(default=None, max_length=100)
    answers: dict[Slug, LongText | bool] = Field(default_factory=dict, max_length=50)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(str(exc)) from None


class NewEvent(EventSpec):
    """An event to create, and whose it is: the installation key names the
    organisation (none: "default"); an organisation's key makes its own."""
    organisation: Slug | None = None


class DetailsChange(Strict):
    """What an attendee may change of their registration; ``answers``
    replaces every answer."""
    name: Text | None = None
    language: Language | None = None
    timezone: TimeZoneName | None = None
    answers: dict[Slug, LongText | bool] | None = Field(default=None, max_length=50)


# What a key may do: create and change events; read lists, exports and
# answers; send announcements; check people in; manage keys and read the audit.
Scope = Literal["events", "registrations", "announce", "check-in", "keys"]
SCOPES: tuple[str, ...] = get_args(Scope)


class OrganisationRequest(Strict):
    slug: Slug
    name: Text


class KeyRequest(Strict):
    """``events``: the key reaches only these events of the organisation."""
    name: Text
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=len(SCOPES))]
    events: Annotated[list[Slug], Field(min_length=1, max_length=1000)] | None = None


def field_errors(exc) -> list[dict]:
    """A pydantic ValidationError as the API's [{"field", "message"}]."""
    return [{"field": ".".join(str(part) for part in err["loc"]) or "body",
             "message": err["msg"].removeprefix("Value error, ")} for err in exc.errors()]


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data) -> M:
    """Validate already-decoded JSON (an RPC argument) with JSON rules."""
    import json
    return model.model_validate_json(json.dumps(data))


class AnnouncementRequest(Strict):
    subject: Localized
    body: Annotated[dict[Language, Annotated[str, StringConstraints(min_length=1, max_length=20000)]],
                    Field(min_length=1)]


class AnnouncementDraft(Strict):
    """An announcement in one language, to see as its readers will."""
    language: Language
    subject: Text
    body: Annotated[str, StringConstraints(min_length=1, max_length=20000)]


class CheckInRequest(Strict):
    """What the door read: a seat's check-in code, typed or scanned."""
    code: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class WebhookRequest(Strict):
    url: HttpUrl


_revisions: dict[tuple[str, int], EventSpec] = {}


def event_revision(slug: str, revision: int, document) -> EventSpec:
    """A stored event document, parsed. A revision never changes once
    written, so its parsed form is kept (for the last thousand)."""
    key = (slug, revision)
    if key not in _revisions:
        if len(_revisions) > 1000:
            _revisions.clear()
        _revisions[key] = parse(EventSpec, document)
    return _revisions[key]
