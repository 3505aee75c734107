"""Registrations and their status: the attendee's side of the story.

A registration is stored ``pending`` and announced to capacity; capacity's
decision (seat, hold, waiting list, refusal) comes back and becomes the status.
Every status change is announced with a snapshot of the attendee so that the
notification service can write to them without asking anyone.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.contracts import (ACTIVE_STATUSES, Attendee, RegistrationCancelled,
                              RegistrationConfirmed, RegistrationRequested,
                              RegistrationStatusChanged, SeatDecided, SeatRules)
from shared.errors import Conflict, Invalid, NotAllowed, NotFound
from shared.schemas import EventSpec, RegistrationRequest
from shared.tokens import attendee_token

from .catalogue import load_event
from .models import idempotency_keys, registrations

OUTCOME_STATUS = {"confirmed": "confirmed", "held": "held", "waitlisted": "waitlisted",
                  "rejected": "rejected", "expired": "expired"}
FINAL_STATUSES = ("cancelled", "rejected", "expired")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Links:
    """Where an attendee acts on their registration, token included."""

    def __init__(self, base_url: str, secret_key: str):
        self.base_url = base_url
        self.secret_key = secret_key

    def token(self, registration_id: str) -> str:
        return attendee_token(self.secret_key, registration_id)

    def for_registration(self, registration_id: str) -> dict:
        base = f"{self.base_url}/api/v1/registrations/{registration_id}"
        query = f"?token={self.token(registration_id)}"
        return {"self": base + query, "cancel": f"{base}/cancel{query}",
                "confirm": f"{base}/confirm{query}", "calendar": f"{base}/calendar.ics{query}",
                # the page where a person (not a program) confirms or cancels
                "manage": f"{self.base_url}/registrations/{registration_id}{query}"}


def register(session: Session, outbox, links: Links, slug: str, request: RegistrationRequest,
             idempotency_key: str | None = None) -> dict:
    # Shared lock: a PATCH cannot remove the session or category this
    # registration names while it is being stored.
    event, revision = load_event(session, slug, lock="share")
    request_hash = _hash(slug, request)
    if idempotency_key:
        earlier = _earlier_answer(session, slug, idempotency_key, request_hash)
        if earlier is not None:
            return earlier
    choice = _checked_choice(event, request)
    email_key = request.email.lower()
    if session.execute(select(registrations.c.id).where(
            registrations.c.event_slug == slug, registrations.c.email_key == email_key,
            registrations.c.status.in_(ACTIVE_STATUSES))).first():
        raise Conflict("this address already has an active registration for the event",
                       [{"field": "email", "message": "already registered"}])
    now = utcnow()
    registration_id = uuid.uuid4().hex
    row = session.execute(registrations.insert().values(
        id=registration_id, event_slug=slug, name=request.name, email=request.email,
        email_key=email_key, status="pending", status_seq=0, decision_seq=0,
        created_at=now, updated_at=now, **choice).returning(*registrations.c)).one()
    outbox.add(session, RegistrationRequested(
        registration_id=registration_id, event_slug=slug, category=choice["category"],
        sessions=choice["sessions"], requested_at=now,
        event_revision=revision, seat_rules=SeatRules.of(event)))
    _announce(session, outbox, links, row, previous=None, cause="received")
    answer = {"id": registration_id, "status": "pending",
              "token": links.token(registration_id), "links": links.for_registration(registration_id)}
    if idempotency_key:
        session.execute(idempotency_keys.insert().values(
            event_slug=slug, key=idempotency_key, request_hash=request_hash,
            registration_id=registration_id, response=json.dumps(answer), created_at=now))
    return answer


def _hash(slug: str, request: RegistrationRequest) -> str:
    canonical = json.dumps([slug, request.model_dump(mode="json")], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _earlier_answer(session, slug, key, request_hash) -> dict | None:
    row = session.execute(select(idempotency_keys).where(
        idempotency_keys.c.event_slug == slug, idempotency_keys.c.key == key)).first()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise Invalid("this Idempotency-Key was used with a different request",
                      [{"field": "Idempotency-Key", "message": "reused with another body"}])
    return json.loads(row.response)


def _checked_choice(event: EventSpec, request: RegistrationRequest) -> dict:
    """The request's choices checked against the event; Invalid lists every problem."""
    problems = []
    language = request.language or event.default_language
    if language not in event.languages:
        problems.append({"field": "language",
                         "message": f"choose one of {', '.join(event.languages)}"})
    categories = [c.slug for c in event.categories]
    if categories and request.category not in categories:
        problems.append({"field": "category", "message": f"choose one of {', '.join(categories)}"})
    if not categories and request.category is not None:
        problems.append({"field": "category", "message": "this event has no categories"})
    session_slugs = [s.slug for s in event.sessions]
    chosen = request.sessions if request.sessions is not None else session_slugs
    if not chosen:
        problems.append({"field": "sessions", "message": "choose at least one session"})
    unknown = [s for s in chosen if s not in session_slugs]
    if unknown:
        problems.append({"field": "sessions", "message": f"unknown sessions: {', '.join(unknown)}"})
    problems.extend(_answer_problems(event, request.answers))
    if problems:
        raise Invalid("the registration does not fit this event", problems)
    return {"language": language, "timezone": request.timezone or event.timezone,
            "country": request.country, "category": request.category,
            "sessions": [s for s in session_slugs if s in chosen],   # event order, no repeats
            "answers": request.answers}


