"""The OpenAPI 3.1 document of the public API, built from the same pydantic
models that validate requests, so the two cannot drift apart."""
from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.schemas import (AnnouncementRequest, EventSpec, RegistrationRequest, SessionSpec,
                            Category, Question, WebhookRequest)

Status = Literal["pending", "held", "confirmed", "waitlisted", "rejected", "cancelled", "expired"]


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ProblemField(Open):
    field: str
    message: str


class Problem(Open):
    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[ProblemField] | None = None


class Links(Open):
    self: str
    cancel: str
    confirm: str
    calendar: str
    manage: str


class RegistrationAccepted(Open):
    id: str
    status: Status
    token: str
    links: Links


class Registration(Open):
    id: str
    event: str
    status: Status
    waitlist_position: int | None
    hold_expires_at: datetime | None
    name: str
    email: str
    language: str
    timezone: str
    country: str | None
    category: str | None
    sessions: list[str]
    answers: dict[str, str | bool]
    created_at: datetime
    updated_at: datetime


class Pool(Open):
    capacity: int | None
    used: int
    left: int | None


class Seats(Open):
    pools: dict[str, Pool]
    states: dict[str, int]


class Event(Open):
    """An event as stored; organisers also get ``seats`` and ``join_url``."""
    slug: str
    title: dict[str, str]
    timezone: str
    languages: list[str]
    format: Literal["in_person", "online", "hybrid"]
    venue: str | None = None
    join_url: str | None = None
    capacity: int | None
    waitlist: bool
    confirmation_window: str | None = None
    categories: list[Category]
    sessions: list[SessionSpec]
    questions: list[Question]
    reminders: list[str]
    revision: int | None = None
    seats: Seats | None = None


class Counts(Open):
    pending: int
    held: int
    confirmed: int
    waitlisted: int
    cancelled: int
    expired: int
    rejected: int


class Stats(Counts):
    event: str
    seats: Pool
    per_category: dict[str, dict]
    per_session: dict[str, dict]
    per_language: dict[str, Counts]


class Webhook(Open):
    id: str
    url: str
    created_at: datetime
    secret: str | None = None


class AnnouncementAccepted(Open):
    id: str
    recipients: int


class Health(Open):
    status: str


class Ready(Open):
    status: str
    checks: dict[str, str]


MODELS = (EventSpec, RegistrationRequest, AnnouncementRequest, WebhookRequest, Problem,
          RegistrationAccepted, Registration, Event, Stats, Webhook, AnnouncementAccepted,
          Health, Ready)
ERRORS = {
    400: "Malformed JSON, a body that is not an object, or a bad query parameter or header",
    401: "An organiser call without the right API key",
    404: "Unknown event, or unknown registration or wrong token",
    409: "Conflicts with the current state",
    413: "The body is larger than 64 KiB",
    415: "The body is not application/json",
    422: "A field is not valid; `errors` names each one",
    429: "Too many public requests from this address; see Retry-After",
    503: "The broker or a service does not answer; see Retry-After",
}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: dict, description: str = "") -> dict:
    return {"description": description or "OK", "content": {"application/json": {"schema": schema}}}


def operation(summary: str, ok: dict, errors=(), body: str | None = None, params=(),
              admin=False, media=("application/json",), tag="attendees") -> dict:
    codes = set(errors) | {503}
    if admin:
        codes.add(401)
    if body:
        codes |= {400, 413, 415, 422}
    responses = dict(ok)
    for code in sorted(codes):
        responses[str(code)] = {"description": ERRORS[code], "content": {
            "application/problem+json": {"schema": ref("Problem")}}}
    result = {"summary": summary, "tags": [tag], "responses": responses, "parameters": list(params)}
    if body:
        schema = ref(body) if body != "EventPatch" else event_patch_schema()
        result["requestBody"] = {"required": True, "content": {m: {"schema": schema} for m in media}}
    result["security"] = [{"organiserKey": []}] if admin else []
    return result


def event_patch_schema() -> dict:
    """Any top-level fields of an event but its slug."""
    spec = EventSpec.model_json_schema(ref_template="#/components/schemas/{model}")
    properties = {k: v for k, v in spec["properties"].items() if k != "slug"}
    return {"type": "object", "additionalProperties": False, "properties": properties}


def path_param(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1, "maxLength": 200}}


def query(name: str, schema: dict, description: str, required=False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema}


SLUG = path_param("slug", "the event's slug")
REGISTRATION = path_param("registration_id", "the registration's id")
TOKEN = query("token", {"type": "string"}, "the attendee token from the registration's answer",
              required=True)
IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False,
               "description": "a repeat with the same key returns the first answer",
               "schema": {"type": "string", "minLength": 1, "maxLength": 200}}


