"""Per-client rate limits and CORS, as plain functions of a request."""
from __future__ import annotations

import math
import time

from werkzeug.wrappers import Request, Response


class RateLimiter:
    """A token bucket per client: ``per_minute`` requests, refilled evenly,
    so a burst of that size is allowed and then one every 60/per_minute s.

    Held in the gateway process: with several gateway replicas behind a
    balancer each keeps its own buckets (the limit is per replica)."""

    MAX_CLIENTS = 100_000

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.per_minute = per_minute
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}

    def check(self, client: str) -> float:
        """0 if the request may proceed, else seconds until it may."""
        if self.per_minute <= 0:
            return 0.0
        now = self.clock()
        rate = self.per_minute / 60.0
        tokens, last = self.buckets.get(client, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - last) * rate)
        if tokens < 1.0:
            self.buckets[client] = (tokens, now)
            return (1.0 - tokens) / rate
        if len(self.buckets) >= self.MAX_CLIENTS:
            self._forget_full_buckets(now, rate)
        self.buckets[client] = (tokens - 1.0, now)
        return 0.0

    def _forget_full_buckets(self, now: float, rate: float) -> None:
        # A client whose bucket has refilled is indistinguishable from a new one.
        for client, (tokens, last) in list(self.buckets.items()):
            if tokens + (now - last) * rate >= self.per_minute:
                del self.buckets[client]


def client_address(request: Request, trust_forwarded: bool) -> str:
    """The client's address. Behind a proxy, the last X-Forwarded-For entry:
    the one the proxy appended itself (the ones before it are whatever the
    client wrote, and would let it claim a fresh address per request)."""
    if trust_forwarded and request.headers.get("X-Forwarded-For"):
        return request.headers["X-Forwarded-For"].split(",")[-1].strip() or "unknown"
    return request.remote_addr or "unknown"


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


CORS_HEADERS = "Content-Type, Authorization, Idempotency-Key"
CORS_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"


def allowed_origin(request: Request, allowed: tuple[str, ...]) -> str | None:
    origin = request.headers.get("Origin")
    if not origin or not allowed:
        return None
    if "*" in allowed:
        return "*"
    return origin if origin in allowed else None


def with_cors(response: Response, request: Request, allowed: tuple[str, ...]) -> Response:
    origin = allowed_origin(request, allowed)
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Location, Retry-After"
        if origin != "*":
            response.headers.add("Vary", "Origin")
    return response


def preflight(request: Request, allowed: tuple[str, ...]) -> Response:
    """The answer to a browser's OPTIONS; ``with_cors`` then adds the origin."""
    response = Response(status=204)
    if allowed_origin(request, allowed):
        response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
        response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    return response
