"""Turning timestamps into the figures of a scenario.

Every clock here is the machine's wall clock (time.time()): the client's send
and answer times, the registration service's created_at/updated_at, and the
sink's arrival times are all taken on this one machine, so they compare.
"""
from __future__ import annotations

import math
from datetime import datetime

from .client import Attempt


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def spread(values: list[float], scale: float = 1000.0) -> dict:
    """p50/p99/max of seconds, given in ms by default."""
    def at(fraction):
        value = percentile(values, fraction)
        return None if value is None else round(value * scale, 1)
    return {"p50": at(0.50), "p99": at(0.99), "max": at(1.0), "n": len(values)}


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def decided_at(rows: list[dict]) -> dict[str, float]:
    """email -> when the server decided it (updated_at of a decided row; a
    registration changes only once in these scenarios: pending -> decision)."""
    return {row["email"].lower(): epoch(row["updated_at"]) for row in rows if row["status"] != "pending"}


def stages(attempts: list[Attempt], decided: dict[str, float], mailed: dict[str, float]) -> dict:
    """Where one registration's time goes: POST -> 202 -> decision -> email.

    The 202 stages count answered requests only; the stages from the POST to
    the decision and the email count every request the server registered,
    including those whose answer came too late for the client (open loop)."""
    accept, decide, to_decision, total = [], [], [], []
    for attempt in attempts:
        when = decided.get(attempt.email)
        if attempt.status == 202:
            accept.append(attempt.answered - attempt.sent)
            if when is not None:
                decide.append(when - attempt.answered)
        if when is not None:
            to_decision.append(when - attempt.sent)
        if attempt.email in mailed:
            total.append(mailed[attempt.email] - attempt.sent)
    mail = [mailed[email] - when for email, when in decided.items() if email in mailed]
    return {"post_to_202": spread(accept), "202_to_decision": spread(decide),
            "decision_to_email": spread(mail), "post_to_decision": spread(to_decision),
            "post_to_email": spread(total), "accept_all": accept_latency(attempts)}


def accept_latency(attempts: list[Attempt]) -> dict:
    """Accept latency over every request sent, an unanswered or failed one
    counting as slower than any answer: p50/p99 are None ("timed out") when
    they fall among those. Without this an overloaded open loop would report
    only the lucky requests."""
    answered = sorted(a.answered - a.sent for a in attempts if a.status == 202)
    figures = {"n": len(attempts), "not_accepted": len(attempts) - len(answered)}
    for name, fraction in (("p50", 0.50), ("p99", 0.99)):
        rank = max(1, math.ceil(fraction * len(attempts)))
        figures[name] = round(answered[rank - 1] * 1000, 1) if rank <= len(answered) else None
    return figures


def seconds_since(start: float, moments) -> float | None:
    moments = list(moments)
    return round(max(moments) - start, 3) if moments else None


def per_second(count: int, seconds: float | None) -> float | None:
    return round(count / seconds, 2) if seconds else None
