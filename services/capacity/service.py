"""nameko entrypoints of the capacity service."""
from __future__ import annotations

from pathlib import Path

from shared.batches import batch_handler
from shared.contracts import (
    EVENT_PUBLISHED,
    REGISTRATION_CANCELLED,
    REGISTRATION_CONFIRMED,
    REGISTRATION_REQUESTED,
    REGISTRATION_UNFOLLOWED,
    SESSION_REQUESTED,
    EventPublished,
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationRequested,
    RegistrationUnfollowed,
    SessionRequested,
)
from shared.db import Database, in_transaction, ping, transaction
from shared.errors import DomainError
from shared.inbox import process_batch, process_once
from shared.logs import Correlation
from shared.loop import every
from shared.messaging import event_handler, rpc
from shared.metrics import SEATS_CAPACITY, SEATS_USED, WAITLIST_LENGTH, EntrypointMetrics
from shared.outbox import OutboxRelay
from shared.statuses import Status

from . import preview, programme, seats
from .models import inbox, outbox

MIGRATIONS = Path(__file__).parent / "migrations"


class CapacityService:
    name = "capacity"

    db = Database()
    outbox = OutboxRelay(outbox)
    metrics = EntrypointMetrics()
    correlation = Correlation()

    def _once(self, body, contract, handler_name, apply):
        process_once(self.db, inbox, body, contract, handler_name, apply)

    @event_handler("registration", EVENT_PUBLISHED)
    def on_event_published(self, body):
        self._once(body, EventPublished, "on_event_published",
                   lambda s, m: seats.apply_event(s, self.outbox, m.event, m.revision))

    @batch_handler("registration", REGISTRATION_REQUESTED)
    def on_registration_requested(self, bodies):
        process_batch(self.db, inbox, bodies, RegistrationRequested, "on_registration_requested",
                      lambda s, fresh: seats.reserve_many(
                          s, self.outbox, [(r.message, r.correlation_id) for r in fresh]))

    @event_handler("registration", REGISTRATION_CANCELLED)
    def on_registration_cancelled(self, body):
        self._once(body, RegistrationCancelled, "on_registration_cancelled",
                   lambda s, m: seats.release(s, self.outbox, m))

    @event_handler("registration", REGISTRATION_CONFIRMED)
    def on_registration_confirmed(self, body):
        self._once(body, RegistrationConfirmed, "on_registration_confirmed",
                   lambda s, m: seats.confirm_hold(s, self.outbox, m))

    @event_handler("registration", SESSION_REQUESTED)
    def on_session_requested(self, body):
        self._once(body, SessionRequested, "on_session_requested",
                   lambda s, m: programme.request_session(s, self.outbox, m))

    @event_handler("registration", REGISTRATION_UNFOLLOWED)
    def on_registration_unfollowed(self, body):
        self._once(body, RegistrationUnfollowed, "on_registration_unfollowed",
                   lambda s, m: programme.unfollow(s, m))

    @every(1)
    def expire_holds(self):
        """Holds past their deadline give their seat to the waiting list. Each
        hold is expired in its own transaction under its event's lock, so two
        replicas running this at once expire each hold once."""
        now = seats.utcnow()
        with transaction(self.db) as session:
            due = seats.due_holds(session, now)
        for registration_id in due:
            with transaction(self.db) as session:
                seats.expire_hold(session, self.outbox, registration_id, now)

    @rpc(expected_exceptions=DomainError)
    def ping(self) -> bool:
        return ping(self.db)

    @every(5)
    def observe_seats(self):
        """Refresh the seat gauges of every event from the database, so that
        every replica reports the same numbers (off the message path)."""
        with transaction(self.db) as session:
            slugs = seats.event_slugs(session)
        for slug in slugs:
            self._observe(slug)

    @rpc(expected_exceptions=DomainError)
    def waitlist_position(self, registration_id: str) -> int | None:
        return in_transaction(self.db, lambda session: seats.waitlist_position(session, registration_id))

    @rpc(expected_exceptions=DomainError)
    def event_seats(self, slug: str) -> dict:
        with transaction(self.db) as session:
            return seats.event_seats(session, slug)

    @rpc(expected_exceptions=DomainError)
    def preview_rules(self, slug: str, seat_rules: dict) -> dict:
        """How many people the waiting lists would seat, now, if the event's
        seat rules became ``seat_rules`` (a SeatRules as a dict): the
        organiser console shows "raising capacity seats N people" before the
        organiser makes the change. The answer is the change itself, as
        ``on_event_published`` would make it, in a transaction that is rolled
        back: nothing is committed, nothing reaches the outbox's relay, no
        gauge moves and no hold is started.

        Returns ``{"promoted": n, "per_pool": {"event": n, "category:<slug>":
        n, "session:<slug>": n, ...}}`` (preview.preview_rules says what each
        counts); an event capacity has not been told of is NotFound, rules
        that are not valid Invalid."""
        rules = preview.seat_rules(seat_rules)
        return preview.rolled_back(self.db, lambda session: preview.preview_rules(session, slug, rules))

    def _observe(self, slug: str) -> None:
        with transaction(self.db) as session:
            view = seats.event_seats(session, slug)
        for key, pool in view["pools"].items():
            SEATS_CAPACITY.labels(slug, key).set(-1 if pool["capacity"] is None else pool["capacity"])
            SEATS_USED.labels(slug, key).set(pool["used"])
        WAITLIST_LENGTH.labels(slug).set(view["states"].get(Status.WAITLISTED, 0))
