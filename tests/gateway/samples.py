"""Answers shaped like the real services' (the same producers where they are
pure: the event's JSON as the registration service dumps it, its links)."""
from services.registration.registrations import Links
from shared.schemas import EventSpec, parse
from shared.tokens import attendee_token
from tests.support.documents import event_document

from .conftest import SECRET_KEY

REGISTRATION_ID = "0123456789abcdef0123456789abcdef"
TOKEN = attendee_token(SECRET_KEY, REGISTRATION_ID)
HOOK_ID = "fedcba9876543210fedcba9876543210"


def event(**fields) -> dict:
    """``registration.get_event``: the stored spec and its revision."""
    document = event_document(**{"slug": "conf", "categories": [{"slug": "local", "capacity": 5}],
                                  "questions": [{"slug": "topic", "label": {"en": "Topic"}}],
                                  **fields})
    return {**parse(EventSpec, document).model_dump(mode="json"), "revision": 3}


def registration(**fields) -> dict:
    """``registration.get_registration`` (registrations.view)."""
    return {"id": REGISTRATION_ID, "event": "conf", "status": "confirmed",
            "waitlist_position": None, "hold_expires_at": None, "name": "Amira",
            "email": "amira@example.org", "language": "en", "timezone": "Europe/Istanbul",
            "country": None, "category": "local", "sessions": ["day-1"],
            "sessions_waiting": [], "sessions_cancelled": [], "follows": False,
            "answers": {"topic": "=1+1"}, "created_at": "2026-01-02T03:04:05.123456+00:00",
            "updated_at": "2026-01-02T03:04:06+00:00", **fields}


SERIES = (("day-1", "2027-03-18"), ("day-2", "2027-03-25"), ("day-3", "2027-04-01"),
          ("day-4", "2027-04-08"))


def series(titles=("Day 1", "Day 2", "Day 3", "Day 4"), cancelled=("day-3",)) -> list[dict]:
    """A webinar series' sessions, one a week; those ``cancelled`` called off."""
    return [{"slug": slug, "title": {"en": title}, "starts_at": f"{day}T10:00:00+03:00",
             "ends_at": f"{day}T12:00:00+03:00", "cancelled": slug in cancelled}
            for (slug, day), title in zip(SERIES, titles, strict=True)]


def follower(**fields) -> dict:
    """A registration without chosen sessions, in a ``series()``: it holds
    day-1, waits for day-2 (added later), lost day-3 to its cancellation, and
    day-4 (added later, after it was full) can still be asked for."""
    return registration(**{"sessions": ["day-1"], "sessions_waiting": ["day-2"],
                           "sessions_cancelled": ["day-3"], "follows": True, **fields})


def accepted(registration_id: str = REGISTRATION_ID) -> dict:
    """One ``registration.register_many`` answer."""
    links = Links("http://localhost:8000", SECRET_KEY)
    return {"id": registration_id, "status": "pending", "token": links.token(registration_id),
            "links": links.for_registration(registration_id)}


SEATS = {"pools": {"event": {"capacity": 10, "used": 3, "left": 7},
                   "category:local": {"capacity": 5, "used": 2, "left": 3}},
         "states": {"confirmed": 3}}


def counts(**given) -> dict:
    return {status: given.get(status, 0) for status in
            ("pending", "held", "confirmed", "waitlisted", "rejected", "cancelled", "expired")}


STATS = {"registrations": counts(confirmed=3, cancelled=1),
         "per_category": {"local": counts(confirmed=2)},
         "per_session": {"day-1": counts(confirmed=3, cancelled=1)},
         "per_language": {"en": counts(confirmed=3, cancelled=1)}}
WEBHOOK = {"id": HOOK_ID, "event_slug": "conf", "url": "https://hooks.example.org/x",
           "secret": "s3cret", "created_at": "2026-01-02T03:04:05+00:00"}
