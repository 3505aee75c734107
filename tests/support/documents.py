"""Event documents as the admin API takes them: a valid one with a fresh slug,
any field overridden."""
from __future__ import annotations

import uuid


def event_document(**fields) -> dict:
    document = {
        "slug": f"event-{uuid.uuid4().hex[:8]}",
        "title": {"en": "Diaspora Conference", "ar": "مؤتمر الجاليات", "fr": "Conférence de la diaspora"},
        "timezone": "Europe/Istanbul",
        "languages": ["en", "ar", "fr"],
        "format": "online",
        "join_url": "https://meet.example.org/diaspora",
        "capacity": 10,
        "waitlist": True,
        "sessions": [{"slug": "day-1", "title": {"en": "Day 1"},
                      "starts_at": "2027-03-18T10:00:00+03:00", "ends_at": "2027-03-18T18:00:00+03:00"}],
        "reminders": ["P1D"],
    }
    document.update(fields)
    return document