def _answer_problems(event: EventSpec, answers: dict) -> list:
    problems = []
    questions = {q.slug: q for q in event.questions}
    for slug in answers:
        if slug not in questions:
            problems.append({"field": f"answers.{slug}", "message": "no such question"})
    for slug, question in questions.items():
        value = answers.get(slug)
        if value in (None, "") and question.required:
            problems.append({"field": f"answers.{slug}", "message": "an answer is required"})
        elif value in (None, ""):
            continue
        elif question.type == "boolean" and not isinstance(value, bool):
            problems.append({"field": f"answers.{slug}", "message": "must be true or false"})
        elif question.type != "boolean" and not isinstance(value, str):
            problems.append({"field": f"answers.{slug}", "message": "must be text"})
        elif question.type == "choice" and value not in question.options:
            problems.append({"field": f"answers.{slug}", "message": "not one of the options"})
    return problems


def apply_seat_decision(session: Session, outbox, links: Links, decision: SeatDecided) -> None:
    row = _get(session, decision.registration_id, lock=True)
    if decision.decision_seq <= row.decision_seq:
        return   # an older word from capacity, overtaken by a newer one
    changes = {"decision_seq": decision.decision_seq,
               "waitlist_position": decision.waitlist_position,
               "hold_expires_at": decision.hold_expires_at}
    new_status = OUTCOME_STATUS.get(decision.outcome)
    if row.status == "cancelled" or new_status is None or new_status == row.status:
        # The attendee's cancellation stands; capacity releases on its own.
        session.execute(update(registrations).where(registrations.c.id == row.id)
                        .values(decision_seq=decision.decision_seq))
        return
    _set_status(session, outbox, links, row, new_status,
                cause="promoted" if decision.promoted else decision.outcome, **changes)


def cancel(session: Session, outbox, links: Links, registration_id: str) -> dict:
    row = _get(session, registration_id, lock=True)
    if row.status == "cancelled":
        return view(row)
    if row.status in FINAL_STATUSES:
        raise NotAllowed(f"a registration that is {row.status} cannot be cancelled")
    _set_status(session, outbox, links, row, "cancelled", cause="cancelled",
                waitlist_position=None, hold_expires_at=None)
    outbox.add(session, RegistrationCancelled(registration_id=row.id, event_slug=row.event_slug))
    return view(_get(session, registration_id))


