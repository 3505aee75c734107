"""nameko entrypoints of the gateway: the public HTTP API."""
from __future__ import annotations

import functools
import hashlib
import logging
import re
import time
import uuid

import eventlet

from nameko.extensions import DependencyProvider
from nameko.web.handlers import http
from werkzeug.wrappers import Response

from shared.config import SettingsProvider
from shared.logs import Correlation
from shared.messaging import ReliableRpcProxy
from shared.metrics import EntrypointMetrics
from shared.schemas import (SLUG, AnnouncementRequest, EventSpec, RegistrationRequest,
                            WebhookRequest)

from . import exports, gathering, limits, openapi, pages
from .http_api import (Problem, call, int_arg, is_admin, json_response, read_json,
                       require_admin, require_token, validate)

log = logging.getLogger(__name__)
MAX_WAIT = 30
STATUSES = ("pending", "held", "confirmed", "waitlisted", "rejected", "cancelled", "expired")


# What ids in paths look like: anything else names nothing (and must not reach
# a query: PostgreSQL refuses a NUL in a string outright).
PATH_SHAPES = {"slug": re.compile(SLUG), "registration_id": re.compile(r"^[0-9a-f]{32}$"),
               "hook_id": re.compile(r"^[0-9a-f]{32}$")}


def check_path(kwargs: dict) -> None:
    for name, value in kwargs.items():
        shape = PATH_SHAPES.get(name)
        if shape is not None and not shape.match(value):
            raise Problem(404, "Not found", f"no such {name.removesuffix('_id').replace('_', ' ')}")


def answers_problems(method):
    """Every entrypoint answers with JSON or a problem document, never a 5xx
    traceback (an unexpected error is logged and reported as a plain 500),
    with CORS headers for allowed origins."""
    @functools.wraps(method)
    def wrapper(self, request, **kwargs):
        try:
            if request.path.startswith("/api/"):     # pages answer with a page
                check_path(kwargs)
            response = method(self, request, **kwargs)
        except Problem as problem:
            response = problem.response()
        except Exception:
            log.exception("unexpected error in %s", method.__name__)
            response = Problem(500, "Internal error").response()
        response.headers["X-Request-Id"] = self.correlation
        return limits.with_cors(response, request, self.settings.cors_allowed_origins)
    return wrapper


def rate_limited(method):
    """Public POSTs: at most RATE_LIMIT_PER_MINUTE per client address."""
    @functools.wraps(method)
    def wrapper(self, request, **kwargs):
        wait = self.limiter.check(limits.client_address(request, self.settings.trust_forwarded_for))
        if wait:
            raise Problem(429, "Too many requests", "slow down and try again later",
                          headers={"Retry-After": limits.retry_after(wait)})
        return method(self, request, **kwargs)
    return wrapper


class Limiter(DependencyProvider):
    """One rate limiter per gateway process, shared by its workers."""

    def setup(self):
        self.limiter = limits.RateLimiter(self.container.config["SETTINGS"].rate_limit_per_minute)

    def get_dependency(self, worker_ctx):
        return self.limiter


def _with_pools(counts: dict, pools: dict, kind: str) -> dict:
    """Counts per category or session, each with its own pool's seats."""
    merged = {}
    for key, pool in pools.items():
        if key.startswith(kind + ":"):
            merged[key.split(":", 1)[1]] = {"seats": pool}
    for slug, by_status in counts.items():
        merged.setdefault(slug, {}).update(by_status)
    return merged


class Gathering(DependencyProvider):
    """One gatherer of registrations per gateway process (gathering.py)."""

    def setup(self):
        self.gatherer = gathering.Gatherer()

    def get_dependency(self, worker_ctx):
        return self.gatherer


