"""Registrations and their status: the attendee's side of the story.

A registration is stored ``pending`` and announced to capacity; capacity's
decision (seat, hold, waiting list, refusal) comes back and becomes the status.
Every status change is announced with a snapshot of the attendee so that the
notification service can write to them without asking anyone. The first is
the decision, unless that takes long: then the registration is announced as
pending (cause "received") first.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.check_in import new_code
from shared.clock import utcnow
from shared.contracts import (
    Attendee,
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationRequested,
    RegistrationStatusChanged,
    RegistrationUnfollowed,
    SeatRules,
    SessionOutcome,
    SessionRequested,
)
from shared.db import insert_absent, locked
from shared.errors import Conflict, DomainError, Invalid, NotAllowed, NotFound
from shared.schemas import EventSpec, RegistrationRequest
from shared.statuses import ACTIVE, FINAL, SEATED, Status
from shared.tokens import attendee_token, unsubscribe_token

from . import audit
from .catalogue import load_event
from .models import idempotency_keys, registrations


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
                "manage": f"{self.base_url}/registrations/{registration_id}{query}",
                # one-click unsubscribe from bulk mail (RFC 8058): its token
                # proves only that, as mailbox providers follow it unasked
                "unsubscribe": f"{self.base_url}/unsubscribe/{registration_id}"
                               f"?token={unsubscribe_token(self.secret_key, registration_id)}"}


@dataclass
class Submission:
    """One registration request as the gateway passed it on: the parsed
    request, or the error that parsing it gave."""
    slug: str
    request: RegistrationRequest | DomainError
    idempotency_key: str | None = None
    correlation_id: str | None = None     # the HTTP request's, carried to the email


def register(session: Session, outbox, links: Links, slug: str, request: RegistrationRequest,
             idempotency_key: str | None = None) -> dict:
    [result] = register_many(session, outbox, links, [Submission(slug, request, idempotency_key)])
    if isinstance(result, DomainError):
        raise result
    return result


def register_many(session: Session, outbox, links: Links,
                  submissions: list[Submission]) -> list[dict | DomainError]:
    """Store many registrations in one transaction; for each submission its
    answer (``{"id", "status", "token", "links"}``) or its error. A repeat of
    an Idempotency-Key gets the first answer; an address with an active
    registration for the event gets a Conflict."""
    results: list = [s.request if isinstance(s.request, DomainError) else None
                     for s in submissions]
    by_event: dict[str, list[int]] = {}
    for index, submission in enumerate(submissions):
        if results[index] is None:
            by_event.setdefault(submission.slug, []).append(index)
    for slug in sorted(by_event):
        try:
            # Shared lock: a PATCH cannot remove the session or category
            # these registrations name while they are being stored.
            event, revision = load_event(session, slug, lock="share")
        except NotFound as missing:
            for index in by_event[slug]:
                results[index] = missing
            continue
        batch = _EventBatch(session, outbox, links, event, revision)
        for index, answer in batch.register([(i, submissions[i]) for i in by_event[slug]]).items():
            results[index] = answer
    return results


class _EventBatch:
    """The registrations of one batch for one event."""

    def __init__(self, session, outbox, links, event: EventSpec, revision: int):
        self.session, self.outbox, self.links = session, outbox, links
        self.event, self.revision, self.slug = event, revision, event.slug

    def register(self, submissions: list[tuple[int, Submission]]) -> dict:
        results: dict[int, dict] = {}
        new: list[_New] = []
        # Active registrations first, earlier answers second: an earlier
        # answer committed between the two reads is then seen by the second,
        # so a retry of a request that just went through gets its answer,
        # never a Conflict with itself.
        active = self._active({s.request.email.lower() for _, s in submissions
                               if isinstance(s.request, RegistrationRequest)})
        earlier = self._earlier({s.idempotency_key for _, s in submissions} - {None})
        in_batch: dict[str, tuple[str, dict]] = {}
        for index, submission in submissions:
            results[index] = self._answer(index, submission, active, earlier, in_batch, new)
        self._store(new, results)
        return results

    def _answer(self, index, submission, active, earlier, in_batch, new):
        request, key = submission.request, submission.idempotency_key
        request_hash = _hash(self.slug, request)
        if key in earlier or key in in_batch:
            first_hash, answer = earlier.get(key) or in_batch[key]
            if first_hash != request_hash:
                return _key_reused()
            return answer
        try:
            choice = _checked_choice(self.event, request)
        except Invalid as problem:
            return problem
        email_key = request.email.lower()
        if email_key in active:
            return Conflict("this address already has an active registration for the event",
                            [{"field": "email", "message": "already registered"}])
        active.add(email_key)
        registration_id = uuid.uuid4().hex
        answer = {"id": registration_id, "status": Status.PENDING,
                  "token": self.links.token(registration_id),
                  "links": self.links.for_registration(registration_id)}
        if key:
            in_batch[key] = (request_hash, answer)
        new.append(_New(index, request, key, request_hash, choice, answer,
                        submission.correlation_id))
        return answer

    def _active(self, email_keys) -> set:
        return set(self.session.execute(select(registrations.c.email_key).where(
            registrations.c.event_slug == self.slug, registrations.c.email_key.in_(email_keys),
            registrations.c.status.in_(ACTIVE))).scalars())

    def _earlier(self, keys) -> dict:
        if not keys:
            return {}
        return {row.key: (row.request_hash, json.loads(row.response)) for row in self.session.execute(
            select(idempotency_keys).where(idempotency_keys.c.event_slug == self.slug,
                                           idempotency_keys.c.key.in_(keys)))}

    def _store(self, new: list[_New], results: dict):
        now = utcnow()
        # Keys first: a concurrent twin holding the same key makes this
        # insert wait for it; if it committed, its answer is the answer.
        keyed = sorted((n for n in new if n.key), key=lambda n: n.key or "")
        claimed = set(insert_absent(self.session, idempotency_keys, [
            {"event_slug": self.slug, "key": n.key, "request_hash": n.request_hash,
             "registration_id": n.answer["id"], "response": json.dumps(n.answer), "created_at": now}
            for n in keyed], idempotency_keys.c.key))
        lost = [n for n in keyed if n.key not in claimed]
        if lost:
            earlier = self._earlier({n.key for n in lost})
            for n in lost:
                first_hash, first_answer = earlier[n.key]
                results[n.index] = first_answer if first_hash == n.request_hash else _key_reused()
            new = [n for n in new if n not in lost]
        if not new:
            return
        rows = [{"id": n.answer["id"], "event_slug": self.slug, "name": n.request.name,
                 "email": n.request.email, "email_key": n.request.email.lower(), "status": Status.PENDING,
                 "status_seq": 0, "decision_seq": 0, "waitlist_position": None,
                 "hold_expires_at": None, "sessions_waiting": [], "sessions_cancelled": [],
                 "check_in_code": new_code(), "created_at": now, "updated_at": now, **n.choice}
                for n in new]
        self.session.execute(registrations.insert(), rows)
        rules = SeatRules.of(self.event)
        messages = []
        for n, row in zip(new, rows):
            messages.append((RegistrationRequested(
                registration_id=row["id"], event_slug=self.slug, category=row["category"],
                sessions=row["sessions"], requested_at=now, event_revision=self.revision,
                seat_rules=rules, follows=row["follows"]), n.correlation_id))
        self.outbox.add_many(self.session, messages)


@dataclass(eq=False)
class _New:
    index: int
    request: RegistrationRequest
    key: str | None
    request_hash: str
    choice: dict
    answer: dict
    correlation_id: str | None


def _key_reused() -> Invalid:
    return Invalid("this Idempotency-Key was used with a different request",
                   [{"field": "Idempotency-Key", "message": "reused with another body"}])


def _hash(slug: str, request: RegistrationRequest) -> str:
    canonical = json.dumps([slug, request.model_dump(mode="json")], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _checked_choice(event: EventSpec, request: RegistrationRequest) -> dict:
    """The request's choices checked against the event; Invalid lists every problem."""
    language = request.language or event.default_language
    problems = _language_problems(event, language)
    categories = [c.slug for c in event.categories]
    if categories and request.category not in categories:
        problems.append({"field": "category", "message": f"choose one of {', '.join(categories)}"})
    if not categories and request.category is not None:
        problems.append({"field": "category", "message": "this event has no categories"})
    session_slugs = [s.slug for s in event.sessions]
    chosen = request.sessions if request.sessions is not None else event.open_sessions
    if not chosen:
        problems.append({"field": "sessions", "message": "choose at least one session"})
    unknown = [s for s in chosen if s not in session_slugs]
    if unknown:
        problems.append({"field": "sessions", "message": f"unknown sessions: {', '.join(unknown)}"})
    cancelled = [s for s in chosen if s in session_slugs and s not in event.open_sessions]
    if cancelled:
        problems.append({"field": "sessions", "message": f"cancelled: {', '.join(cancelled)}"})
    problems.extend(_answer_problems(event, request.answers))
    if problems:
        raise Invalid("the registration does not fit this event", problems)
    return {"language": language, "timezone": request.timezone or event.timezone,
            "country": request.country, "category": request.category,
            "sessions": [s for s in session_slugs if s in chosen],   # event order, no repeats
            # Without a choice, the attendee takes the event as it grows (a series).
            "follows": request.sessions is None, "answers": request.answers}


