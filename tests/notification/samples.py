"""Sample events and status changes for the message tests: every message kind,
in every language, through the real composers."""
from __future__ import annotations

import json
from datetime import UTC, datetime

from services.notification import messages
from services.notification.messages import Draft
from shared.contracts import Attendee, RegistrationStatusChanged, SessionOutcome
from shared.schemas import SUPPORTED_LANGUAGES, EventSpec
from tests.support.documents import event_document

KINDS = ("received", "seat_confirmed", "hold", "waitlisted", "promoted", "hold_expired",
         "cancelled", "rejected", "reminder", "session_moved", "announcement", "session_added",
         "session_cancelled")
# The session kinds' other faces: (kind, outcome, reason), each drafted like a kind.
SESSION_VARIANTS = {
    "session_added": ("session_added", "seated", "added"),
    "session_added:freed": ("session_added", "seated", "freed"),
    "session_added:asked": ("session_added", "seated", "asked"),
    "session_added:waitlisted": ("session_added", "waitlisted", "added"),
    "session_added:refused": ("session_added", "refused", "added"),
    "session_cancelled": ("session_cancelled", "cancelled", "cancelled"),
}
VARIANTS = (*KINDS, "session_added:freed", "session_added:asked", "session_added:waitlisted",
            "session_added:refused", "session_added:offered", "session_cancelled:last",
            "session_cancelled:waited")
TITLES = {"en": "Conference", "ar": "المؤتمر", "fr": "Conférence", "tr": "Konferans",
          "es": "Conferencia", "ur": "کانفرنس", "ms": "Persidangan"}
SESSION_TITLES = {"en": "Opening day", "ar": "يوم الافتتاح", "fr": "Journée d'ouverture",
                  "tr": "Açılış günü", "es": "Jornada inaugural", "ur": "افتتاحی دن",
                  "ms": "Hari perasmian"}
ANNOUNCEMENT_SUBJECTS = {
    "en": "Doors open at 9", "ar": "تُفتح الأبواب في التاسعة", "fr": "Ouverture des portes à 9 h",
    "tr": "Kapılar 9'da açılıyor", "es": "Las puertas abren a las 9", "ur": "دروازے 9 بجے کھلیں گے",
    "ms": "Pintu dibuka pada pukul 9"}
ANNOUNCEMENT_BODIES = {
    "en": "The doors open at 9 in the morning.\n\nPlease bring an identity document.",
    "ar": "تُفتح الأبواب في التاسعة صباحًا.\n\nيُرجى إحضار وثيقة هوية.",
    "fr": "Les portes ouvrent à 9 heures du matin.\n\nMerci d'apporter une pièce d'identité.",
    "tr": "Kapılar sabah 9'da açılıyor.\n\nLütfen kimlik belgenizi yanınızda getirin.",
    "es": "Las puertas abren a las 9 de la mañana.\n\nPor favor, traiga un documento de identidad.",
    "ur": "دروازے صبح 9 بجے کھلیں گے۔\n\nبراہ کرم اپنا شناختی کارڈ ساتھ لائیں۔",
    "ms": "Pintu dibuka pada pukul 9 pagi.\n\nSila bawa dokumen pengenalan diri."}

EVENT = EventSpec.model_validate_json(json.dumps(event_document(
    slug="conf", languages=list(SUPPORTED_LANGUAGES), title=TITLES, venue="Istanbul Congress Center",
    join_url="https://meet.example.org/conf?room=1&lang=x",
    sessions=[{"slug": "day-1", "title": SESSION_TITLES,
               "starts_at": "2027-03-18T10:00:00+03:00", "ends_at": "2027-03-18T18:00:00+03:00"},
              {"slug": "day-2", "title": {"en": "Workshops"},
               "starts_at": "2027-03-19T10:00:00+03:00", "ends_at": "2027-03-19T18:00:00+03:00"}])))
ORGANISER = "events@example.org"
HOLD_EXPIRES = datetime(2027, 3, 1, 12, tzinfo=UTC)
BASE = "http://localhost:8000"

# What a person may type as their name: markup, quotes, a template, bidi
# controls (an unterminated right-to-left override) and a header injection.
HOSTILE_NAME = ("Amira \"Ami\" O'Neil <script>alert(1)</script> {{ 7*7 }} "
                "\u200fأميرة\u202e\r\nBcc: victim@example.org")


