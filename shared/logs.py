"""Log lines: readable text by default, one JSON object per line with
LOG_FORMAT=json (what docker compose sets)."""
from __future__ import annotations

import json
import logging
import sys
import threading
import uuid
from datetime import UTC, datetime

from nameko.extensions import DependencyProvider

_context = threading.local()   # green-thread local once eventlet has patched threading


def current_correlation_id() -> str | None:
    return getattr(_context, "correlation_id", None)


class CorrelationFilter(logging.Filter):
    """Stamps every record with the correlation id of the worker logging it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "correlation_id"):
            record.correlation_id = current_correlation_id()
        return True


class Correlation(DependencyProvider):
    """Carries one correlation id from the HTTP request to the email: taken
    from the incoming message's context (nameko passes ``nameko.*`` headers on
    as context data, and every RPC call and event publishes them again), or
    from the request's X-Request-Id, or made up."""

    # nameko injects dependencies before it calls worker_setup: choose here.
    def get_dependency(self, worker_ctx):
        correlation_id = worker_ctx.data.get("correlation_id") or _http_request_id(worker_ctx) \
            or uuid.uuid4().hex
        worker_ctx.data["correlation_id"] = correlation_id
        return correlation_id

    def worker_setup(self, worker_ctx):
        _context.correlation_id = worker_ctx.data.get("correlation_id")

    def worker_teardown(self, worker_ctx):
        _context.correlation_id = None


def request_id(headers) -> str | None:
    """The client's X-Request-Id, if it is one we can carry and log."""
    value = headers.get("X-Request-Id", "")
    return value if value and len(value) <= 100 and value.isprintable() else None


def _http_request_id(worker_ctx) -> str | None:
    for arg in worker_ctx.args:
        headers = getattr(arg, "headers", None)
        if headers is not None and hasattr(arg, "environ"):
            return request_id(headers)
    return None


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("correlation_id", "registration_id", "event_slug", "message_id", "kind",
                    "entrypoint", "outcome"):
            if getattr(record, key, None) is not None:
                line[key] = getattr(record, key)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class QuietExpected(logging.Filter):
    """nameko logs an expected error (a 404 answered over RPC, a message that
    waits for another) with its traceback; one line is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("(expected)"):
            record.exc_info = None
            return record.levelno >= logging.getLogger().level and \
                logging.getLogger().level <= logging.DEBUG
        return True


def configure_logging(service: str, log_format: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(QuietExpected())
    handler.addFilter(CorrelationFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s {service:<12} %(levelname)-7s %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("kombu", "amqp", "nameko", "alembic", "urllib3", "eventlet.wsgi"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
