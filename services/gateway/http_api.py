"""The HTTP side of the gateway as plain functions: reading bodies, checking
credentials, answering through a model, and turning every failure into an
RFC 9457 problem document. Nothing here knows nameko (``routing.py`` does)."""
from __future__ import annotations

import hmac
import json
from functools import cache
from urllib.parse import urlencode

import eventlet
from amqp.exceptions import AMQPError
from kombu.exceptions import KombuError
from nameko.exceptions import RemoteError, UnknownService
from pydantic import BaseModel, TypeAdapter, ValidationError
from werkzeug.wrappers import Request, Response

from shared import keys
from shared.errors import DomainError
from shared.schemas import field_errors, parse
from shared.tokens import attendee_token, token_is_valid

from . import console
from .models import ProblemDocument

MAX_BODY = 64 * 1024
# Errors a service raises when its database connection dropped: worth a retry.
TRANSIENT_REMOTE_ERRORS = ("OperationalError", "InterfaceError", "DisconnectionError",
                           "TimeoutError", "PendingRollbackError")
RPC_TIMEOUT = 15.0


class Problem(Exception):
    """An HTTP error answer, raised anywhere and rendered once."""

    def __init__(self, status: int, title: str, detail: str = "", fields: list | None = None,
                 headers: dict | None = None):
        super().__init__(detail or title)
        self.status, self.title, self.detail = status, title, detail
        self.fields, self.headers = fields or [], headers or {}

    def response(self) -> Response:
        body = {"type": "about:blank", "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if self.fields:
            body["errors"] = self.fields
        return answer(ProblemDocument, body, self.status, self.headers,
                      mimetype="application/problem+json")


@cache
def _adapter(shape) -> TypeAdapter:
    return TypeAdapter(shape)


def answer(shape, data, status: int = 200, headers: dict | None = None,
           mimetype: str = "application/json") -> Response:
    """``data`` as JSON, through ``shape`` (a model of models.py, or e.g.
    ``list[Registration]``): a field the shape does not know, or a value of
    the wrong type, is a bug here, not something to send on."""
    adapter = _adapter(shape)
    value = adapter.validate_json(json.dumps(data))
    body = adapter.dump_python(value, mode="json", exclude_unset=True)
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=mimetype,
                    headers=headers or {})


def next_link(request: Request, cursor: str | None) -> dict:
    """The Link header (RFC 8288) naming the next page, if there is one: this
    request's URL (relative, so it holds behind any proxy) with ``after``."""
    if cursor is None:
        return {}
    query = urlencode([*((k, v) for k, v in request.args.items(multi=True) if k != "after"),
                       ("after", cursor)])
    return {"Link": f'<{request.path}?{query}>; rel="next"'}


def attachment(body, mimetype: str, filename: str) -> Response:
    """``body``: text, or an iterable of text streamed as it comes."""
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def read_json(request: Request, media_types=("application/json",)) -> dict:
    """The request's JSON object, within the size limit, or a Problem."""
    if request.mimetype not in media_types:
        raise Problem(415, "Unsupported media type", "send the body as application/json")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Problem(413, "Body too large", f"at most {MAX_BODY} bytes")
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise Problem(413, "Body too large", f"at most {MAX_BODY} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Problem(400, "Malformed JSON", str(exc)[:200]) from None
    except RecursionError:
        raise Problem(400, "Malformed JSON", "nested too deeply") from None
    if not isinstance(data, dict):
        raise Problem(400, "Malformed JSON", "the body must be a JSON object")
    return data


def validate(model: type[BaseModel], data: dict) -> BaseModel:
    try:
        return parse(model, data)
    except ValidationError as exc:
        raise Problem(422, "Validation failed", "some fields are not valid",
                      fields=field_errors(exc)) from None


UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="organisers"'}


def bearer_key(request: Request) -> str | None:
    """The key of ``Authorization: Bearer <key>``, if the request has one."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given = given.strip()
    return given if scheme.lower() == "bearer" and given.isascii() and given else None


def require_bearer(request: Request) -> str:
    key = bearer_key(request)
    if key is None:
        raise Problem(401, "Unauthorized", "an organiser API key is required",
                      headers=UNAUTHORIZED)
    return key


def presented_key(request: Request, admin_key: str, secret_key: str) -> keys.Fingerprint | None:
    """What the request's organiser key is: None for the installation key
    (ADMIN_API_KEY, compared in constant time), else the fingerprint of an
    organisation's key (shared.keys: its secret stays here); 401 for no key
    or anything not shaped like one. Without an Authorization header, the
    key the organiser console signed in with (console.py), if the request
    carries its session, and for a change its CSRF token (else 403)."""
    if bearer_key(request) is None:
        session = console.of_request(request, secret_key, admin_key)
        if session is not None:
            if request.method not in console.SAFE_METHODS and \
                    not console.carries_token(request, session.csrf):
                raise Problem(403, "Forbidden", "the console's CSRF token is missing or wrong")
            return session.key
    return key_fingerprint(require_bearer(request), admin_key)


def key_fingerprint(key: str, admin_key: str) -> keys.Fingerprint | None:
    """None for the installation key, else the fingerprint of an
    organisation's key; 401 for what is neither."""
    if hmac.compare_digest(key.encode(), admin_key.encode()):
        return None
    fingerprint = keys.fingerprint(key)
    if fingerprint is None:
        raise Problem(401, "Unauthorized", "this is not an API key", headers=UNAUTHORIZED)
    return fingerprint


def require_token(request: Request, secret_key: str, registration_id: str,
                  make=attendee_token) -> None:
    # Unknown id and wrong token look the same: nothing can be enumerated.
    if not token_is_valid(secret_key, registration_id, request.args.get("token"), make):
        raise Problem(404, "Not found", "no such registration")


def call_or(fallback, method, *args, timeout: float, **kwargs):
    """``call``, or ``fallback`` when the service does not answer (a 503):
    for what only adds to an answer the gateway can give without it."""
    try:
        return call(method, *args, timeout=timeout, **kwargs)
    except Problem as problem:
        if problem.status != 503:
            raise
        return fallback


def call(method, *args, timeout: float = RPC_TIMEOUT, **kwargs):
    """An RPC call that gives up: a service that does not answer is a 503."""
    try:
        with eventlet.Timeout(timeout):
            return method(*args, **kwargs)
    except eventlet.Timeout:
        raise Problem(503, "Service unavailable", "the system is busy; try again",
                      headers={"Retry-After": "2"}) from None
    except DomainError as exc:
        raise Problem(exc.status, exc.title, exc.detail, exc.fields,
                      headers=UNAUTHORIZED if exc.status == 401 else None) from None
    except UnknownService:
        raise Problem(503, "Service unavailable", "a service is not running yet",
                      headers={"Retry-After": "5"}) from None
    except RemoteError as exc:
        if exc.exc_type in TRANSIENT_REMOTE_ERRORS:
            raise Problem(503, "Service unavailable", "a database is briefly unavailable",
                          headers={"Retry-After": "2"}) from exc
        raise
    except (OSError, ConnectionError, AMQPError, KombuError) as exc:
        raise Problem(503, "Service unavailable", "the message broker cannot be reached",
                      headers={"Retry-After": "5"}) from exc