def links(registration_id: str = "r1") -> dict[str, str]:
    """The links registration puts in every status change (Links.for_registration)."""
    query = "?token=T0k3n-_"
    base = f"{BASE}/api/v1/registrations/{registration_id}"
    return {"self": base + query, "cancel": f"{base}/cancel{query}",
            "confirm": f"{base}/confirm{query}", "calendar": f"{base}/calendar.ics{query}",
            "manage": f"{BASE}/registrations/{registration_id}{query}",
            "unsubscribe": f"{BASE}/unsubscribe/{registration_id}?token=U-nsub_T"}


def change(status: str, language: str = "en", cause: str | None = None, name: str = "Amira",
           sessions: tuple[str, ...] = ("day-1", "day-2"),
           country: str | None = None) -> RegistrationStatusChanged:
    return RegistrationStatusChanged(
        registration_id="r1", event_slug=EVENT.slug, status=status, previous_status="pending",
        status_seq=1, cause=cause or status,
        attendee=Attendee(name=name, email="amira@example.org", language=language,
                          timezone="America/New_York", country=country, category=None,
                          sessions=list(sessions)),
        waitlist_position=7 if status == "waitlisted" else None,
        hold_expires_at=HOLD_EXPIRES if status == "held" else None,
        links=links())


# kind -> (status, cause) of the status change that calls for it
STATUS_KINDS = {"received": ("pending", "received"), "seat_confirmed": ("confirmed", None),
                "hold": ("held", None), "waitlisted": ("waitlisted", None),
                "promoted": ("held", "promoted"), "hold_expired": ("expired", None),
                "cancelled": ("cancelled", None), "rejected": ("rejected", None)}


def compose(kind: str, language: str, name: str = "Amira", revision: int = 2,
            event: EventSpec = EVENT, country: str | None = None) -> Draft:
    """A draft of one kind, in one language, through the composer that sends it."""
    if kind in STATUS_KINDS:
        status, cause = STATUS_KINDS[kind]
        composed = messages.compose_status(event, revision, change(status, language, cause, name,
                                                                   country=country), ORGANISER)
        assert composed is not None and composed[0] == kind, (kind, composed)
        return composed[1]
    seated = change("confirmed", language, name=name, country=country)
    if kind == "reminder":
        return messages.compose_reminder(event, seated, "day-1")
    if kind == "session_moved":
        return messages.compose_moved(event, revision, seated, "day-1", ORGANISER)
    if kind == "announcement":
        return messages.compose_announcement(event, seated, ANNOUNCEMENT_SUBJECTS,
                                             ANNOUNCEMENT_BODIES)
    if kind == "session_added:offered":
        return messages.compose_offer(event, seated.model_copy(update={"attendee": seated.attendee.model_copy(
            update={"sessions": ["day-1"]})}), "day-2")
    return messages.compose_session_change(event, revision, session_change(kind, language, name,
                                                                           country), ORGANISER)


def session_change(variant: str, language: str = "en", name: str = "Amira",
                   country: str | None = None) -> RegistrationStatusChanged:
    """A follower's news of day-2: added and theirs (or waited for, or
    full), or cancelled from under them (their last session, or one they
    only waited for)."""
    if variant == "session_cancelled:last":
        return _with_news(change("confirmed", language, name=name, sessions=(), country=country),
                          "cancelled", "cancelled", cancelled=["day-2"])
    if variant == "session_cancelled:waited":
        return _with_news(change("confirmed", language, name=name, sessions=("day-1",),
                                 country=country), "cancelled", "cancelled")
    kind, outcome, reason = SESSION_VARIANTS[variant]
    if outcome == "cancelled":
        return _with_news(change("confirmed", language, name=name, sessions=("day-1",),
                                 country=country), outcome, reason, cancelled=["day-2"])
    held = ("day-1", "day-2") if outcome == "seated" else ("day-1",)
    return _with_news(change("confirmed", language, name=name, sessions=held, country=country),
                      outcome, reason, position=4 if outcome == "waitlisted" else None)


def _with_news(base: RegistrationStatusChanged, outcome, reason, position=None,
               cancelled=()) -> RegistrationStatusChanged:
    attendee = base.attendee.model_copy(update={"follows": True,
                                                "sessions_cancelled": list(cancelled)})
    return base.model_copy(update={
        "attendee": attendee, "previous_status": base.status, "cause": f"session_{outcome}",
        "session_change": SessionOutcome(session="day-2", outcome=outcome, reason=reason,
                                         position=position)})


def every_draft(name: str = "Amira", event: EventSpec = EVENT) -> dict[tuple[str, str], Draft]:
    return {(kind, language): compose(kind, language, name, event=event)
            for kind in VARIANTS for language in SUPPORTED_LANGUAGES}