class GatewayService:
    name = "gateway"

    settings = SettingsProvider()
    registration = ReliableRpcProxy("registration")
    capacity = ReliableRpcProxy("capacity")
    notification = ReliableRpcProxy("notification")
    metrics = EntrypointMetrics()
    correlation = Correlation()
    limiter = Limiter()
    gatherer = Gathering()

    # -- organisers -------------------------------------------------------------------
    @http("POST", "/api/v1/events")
    @answers_problems
    def create_event(self, request):
        require_admin(request, self.settings.admin_api_key)
        spec = validate(EventSpec, read_json(request))
        event = call(self.registration.create_event, spec.model_dump(mode="json"))
        return json_response(event, 201, {"Location": f"/api/v1/events/{spec.slug}"})

    @http("GET", "/api/v1/events/<slug>")
    @answers_problems
    def get_event(self, request, slug):
        event = call(self.registration.get_event, slug)
        if not is_admin(request, self.settings.admin_api_key):
            return json_response({k: v for k, v in event.items()
                                  if k not in ("join_url", "revision")})
        event["seats"] = call(self.capacity.event_seats, slug)
        return json_response(event)

    @http("PATCH", "/api/v1/events/<slug>")
    @answers_problems
    def update_event(self, request, slug):
        require_admin(request, self.settings.admin_api_key)
        changes = read_json(request, ("application/json", "application/merge-patch+json"))
        return json_response(call(self.registration.update_event, slug, changes))

    @http("GET", "/api/v1/events/<slug>/stats")
    @answers_problems
    def stats(self, request, slug):
        require_admin(request, self.settings.admin_api_key)
        stats = call(self.registration.stats, slug)
        seats = call(self.capacity.event_seats, slug)
        pools = seats["pools"]
        event_pool = pools.get("event", {})
        return json_response({
            "event": slug,
            "seats": {"capacity": event_pool.get("capacity"), "used": event_pool.get("used", 0),
                      "left": event_pool.get("left")},
            **stats["registrations"],
            "per_category": _with_pools(stats["per_category"], pools, "category"),
            "per_session": _with_pools(stats["per_session"], pools, "session"),
            "per_language": stats["per_language"],
        })

    @http("GET", "/api/v1/events/<slug>/registrations")
    @answers_problems
    def list_registrations(self, request, slug):
        require_admin(request, self.settings.admin_api_key)
        status = request.args.get("status")
        if status is not None and status not in STATUSES:
            raise Problem(400, "Bad query parameter", f"status must be one of {', '.join(STATUSES)}",
                          [{"field": "status", "message": "unknown status"}])
        output = request.args.get("format", "json")
        if output not in ("json", "csv"):
            raise Problem(400, "Bad query parameter", "format is json or csv",
                          [{"field": "format", "message": "json or csv"}])
        rows = call(self.registration.list_registrations, slug, status)
        if output == "json":
            return json_response(rows)
        event = call(self.registration.get_event, slug)
        body = exports.registrations_csv(rows, [q["slug"] for q in event["questions"]])
        return Response(body, mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{slug}-registrations.csv"'})

    @http("POST", "/api/v1/events/<slug>/announcements")
    @answers_problems
    def announce(self, request, slug):
        require_admin(request, self.settings.admin_api_key)
        announcement = validate(AnnouncementRequest, read_json(request))
        event = call(self.registration.get_event, slug)
        default = event["languages"][0]
        missing = [{"field": f"{part}.{default}", "message": "the event's default language is required"}
                   for part in ("subject", "body") if default not in getattr(announcement, part)]
        if missing:
            raise Problem(422, "Validation failed", "give the text in the default language", missing)
        # A repeat with the same Idempotency-Key is the same announcement: sent once.
        key = request.headers.get("Idempotency-Key")
        announcement_id = (hashlib.sha256(f"{slug}:{key}".encode()).hexdigest()[:32] if key
                           else uuid.uuid4().hex)
        result = call(self.notification.announce, slug, announcement_id,
                      announcement.subject, announcement.body)
        return json_response(result, 202)

    @http("POST", "/api/v1/events/<slug>/webhooks")
    @answers_problems
    def add_webhook(self, request, slug):
        require_admin(request, self.settings.admin_api_key)
        hook = validate(WebhookRequest, read_json(request))
        call(self.registration.get_event, slug)          # 404 for an unknown event
        return json_response(call(self.notification.add_webhook, slug, str(hook.url)), 201)

    @http("GET", "/api/v1/events/<slug>/webhooks")
    @answers_problems
    def list_webhooks(self, request, slug):
        require_admin(request, self.settings.admin_api_key)
        call(self.registration.get_event, slug)
        return json_response(call(self.notification.list_webhooks, slug))

    @http("DELETE", "/api/v1/events/<slug>/webhooks/<hook_id>")
    @answers_problems
    def remove_webhook(self, request, slug, hook_id):
        require_admin(request, self.settings.admin_api_key)
        call(self.notification.remove_webhook, slug, hook_id)
        return Response(status=204)

    # -- attendees ----------------------------------------------------------------------
    @http("POST", "/api/v1/events/<slug>/registrations")
    @answers_problems
    @rate_limited
    def register(self, request, slug):
        body = validate(RegistrationRequest, read_json(request))
        key = request.headers.get("Idempotency-Key")
        if key is not None and not (1 <= len(key) <= 200 and key.isprintable()):
            raise Problem(400, "Bad Idempotency-Key", "1 to 200 printable characters",
                          [{"field": "Idempotency-Key", "message": "1 to 200 printable characters"}])
        result = self.gatherer.submit(
            lambda items: call(self.registration.register_many, items),
            {"slug": slug, "body": body.model_dump(mode="json"), "idempotency_key": key,
             "correlation_id": self.correlation})
        if "problem" in result:
            raise Problem(**result["problem"])
        answer = result["answer"]
        return json_response(answer, 202, {"Location": f"/api/v1/registrations/{answer['id']}"})

    @http("GET", "/api/v1/registrations/<registration_id>")
    @answers_problems
    def get_registration(self, request, registration_id):
        require_token(request, self.settings.secret_key, registration_id)
        wait = int_arg(request, "wait", 0, 0, MAX_WAIT)
        deadline = time.monotonic() + wait
        registration = call(self.registration.get_registration, registration_id)
        pause = 0.1
        while registration["status"] == "pending" and time.monotonic() < deadline:
            # Backing off keeps a crowd of waiting pages from crowding out
            # the registrations themselves during a rush.
            eventlet.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 1.5, 1.0)
            registration = call(self.registration.get_registration, registration_id)
        if registration["status"] == "waitlisted":
            live = call(self.capacity.waitlist_position, registration_id)
            registration["waitlist_position"] = live or registration["waitlist_position"]
        return json_response(registration)

    @http("POST", "/api/v1/registrations/<registration_id>/cancel")
    @answers_problems
    @rate_limited
    def cancel(self, request, registration_id):
        require_token(request, self.settings.secret_key, registration_id)
        return json_response(call(self.registration.cancel, registration_id))

    @http("POST", "/api/v1/registrations/<registration_id>/confirm")
    @answers_problems
    @rate_limited
    def confirm(self, request, registration_id):
        require_token(request, self.settings.secret_key, registration_id)
        return json_response(call(self.registration.confirm, registration_id), 202)

    @http("GET", "/api/v1/registrations/<registration_id>/calendar.ics")
    @answers_problems
    def calendar(self, request, registration_id):
        require_token(request, self.settings.secret_key, registration_id)
        ics = call(self.notification.calendar, registration_id)
        return Response(ics, mimetype="text/calendar",
                        headers={"Content-Disposition": 'attachment; filename="event.ics"'})

    @http("GET", "/events/<slug>")
    @answers_problems
    def registration_page(self, request, slug):
        try:
            check_path({"slug": slug})
            event = call(self.registration.get_event, slug)
        except Problem as problem:
            if problem.status == 404:
                return pages.html("<!DOCTYPE html><title>Not found</title><p>No such event.</p>", 404)
            raise
        return pages.register(request, event)

    @http("GET", "/static/<name>")
    def static(self, request, name):
        return pages.static(name)

    @http("GET", "/registrations/<registration_id>")
    @answers_problems
    def manage_page(self, request, registration_id):
        """The page an emailed link opens: the status, and buttons to confirm
        a held seat or cancel."""
        require_token(request, self.settings.secret_key, registration_id)
        registration = call(self.registration.get_registration, registration_id)
        event = call(self.registration.get_event, registration["event"])
        return pages.manage(registration, event, request.args["token"])

    @http("GET", "/openapi.json")
    def openapi(self, request):
        return json_response(openapi.document())

    @http("OPTIONS", "/api/<path:anything>")
    def cors_preflight(self, request, anything):
        return limits.preflight(request, self.settings.cors_allowed_origins)

    # -- operations -------------------------------------------------------------------
    @http("GET", "/health")
    def health(self, request):
        return json_response({"status": "alive"})

    @http("GET", "/ready")
    @answers_problems
    def ready(self, request):
        checks = {}
        for name, proxy in (("registration", self.registration), ("capacity", self.capacity),
                            ("notification", self.notification)):
            try:
                call(proxy.ping, timeout=3)
                checks[name] = "ok"
            except Problem:
                checks[name] = "unreachable"
        ready = all(v == "ok" for v in checks.values())
        return json_response({"status": "ready" if ready else "not ready", "checks": checks},
                             200 if ready else 503)