def _language_problems(event: EventSpec, language: str) -> list:
    if language in event.languages:
        return []
    return [{"field": "language", "message": f"choose one of {', '.join(event.languages)}"}]


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
        elif question.type == "choice" and value not in (question.options or []):
            problems.append({"field": f"answers.{slug}", "message": "not one of the options"})
    return problems


def cancel(session: Session, outbox, links: Links, registration_id: str,
           organiser: dict | None = None) -> dict:
    """The attendee cancels, or an organiser (``organiser``: their key,
    recorded in the audit trail)."""
    row = _get(session, registration_id, lock=True)
    if row.status == Status.CANCELLED:
        return view(row)
    if row.status in FINAL:
        raise NotAllowed(f"a registration that is {row.status} cannot be cancelled")
    _set_status(session, outbox, links, row, Status.CANCELLED, cause="cancelled",
                waitlist_position=None, hold_expires_at=None)
    release_seat(session, outbox, row)
    if organiser is not None:
        audit.record(session, organiser, audit.REGISTRATION_CANCELLED, row.event_slug,
                     registration=row.id)
    return view(_get(session, registration_id))


def release_seat(session: Session, outbox, row) -> None:
    """Capacity gives the seat (or the place in line) to the next person."""
    outbox.add(session, RegistrationCancelled(registration_id=row.id, event_slug=row.event_slug))


