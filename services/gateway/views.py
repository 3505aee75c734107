"""What the gateway makes of its services' answers, with no HTTP in it: the
public view of an event, an event's stats from registration's counts and
capacity's seats, and a registration once it is no longer pending."""
from __future__ import annotations

import time
from collections.abc import Callable

from shared.statuses import Status

# An event's fields only its organisers see.
PRIVATE_EVENT_FIELDS = ("join_url", "revision", "organisation")


def public_event(event: dict) -> dict:
    return {key: value for key, value in event.items() if key not in PRIVATE_EVENT_FIELDS}


def missing_translations(event: dict) -> list[dict]:
    """Each organiser text not written in every language of the event:
    ``[{"field": "sessions.day-2.title", "languages": ["ur"]}]``. Readers of
    those languages read the default language's text instead, so organisers
    fill these before the rush."""
    texts = [("title", event["title"]), ("timezone_label", event.get("timezone_label")),
             *((f"sessions.{s['slug']}.title", s["title"]) for s in event["sessions"]),
             *((f"categories.{c['slug']}.title", c.get("title")) for c in event["categories"]),
             *((f"questions.{q['slug']}.label", q["label"]) for q in event["questions"])]
    missing = []
    for field, text in texts:
        absent = [language for language in event["languages"] if text and not text.get(language)]
        if absent:
            missing.append({"field": field, "languages": absent})
    return missing


def with_reach(registrations: list[dict], reach: dict[str, dict]) -> list[dict]:
    """Each registration with whether mail reaches its attendee
    (``notification.reach_of_event``: only those it has something to say of)."""
    return [{**registration, **reach.get(registration["id"], NO_NEWS)}
            for registration in registrations]


NO_NEWS = {"unsubscribed_at": None, "undeliverable": None}


def stats(slug: str, registration_stats: dict, event_seats: dict, messages: dict,
          country_name: Callable[[str], str], sessions: list[dict]) -> dict:
    """``registration.stats`` (counts by status, overall and per category,
    session, language and country, check-ins, registrations per hour) with
    ``capacity.event_seats`` (each pool's seats), ``notification.message_counts``
    (messages by state, who unsubscribed, who cannot be reached), each
    country's name (shared.countries) and the event's ``sessions`` (which
    of them the organisers cancelled)."""
    pools = event_seats["pools"]
    event_pool = pools.get("event", {})
    return {
        "event": slug,
        "seats": {"capacity": event_pool.get("capacity"), "used": event_pool.get("used", 0),
                  "left": event_pool.get("left")},
        **registration_stats["registrations"],
        "per_category": _with_pools(registration_stats["per_category"], pools, "category"),
        "per_session": _with_cancelled(
            _with_pools(registration_stats["per_session"], pools, "session"), sessions),
        "per_language": registration_stats["per_language"],
        # a registration service older than per_country counts none
        "per_country": {code: {"name": country_name(code), **counts}
                        for code, counts in registration_stats.get("per_country", {}).items()},
        "mail": messages,
        "checked_in": registration_stats.get("checked_in", 0),
        "timeline": registration_stats.get("timeline", []),
    }


def _with_pools(counts: dict, pools: dict, kind: str) -> dict:
    """Counts per category or session, each with its own pool's seats
    (capacity names those pools ``category:<slug>`` and ``session:<slug>``)."""
    merged = {}
    for key, pool in pools.items():
        if key.startswith(kind + ":"):
            merged[key.split(":", 1)[1]] = {"seats": pool}
    for slug, by_status in counts.items():
        merged.setdefault(slug, {}).update(by_status)
    return merged


def _with_cancelled(per_session: dict, sessions: list[dict]) -> dict:
    """Every session of the event, each saying whether it was cancelled
    (one nobody chose yet is listed too: organisers see the whole programme)."""
    for session in sessions:
        per_session.setdefault(session["slug"], {})["session_cancelled"] = session.get(
            "cancelled", False)
    return per_session


def wait_while_pending(fetch, seconds: float, sleep, clock=time.monotonic) -> dict:
    """``fetch()`` again until the registration is no longer pending or
    ``seconds`` have passed. The pauses grow, so that a crowd of waiting
    pages does not crowd out the registrations themselves during a rush."""
    deadline = clock() + seconds
    registration = fetch()
    pause = 0.1
    while registration["status"] == Status.PENDING and clock() < deadline:
        sleep(min(pause, max(0.0, deadline - clock())))
        pause = min(pause * 1.5, 1.0)
        registration = fetch()
    return registration
