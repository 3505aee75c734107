"""The gateway's one HTTP entrypoint, ``route``, and the server behind it.

What every route shares is said here once: the shape of ids in paths, who
may call it (organiser key, attendee token, anyone), the rate limit of public
POSTs, failures as problem documents, and the request id and CORS headers on
every answer. Each route also carries its documentation (``Doc``), from which
openapi.py builds the document.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from functools import partial

from eventlet.event import Event
from nameko.extensions import DependencyProvider, SharedExtension
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import BaseConverter, Map
from werkzeug.wrappers import Request, Response

from shared import logs
from shared.schemas import SLUG
from shared.tokens import unsubscribe_token

from . import console, limits, pages
from .http_api import Problem, call, presented_key, require_token

log = logging.getLogger(__name__)

# Who may call a route. UNSUBSCRIBER: whoever holds the one-click unsubscribe
# link of a bulk message (a mailbox provider, on its user's behalf).
# ATTENDEE_OR_ORGANISER: the attendee's token, or an organiser key with the
# route's scope that reaches the registration's event.
PUBLIC, ORGANISER, ATTENDEE, UNSUBSCRIBER = "public", "organiser", "attendee", "unsubscriber"
ATTENDEE_OR_ORGANISER = "attendee or organiser"


class SlugConverter(BaseConverter):
    """An event's slug; anything else in its place names nothing (and never
    reaches a query: PostgreSQL refuses a NUL in a string outright)."""
    regex = SLUG.removeprefix("^").removesuffix("$")


class IdConverter(BaseConverter):
    regex = "[0-9a-f]{32}"


CONVERTERS = {"slug": SlugConverter, "id": IdConverter}


@dataclass(frozen=True)
class Doc:
    """A route's documentation. ``answers``: status -> a model (JSON), a
    media type (text), None (no body), or a tuple of these. Error answers
    follow from the route (its caller, body, params, path ids) plus ``errors``."""
    summary: str = ""
    answers: dict = field(default_factory=dict)
    body: type | None = None
    media: tuple[str, ...] = ("application/json",)
    params: tuple = ()
    errors: tuple[int, ...] = ()
    tag: str | None = None
    documented: bool = True

    def __post_init__(self):
        if self.documented and not (self.summary and self.answers):
            raise TypeError("a documented route needs a summary and its answers")


class Keys(DependencyProvider):
    """``self.keys(request, slug=None, registration_id=None)``: the principal
    of the request's organiser key (who, which organisation, scopes, events),
    once registration, which keeps the keys, has found that it reaches the
    event (or the registration's) with the route's scope; else 401, 403 or
    404 (another organisation's event is not there). Asked on every call, so
    a revoked key is refused at once by every gateway."""

    def get_dependency(self, worker_ctx):
        return partial(self.admit, worker_ctx)

    def admit(self, worker_ctx, request: Request, slug: str | None = None,
              registration_id: str | None = None) -> dict:
        settings = self.container.config["SETTINGS"]
        presented = presented_key(request, settings.admin_api_key, settings.secret_key)
        return call(worker_ctx.service.registration.access, presented,
                    list(worker_ctx.entrypoint.scopes), slug, registration_id)


class Console(DependencyProvider):
    """``self.console``: the organiser console's cookies (console.Jar);
    ``self.console.session(request)`` is the session a request carries, or None."""

    def setup(self):
        self.jar = console.Jar.of(self.container.config["SETTINGS"])

    def get_dependency(self, worker_ctx):
        return self.jar


class RateLimit(SharedExtension):
    """One token bucket per client for the whole process, shared by every
    rate-limited route (limits.RateLimiter)."""

    def setup(self):
        settings = self.container.config["SETTINGS"]
        self.limiter = limits.RateLimiter(settings.rate_limit_per_minute)
        self.trust_forwarded = settings.trust_forwarded_for

    def admit(self, request: Request) -> None:
        wait = self.limiter.check(limits.client_address(request, self.trust_forwarded))
        if wait:
            raise Problem(429, "Too many requests", "slow down and try again later",
                          headers={"Retry-After": limits.retry_after(wait)})


def request_id(request: Request) -> str:
    """For an answer given before any worker ran (which would take the id
    from shared.logs.Correlation): the client's X-Request-Id, else a new one."""
    return logs.request_id(request.headers) or uuid.uuid4().hex


class ApiServer(WebServer):
    """nameko's web server with typed ids in paths, and problem documents
    (HTML pages under a page's path) for paths and methods it does not know."""

    @property
    def settings(self):
        return self.container.config["SETTINGS"]

    def make_url_map(self) -> Map:
        url_map = Map(converters=CONVERTERS)
        for route in self._providers:
            rule = route.get_url_rule()
            rule.endpoint = route
            url_map.add(rule)
        return url_map

    def get_wsgi_app(self):
        return ApiApp(self)

    def finish(self, request: Request, response: Response, request_id: str) -> Response:
        response.headers["X-Request-Id"] = request_id
        return limits.with_cors(response, request, self.settings.cors_allowed_origins)

    def unmatched(self, request: Request, exc: HTTPException):
        """The answer when no route takes the request."""
        if isinstance(exc, MethodNotAllowed):
            api = request.path.startswith("/api/")
            if api and request.method == "OPTIONS":
                response = limits.preflight(request, self.settings.cors_allowed_origins)
            else:
                methods = set(exc.valid_methods or ()) | ({"OPTIONS"} if api else set())
                allowed = ", ".join(sorted(methods))
                response = Problem(405, "Method not allowed", f"use {allowed}",
                                   headers={"Allow": allowed}).response()
        elif isinstance(exc, NotFound):
            pages_here = any(request.path.startswith(route.url.split("<")[0])
                             for route in self._providers if route.page)
            response = pages.problem(request, 404) if pages_here else \
                Problem(404, "Not found", "no such path").response()
        else:
            return exc          # a redirect werkzeug chose
        return self.finish(request, response, request_id(request))


class ApiApp(WsgiApp):
    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)
        try:
            route, request.path_values = self.url_map.bind_to_environ(environ).match()
        except HTTPException as exc:
            response = self.server.unmatched(request, exc)
        else:
            response = route.handle_request(request)
        return response(environ, start_response)


class HttpRoute(HttpRequestHandler):
    """``@route(method, path, caller=..., rate_limited=..., page=..., **doc)``.

    The caller and the rate limit are checked before a worker is spawned:
    refused requests take no worker. A ``Problem`` raised anywhere is its
    answer (a 404 of a page is the HTML not-found page); any other exception
    is logged and answered as a plain 500."""
    server = ApiServer()
    rate_limit = RateLimit()

    def __init__(self, method, url, *, caller=PUBLIC, scopes=(), rate_limited=False, page=False,
                 **doc):
        super().__init__(method, url, expected_exceptions=Problem)
        self.caller, self.rate_limited, self.page = caller, rate_limited, page
        self.scopes = tuple(scopes)           # an organiser key needs every one of these
        self.doc = Doc(**doc)

    def handle_request(self, request: Request) -> Response:
        request.shallow = False
        try:
            args, kwargs = self.get_entrypoint_parameters(request)
            self.admit(request, kwargs)
            self.check_signature(args, kwargs)
            event = Event()
            self.container.spawn_worker(
                self, args, kwargs, context_data=self.server.context_data_from_headers(request),
                handle_result=partial(self.handle_result, event))
            return event.wait()
        except Exception as exc:
            if not isinstance(exc, Problem):
                log.exception("unexpected error before %s ran", self.method_name)
            return self.server.finish(request, self.response_from_exception(exc, request),
                                      request_id(request))

    def admit(self, request: Request, path_values: dict) -> None:
        if self.rate_limited:
            self.rate_limit.admit(request)
        settings = self.server.settings
        caller = self.caller
        if caller == ATTENDEE_OR_ORGANISER:
            caller = ATTENDEE if "token" in request.args else ORGANISER
        if caller == ORGANISER:
            # what it reaches: Keys, in the worker
            presented_key(request, settings.admin_api_key, settings.secret_key)
        elif caller == ATTENDEE:
            require_token(request, settings.secret_key, path_values["registration_id"])
        elif caller == UNSUBSCRIBER:
            require_token(request, settings.secret_key, path_values["registration_id"],
                          make=unsubscribe_token)

    def handle_result(self, event, worker_ctx, result, exc_info):
        """In the worker, before metrics and logs see the outcome: the answer
        itself, whatever happened (nameko has logged an unexpected error)."""
        request = worker_ctx.args[0]
        try:
            response = self.response_from_result(result) if exc_info is None \
                else self.response_from_exception(exc_info[1], request)
        except Exception:
            log.exception("%s answered with something that is not an answer", self.method_name)
            response = self.response_from_exception(None, request)
        response = self.server.finish(request, response,
                                      worker_ctx.data.get("correlation_id") or uuid.uuid4().hex)
        event.send(response)
        return response, None

    def response_from_exception(self, exc, request: Request) -> Response:
        problem = exc if isinstance(exc, Problem) else Problem(500, "Internal error")
        # a person reads a page's error: in their language, never as JSON
        if not self.page:
            return problem.response()
        response = pages.problem(request, problem.status)
        response.headers.update(problem.headers)        # Retry-After, Allow
        return response


route = HttpRoute.decorator
