"""An organiser's announcement: recorded in the audit trail, and handed to
notification (``AnnouncementRequested``), which writes to every attendee
with a seat in their language, in the same transaction."""
from __future__ import annotations

import hashlib
import uuid

from sqlalchemy.orm import Session

from shared.contracts import AnnouncementRequested
from shared.errors import Invalid

from . import audit
from .catalogue import load_event


def announcement_id(slug: str, idempotency_key: str | None) -> str:
    """A repeat with the same Idempotency-Key is the same announcement: sent once."""
    if idempotency_key is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"{slug}:{idempotency_key}".encode()).hexdigest()[:32]


def announce(session: Session, outbox, slug: str, idempotency_key: str | None, subject: dict,
             body: dict, actor: dict) -> dict:
    """``subject`` and ``body`` in at least the event's default language:
    ``{"id"}``."""
    event, _ = load_event(session, slug)
    missing = [{"field": f"{part}.{event.default_language}",
                "message": "the event's default language is required"}
               for part, texts in (("subject", subject), ("body", body))
               if event.default_language not in texts]
    if missing:
        raise Invalid("give the text in the default language", missing)
    announcement = announcement_id(slug, idempotency_key)
    outbox.add(session, AnnouncementRequested(announcement_id=announcement, event_slug=slug,
                                              subject=subject, body=body))
    audit.record(session, actor, audit.ANNOUNCEMENT, slug, announcement=announcement, languages=sorted(body))
    return {"id": announcement}
