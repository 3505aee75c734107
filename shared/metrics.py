"""Prometheus metrics, one registry per process, served on METRICS_PORT.

Entrypoint RED metrics come from ``EntrypointMetrics``, a dependency every
service declares; domain metrics are defined here so that names are unique and
documented in one place.
"""
from __future__ import annotations

import logging
import time

from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger(__name__)
P = "evreg_"

ENTRYPOINT_CALLS = Counter(P + "entrypoint_calls_total", "Entrypoint invocations",
                           ["service", "kind", "entrypoint", "outcome"])
ENTRYPOINT_LATENCY = Histogram(P + "entrypoint_duration_seconds", "Entrypoint latency",
                               ["service", "kind", "entrypoint"],
                               buckets=(.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
# Workers running now: a stop waits for these (SIGTERM lets them finish).
ENTRYPOINT_IN_PROGRESS = Gauge(P + "entrypoint_in_progress", "Entrypoint workers running now",
                               ["service", "entrypoint"])
REGISTRATIONS = Counter(P + "registrations_total", "Registration outcomes as recorded",
                        ["status"])
SEATS_CAPACITY = Gauge(P + "seats_capacity", "Seats in a pool (-1: unlimited)", ["event", "pool"])
SEATS_USED = Gauge(P + "seats_used", "Seats given in a pool", ["event", "pool"])
WAITLIST_LENGTH = Gauge(P + "waitlist_length", "People on the waiting list", ["event"])
MESSAGES_SENT = Counter(P + "messages_sent_total", "Messages delivered", ["kind", "channel"])
MESSAGES_FAILED = Counter(P + "messages_failed_total", "Failed delivery attempts",
                          ["kind", "channel", "final"])
# 1 while the SMTP server takes mail; 0 while it cannot (unreachable, TLS, login):
# messages wait in the delivery log meanwhile, and /ready names the cause.
SMTP_UP = Gauge(P + "smtp_up", "The SMTP server takes mail (1) or not (0)")
ADDRESSES_REFUSED = Counter(P + "addresses_refused_total",
                            "Addresses a server refused for good (marked undeliverable)")
UNSUBSCRIBES = Counter(P + "unsubscribes_total", "Attendees who unsubscribed from bulk mail")
REMINDERS_DUE = Gauge(P + "reminders_due", "Scheduled messages due now and not yet sent")
REMINDERS_OVERDUE = Gauge(P + "reminders_overdue", "Scheduled messages more than a minute late")
OUTBOX_PUBLISHED = Counter(P + "outbox_published_total", "Outbox rows published",
                           ["service", "event_type"])
OUTBOX_UNROUTABLE = Counter(P + "outbox_unroutable_total", "Outbox rows no queue took yet",
                            ["service", "event_type"])
OUTBOX_BACKLOG = Gauge(P + "outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge(P + "outbox_oldest_age_seconds", "Age of the oldest unpublished row",
                          ["service"])
HANDLER_RETRIES = Counter(P + "handler_retries_total", "Messages scheduled for a retry",
                          ["service", "event_type"])
DEAD_LETTERS = Counter(P + "dead_letters_total", "Messages parked in a dead-letter queue",
                       ["service", "event_type"])
# At-least-once made visible: a message the broker delivers again (its first
# consumer died or its channel closed before the ack), and a message the inbox
# found already processed (its effect not applied twice).
MESSAGES_REDELIVERED = Counter(P + "messages_redelivered_total",
                               "Messages received with the broker's redelivered flag",
                               ["service", "handler"])
DUPLICATES_ABSORBED = Counter(P + "duplicates_absorbed_total",
                              "Messages the inbox found already processed, so not applied again",
                              ["handler"])


def serve(port: int, ready=None) -> None:
    """Serve /metrics, /health and /ready (``ready()`` -> (bool, checks)) on
    the operations port. A port already taken (a second replica on one host)
    is reported, not fatal."""
    if port <= 0:
        return
    import json

    import eventlet
    import eventlet.wsgi
    from prometheus_client import make_wsgi_app

    metrics_app = make_wsgi_app()

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path in ("/health", "/ready"):
            ok, checks = (True, {}) if path == "/health" or ready is None else ready()
            body = json.dumps({"status": ("alive" if path == "/health" else "ready") if ok
                               else "not ready", "checks": checks}).encode()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return metrics_app(environ, start_response)

    try:
        sock = eventlet.listen(("0.0.0.0", port))
    except OSError as exc:
        log.warning("metrics not served: port %s is taken (%s); set METRICS_PORT", port, exc)
        return
    eventlet.spawn_n(eventlet.wsgi.server, sock, app, log_output=False)


class EntrypointMetrics(DependencyProvider):
    def setup(self):
        # Not in worker_ctx.data: that dict travels on as message headers.
        self._started = {}

    def worker_setup(self, worker_ctx):
        self._started[worker_ctx.call_id] = time.perf_counter()
        ENTRYPOINT_IN_PROGRESS.labels(self.container.service_name,
                                      worker_ctx.entrypoint.method_name).inc()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        # Called after the entrypoint handled the result (a message acked).
        started = self._started.pop(worker_ctx.call_id, None)
        entrypoint = worker_ctx.entrypoint
        kind = _kind(entrypoint)
        name = entrypoint.method_name
        service = self.container.service_name
        if started is not None:
            ENTRYPOINT_IN_PROGRESS.labels(service, name).dec()
        outcome = "error" if exc_info is not None else "ok"
        if kind == "http" and hasattr(result, "status_code"):
            outcome = "error" if result.status_code >= 500 else "ok"
        ENTRYPOINT_CALLS.labels(service, kind, name, outcome).inc()
        elapsed = time.perf_counter() - started if started is not None else 0.0
        if started is not None:
            ENTRYPOINT_LATENCY.labels(service, kind, name).observe(elapsed)
        # One line per handled request or message (timers only when they fail),
        # stamped with the correlation id by the log filter.
        if kind != "timer" or outcome == "error":
            log.info("%s %s.%s %s in %.1f ms", kind, service, name, outcome, elapsed * 1000,
                     extra={"entrypoint": f"{service}.{name}", "outcome": outcome})


def _kind(entrypoint) -> str:
    name = type(entrypoint).__name__.lower()
    for kind in ("rpc", "http", "timer", "event"):
        if kind in name:
            return kind
    return "other"
