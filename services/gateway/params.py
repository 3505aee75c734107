"""The query parameters and headers the routes read. Each is declared once:
the handler reads it through the declaration (a Problem 400 when it is not
valid) and the OpenAPI document describes it from the same declaration."""
from __future__ import annotations

import re
from dataclasses import dataclass

from werkzeug.wrappers import Request

from shared.languages import SUPPORTED_LANGUAGES
from shared.schemas import SLUG
from shared.statuses import ALL

from .http_api import Problem


@dataclass(frozen=True, kw_only=True)
class Param:
    name: str
    description: str
    required: bool = False
    where = "query"

    def schema(self) -> dict:
        return {"type": "string"}

    def bad(self, message: str) -> Problem:
        if self.where == "query":
            title, detail = "Bad query parameter", f"{self.name}: {message}"
        else:
            title, detail = f"Bad {self.name}", message
        return Problem(400, title, detail, [{"field": self.name, "message": message}])


@dataclass(frozen=True, kw_only=True)
class Number(Param):
    low: int
    high: int
    default: int

    def schema(self) -> dict:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}

    def read(self, request: Request) -> int:
        raw = request.args.get(self.name)
        if raw is None:
            return self.default
        try:
            value = int(raw)
        except ValueError:
            raise self.bad("not a whole number") from None
        if not self.low <= value <= self.high:
            raise self.bad(f"between {self.low} and {self.high}")
        return value


@dataclass(frozen=True, kw_only=True)
class Choice(Param):
    choices: tuple[str, ...]
    default: str | None = None

    def schema(self) -> dict:
        return {"type": "string", "enum": list(self.choices)}

    def read(self, request: Request) -> str | None:
        value = request.args.get(self.name, self.default)
        if value is None and self.required:
            raise self.bad(f"required: one of {', '.join(self.choices)}")
        if value is not None and value not in self.choices:
            raise self.bad(f"one of {', '.join(self.choices)}")
        return value


@dataclass(frozen=True, kw_only=True)
class Pattern(Param):
    """A value of a known shape: a slug, a cursor."""
    pattern: str

    def schema(self) -> dict:
        return {"type": "string", "pattern": self.pattern}

    def read(self, request: Request) -> str | None:
        value = request.args.get(self.name)
        if value is not None and not re.fullmatch(self.pattern, value):
            raise self.bad("not a value this parameter takes")
        return value


@dataclass(frozen=True, kw_only=True)
class Words(Param):
    """Free text to look for: printable, short."""
    max_length: int = 200

    def schema(self) -> dict:
        return {"type": "string", "maxLength": self.max_length}

    def read(self, request: Request) -> str | None:
        value = (request.args.get(self.name) or "").strip()
        if not value:
            return None
        if len(value) > self.max_length or not value.isprintable():
            raise self.bad(f"at most {self.max_length} printable characters")
        return value


@dataclass(frozen=True, kw_only=True)
class Key(Param):
    """A client's key for repeats: the same key, the same outcome."""
    where = "header"
    max_length: int = 200

    def schema(self) -> dict:
        return {"type": "string", "minLength": 1, "maxLength": self.max_length}

    def read(self, request: Request) -> str | None:
        value = request.headers.get(self.name)
        if value is not None and not (1 <= len(value) <= self.max_length and value.isprintable()):
            raise self.bad(f"1 to {self.max_length} printable characters")
        return value


MAX_WAIT = 30
WAIT = Number(name="wait", low=0, high=MAX_WAIT, default=0,
              description="seconds to wait while the status is pending")
STATUS = Choice(name="status", choices=tuple(s.value for s in ALL),
                description="only registrations in this status")
FORMAT = Choice(name="format", choices=("json", "csv", "xlsx"), default="json",
                description="json, csv or xlsx (a spreadsheet workbook)")
SEARCH = Words(name="q", description="only those whose name or email address contains this "
                                     "(any case)")
CATEGORY = Pattern(name="category", pattern=SLUG, description="only registrations of this category")
SESSION = Pattern(name="session", pattern=SLUG, description="only registrations of this session")
IN_LANGUAGE = Choice(name="language", choices=SUPPORTED_LANGUAGES,
                     description="only registrations in this language")
CHECKED_IN = Choice(name="checked_in", choices=("true", "false"),
                    description="only those checked in at the door (true) or not (false)")
LIST_FILTERS = (STATUS, SEARCH, CATEGORY, SESSION, IN_LANGUAGE, CHECKED_IN)
LANG = Param(name="lang", description="the page's language, if the event offers it")
ADD = Param(name="add", description="a session's slug: the manage page shows it first, ready "
                                    "to add (the link of a message about a new session)")
LANGUAGE = Choice(name="language", choices=SUPPORTED_LANGUAGES, required=True,
                  description="one of the event's languages")
LIMIT = Number(name="limit", low=1, high=1000, default=100,
               description="at most this many; a Link header (rel=next) names the next page")
AFTER = Pattern(name="after", pattern="^[0-9a-f]{1,32}$",
                description="the cursor of the next page, as the Link header gives it")
EVENT_FILTER = Pattern(name="event", pattern=SLUG, description="only what was done to this event")
# Read by the route itself (routing.py: attendee routes).
TOKEN = Param(name="token", required=True,
              description="the attendee token from the registration's answer")
TOKEN_OR_KEY = Param(name="token", description="the attendee token; without it, an organiser key "
                                               "(Authorization) that reaches the registration")
IDEMPOTENCY_KEY = Key(name="Idempotency-Key",
                      description="a repeat with the same key returns the first answer")


def list_filters(request: Request) -> dict:
    """The organiser list's filters the request names."""
    filters: dict[str, str | bool] = {
        p.name: value for p in LIST_FILTERS if (value := p.read(request)) is not None}
    if CHECKED_IN.name in filters:
        filters[CHECKED_IN.name] = filters[CHECKED_IN.name] == "true"
    return filters
