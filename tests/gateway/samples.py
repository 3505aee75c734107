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
            "answers": {"topic": "=1+1"}, "created_at": "2026-01-02T03:04:05.123456+00:00",
            "updated_at": "2026-01-02T03:04:06+00:00", **fields}


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