def confirm(session: Session, outbox, registration_id: str) -> dict:
    """The attendee confirms a held seat; capacity turns the hold into a seat."""
    row = _get(session, registration_id, lock=True)
    if row.status == Status.CONFIRMED:
        return view(row)
    if row.status != Status.HELD:
        raise NotAllowed(f"only a held seat can be confirmed; this registration is {row.status}")
    if row.hold_expires_at is not None and row.hold_expires_at <= utcnow():
        raise NotAllowed("the hold has expired")
    outbox.add(session, RegistrationConfirmed(registration_id=row.id, event_slug=row.event_slug))
    return view(row)


def add_session(session: Session, outbox, registration_id: str, slug: str) -> dict:
    """An attendee with a seat asks for a session they do not hold (one
    added after they chose theirs); capacity seats them in it, or puts them
    on its waiting list, and the answer comes as a session change."""
    row = _get(session, registration_id, lock=True)
    if row.status not in SEATED:
        raise NotAllowed(f"sessions can be added to a seat; this registration is {row.status}")
    event, _ = load_event(session, row.event_slug)
    if slug not in event.open_sessions:
        message = "cancelled" if slug in {s.slug for s in event.sessions} else "no such session"
        raise Invalid("this session cannot be added", [{"field": "session", "message": message}])
    if slug not in row.sessions and slug not in row.sessions_waiting:
        outbox.add(session, SessionRequested(registration_id=row.id, event_slug=row.event_slug,
                                             session=slug))
    return view(row)


def unfollow(session: Session, outbox, links: Links, registration_id: str) -> dict:
    """No more sessions added for this attendee; those they hold stay."""
    row = _get(session, registration_id, lock=True)
    if row.follows:
        _set_status(session, outbox, links, row, row.status, cause="unfollowed", follows=False)
        outbox.add(session, RegistrationUnfollowed(registration_id=row.id, event_slug=row.event_slug))
    return view(_get(session, registration_id))


def get_registration(session: Session, registration_id: str) -> dict:
    return view(_get(session, registration_id))


def view(row) -> dict:
    return {"id": row.id, "event": row.event_slug, "status": row.status,
            "waitlist_position": row.waitlist_position,
            "hold_expires_at": row.hold_expires_at.isoformat() if row.hold_expires_at else None,
            "name": row.name, "email": row.email, "language": row.language,
            "timezone": row.timezone, "country": row.country, "category": row.category,
            "sessions": row.sessions, "sessions_waiting": row.sessions_waiting,
            "sessions_cancelled": row.sessions_cancelled, "follows": row.follows,
            "answers": row.answers,
            "check_in_code": row.check_in_code,
            "checked_in_at": row.checked_in_at.isoformat() if row.checked_in_at else None,
            "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat()}


def _set_status(session, outbox, links, row, status, cause, announced=True, **changes):
    """The new status (or the same one, changed), announced with the
    attendee's snapshot unless ``announced`` is False (an erasure: the
    person asked to be forgotten, not to be written to)."""
    updated = session.execute(update(registrations).where(registrations.c.id == row.id).values(
        status=status, status_seq=row.status_seq + 1, updated_at=utcnow(), **changes)
        .returning(*registrations.c)).one()
    if announced:
        announce_status(session, outbox, links, updated, previous=row.status, cause=cause)


def announce_status(session, outbox, links, row, previous, cause):
    outbox.add(session, status_message(links, row, previous, cause))


def status_message(links, row, previous, cause,
                   session_change: SessionOutcome | None = None) -> RegistrationStatusChanged:
    return RegistrationStatusChanged(
        registration_id=row.id, event_slug=row.event_slug, status=row.status,
        previous_status=previous, status_seq=row.status_seq, cause=cause,
        attendee=Attendee(name=row.name, email=row.email, language=row.language,
                          timezone=row.timezone, country=row.country, category=row.category,
                          sessions=row.sessions, sessions_waiting=row.sessions_waiting,
                          sessions_cancelled=row.sessions_cancelled, follows=row.follows,
                          check_in_code=row.check_in_code),
        waitlist_position=row.waitlist_position, hold_expires_at=row.hold_expires_at,
        links=links.for_registration(row.id), session_change=session_change)


def _get(session: Session, registration_id: str, lock: bool = False):
    """The registration; an erased one is no more (its token answers 404)."""
    query = select(registrations).where(registrations.c.id == registration_id,
                                        registrations.c.erased_at.is_(None))
    row = session.execute(locked(query, session) if lock else query).first()
    if row is None:
        raise NotFound("no such registration")
    return row