@lru_cache(maxsize=1)
def document() -> dict:
    components = {}
    for model in MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    paths = {
        "/api/v1/events": {"post": operation(
            "Create an event", {"201": json_body(ref("Event"), "Created")}, [409], body="EventSpec",
            admin=True, tag="organisers")},
        "/api/v1/events/{slug}": {
            "parameters": [SLUG],
            "get": operation("Read an event (seats and join link with the organiser key)",
                             {"200": json_body(ref("Event"))}, [404], tag="attendees"),
            "patch": operation("Change top-level fields of an event",
                               {"200": json_body(ref("Event"))}, [404, 409], body="EventPatch",
                               admin=True, tag="organisers",
                               media=("application/json", "application/merge-patch+json")),
        },
        "/api/v1/events/{slug}/registrations": {
            "parameters": [SLUG],
            "get": operation("List the registrations (JSON or CSV)", {"200": {
                "description": "OK", "content": {
                    "application/json": {"schema": {"type": "array", "items": ref("Registration")}},
                    "text/csv": {"schema": {"type": "string"}}}}}, [400, 404],
                params=[query("format", {"type": "string", "enum": ["json", "csv"]}, "json or csv"),
                        query("status", {"type": "string", "enum": list(Status.__args__)},
                              "only registrations in this status")],
                admin=True, tag="organisers"),
            "post": operation("Register", {"202": json_body(ref("RegistrationAccepted"), "Accepted")},
                              [404, 409, 429], body="RegistrationRequest", params=[IDEMPOTENCY]),
        },
        "/api/v1/events/{slug}/stats": {"parameters": [SLUG], "get": operation(
            "Seats and counts per status, category, session and language",
            {"200": json_body(ref("Stats"))}, [404], admin=True, tag="organisers")},
        "/api/v1/events/{slug}/announcements": {"parameters": [SLUG], "post": operation(
            "Send a message to every attendee with a seat, in their language",
            {"202": json_body(ref("AnnouncementAccepted"), "Accepted")}, [404],
            body="AnnouncementRequest", params=[IDEMPOTENCY], admin=True, tag="organisers")},
        "/api/v1/events/{slug}/webhooks": {
            "parameters": [SLUG],
            "get": operation("List the event's webhooks",
                             {"200": json_body({"type": "array", "items": ref("Webhook")})}, [404],
                             admin=True, tag="organisers"),
            "post": operation("Register a webhook (the answer carries its signing secret)",
                              {"201": json_body(ref("Webhook"), "Created")}, [404],
                              body="WebhookRequest", admin=True, tag="organisers"),
        },
        "/api/v1/events/{slug}/webhooks/{hook_id}": {
            "parameters": [SLUG, path_param("hook_id", "the webhook's id")],
            "delete": operation("Remove a webhook", {"204": {"description": "Removed"}}, [404],
                                admin=True, tag="organisers")},
        "/api/v1/registrations/{registration_id}": {"parameters": [REGISTRATION], "get": operation(
            "A registration's status", {"200": json_body(ref("Registration"))}, [400, 404],
            params=[TOKEN, query("wait", {"type": "integer", "minimum": 0, "maximum": 30},
                                 "seconds to wait while the status is pending")])},
        "/api/v1/registrations/{registration_id}/confirm": {"parameters": [REGISTRATION], "post": operation(
            "Confirm a held seat", {"202": json_body(ref("Registration"), "Accepted")},
            [404, 409, 429], params=[TOKEN])},
        "/api/v1/registrations/{registration_id}/cancel": {"parameters": [REGISTRATION], "post": operation(
            "Cancel; the seat goes to the waiting list", {"200": json_body(ref("Registration"))},
            [404, 409, 429], params=[TOKEN])},
        "/api/v1/registrations/{registration_id}/calendar.ics": {"parameters": [REGISTRATION], "get": operation(
            "The registration's sessions as iCalendar", {"200": {"description": "OK", "content": {
                "text/calendar": {"schema": {"type": "string"}}}}}, [404], params=[TOKEN])},
        "/events/{slug}": {"parameters": [SLUG], "get": {
            "summary": "The registration page", "tags": ["pages"], "security": [],
            "parameters": [query("lang", {"type": "string"}, "the page's language")],
            "responses": {"200": {"description": "OK", "content": {"text/html": {"schema": {"type": "string"}}}},
                          "404": {"description": ERRORS[404], "content": {"text/html": {"schema": {"type": "string"}}}},
                          "503": {"description": ERRORS[503], "content": {
                              "application/problem+json": {"schema": ref("Problem")}}}}}},
        "/health": {"get": {"summary": "Alive", "tags": ["operations"], "security": [],
                            "responses": {"200": json_body(ref("Health"))}}},
        "/ready": {"get": {"summary": "Broker and every service's database answer",
                           "tags": ["operations"], "security": [],
                           "responses": {"200": json_body(ref("Ready")),
                                         "503": json_body(ref("Ready"), "Not ready")}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Event registration", "version": "1",
                 "description": "Registrations, seats, waiting lists and notifications. Errors "
                                "are RFC 9457 problem documents."},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {
            "organiserKey": {"type": "http", "scheme": "bearer",
                             "description": "the ADMIN_API_KEY"}}},
    }