def confirm(session: Session, outbox, registration_id: str) -> dict:
    """The attendee confirms a held seat; capacity turns the hold into a seat."""
    row = _get(session, registration_id, lock=True)
    if row.status == "confirmed":
        return view(row)
    if row.status != "held":
        raise NotAllowed(f"only a held seat can be confirmed; this registration is {row.status}")
    if row.hold_expires_at is not None and row.hold_expires_at <= utcnow():
        raise NotAllowed("the hold has expired")
    outbox.add(session, RegistrationConfirmed(registration_id=row.id, event_slug=row.event_slug))
    return view(row)


def choices_in_use(session: Session, slug: str) -> dict:
    """Sessions, categories and languages that active registrations chose."""
    rows = session.execute(select(registrations.c.sessions, registrations.c.category,
                                  registrations.c.language).where(
        registrations.c.event_slug == slug, registrations.c.status.in_(ACTIVE_STATUSES))).all()
    return {"sessions": {s for row in rows for s in row.sessions},
            "categories": {row.category for row in rows if row.category},
            "languages": {row.language for row in rows}}


def stats(session: Session, slug: str) -> dict:
    """Counts by status, overall and per category, session and language.

    Per language counts what attendees chose to listen in, so organisers can
    staff interpreters; cancelled, rejected and expired registrations are
    counted but are not listeners."""
    load_event(session, slug)
    rows = session.execute(select(registrations.c.status, registrations.c.category,
                                  registrations.c.sessions, registrations.c.language)
                           .where(registrations.c.event_slug == slug)).all()
    statuses = ("pending", "held", "confirmed", "waitlisted", "cancelled", "expired", "rejected")

    def empty():
        return dict.fromkeys(statuses, 0)
    totals, by_category, by_session, by_language = empty(), {}, {}, {}
    for row in rows:
        totals[row.status] += 1
        by_category.setdefault(row.category or "", empty())[row.status] += 1
        by_language.setdefault(row.language, empty())[row.status] += 1
        for chosen in row.sessions:
            by_session.setdefault(chosen, empty())[row.status] += 1
    by_category.pop("", None)
    return {"registrations": totals, "per_category": by_category, "per_session": by_session,
            "per_language": by_language}


def list_for_event(session: Session, slug: str, status: str | None = None) -> list[dict]:
    """Every registration of an event, oldest first (organisers only)."""
    load_event(session, slug)
    query = select(registrations).where(registrations.c.event_slug == slug)
    if status:
        query = query.where(registrations.c.status == status)
    return [view(row) for row in session.execute(query.order_by(registrations.c.created_at,
                                                                 registrations.c.id))]


def get_registration(session: Session, registration_id: str) -> dict:
    return view(_get(session, registration_id))


def view(row) -> dict:
    return {"id": row.id, "event": row.event_slug, "status": row.status,
            "waitlist_position": row.waitlist_position,
            "hold_expires_at": row.hold_expires_at.isoformat() if row.hold_expires_at else None,
            "name": row.name, "email": row.email, "language": row.language,
            "timezone": row.timezone, "country": row.country, "category": row.category,
            "sessions": row.sessions, "answers": row.answers,
            "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat()}


def _set_status(session, outbox, links, row, status, cause, **changes):
    updated = session.execute(update(registrations).where(registrations.c.id == row.id).values(
        status=status, status_seq=row.status_seq + 1, updated_at=utcnow(), **changes)
        .returning(*registrations.c)).one()
    _announce(session, outbox, links, updated, previous=row.status, cause=cause)


def _announce(session, outbox, links, row, previous, cause):
    outbox.add(session, RegistrationStatusChanged(
        registration_id=row.id, event_slug=row.event_slug, status=row.status,
        previous_status=previous, status_seq=row.status_seq, cause=cause,
        attendee=Attendee(name=row.name, email=row.email, language=row.language,
                          timezone=row.timezone, country=row.country, category=row.category,
                          sessions=row.sessions),
        waitlist_position=row.waitlist_position, hold_expires_at=row.hold_expires_at,
        links=links.for_registration(row.id)))


def _get(session: Session, registration_id: str, lock: bool = False):
    query = select(registrations).where(registrations.c.id == registration_id)
    if lock:
        query = query.with_for_update()
    row = session.execute(query).first()
    if row is None:
        raise NotFound("no such registration")
    return row
