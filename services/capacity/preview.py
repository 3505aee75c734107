"""What a change of an event's seat rules would do, before it is made.

The organiser console shows "raising capacity seats N people" before the
organiser commits to it. The answer is not worked out a second time, beside
the real rules (where it could drift from them): it is the change itself,
``seats.apply_rules`` at the event's next revision, exactly as capacity runs
it when an ``event.published`` brings new rules, in a transaction that is
always rolled back. Its words to the registrations are written to the real
outbox table in that transaction and are rolled back with it; the relay is
never woken, no gauge is touched and no hold survives to expire.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shared.contracts import Contract, SeatDecided, SeatRules
from shared.db import retrying
from shared.errors import Invalid, NotFound
from shared.outbox import Outbox
from shared.schemas import field_errors, parse, parse_duration

from . import ledger, seats, store
from .models import outbox as outbox_table
from .models import reservations

T = TypeVar("T")


class _Listening(Outbox):
    """The capacity outbox, writing its rows as ever (they go when the
    transaction is rolled back), keeping the messages, waking no relay."""

    def __init__(self) -> None:
        super().__init__(outbox_table, "preview", lambda: None)
        self.messages: list[Contract] = []

    def add_many(self, session: Session, messages: list[tuple[Contract, str | None]]) -> list[str]:
        self.messages.extend(message for message, _ in messages)
        return super().add_many(session, messages)


def rolled_back(session_factory: sessionmaker, work: Callable[[Session], T]) -> T:
    """``work(session)`` in a transaction that is never committed (run again,
    as ``in_transaction`` would, after a lost connection or a deadlock)."""
    def once() -> T:
        session: Session = session_factory()
        try:
            return work(session)
        finally:
            session.rollback()
            session.close()
    return retrying(once)


def seat_rules(data: dict) -> SeatRules:
    """An RPC's seat rules, checked as the event's own would be."""
    try:
        rules = parse(SeatRules, data)
        if rules.confirmation_window is not None:
            parse_duration(rules.confirmation_window)
    except ValidationError as exc:
        raise Invalid("these seat rules are not valid", field_errors(exc)) from None
    except ValueError as exc:
        raise Invalid("these seat rules are not valid",
                      [{"field": "confirmation_window", "message": str(exc)}]) from None
    capacities = {"capacity": rules.capacity,
                  **{f"categories.{key}": c for key, c in rules.categories.items()},
                  **{f"sessions.{key}": c for key, c in rules.sessions.items()}}
    negative = [{"field": field, "message": "must be at least 0"}
                for field, capacity in capacities.items() if capacity is not None and capacity < 0]
    if negative:
        raise Invalid("these seat rules are not valid", negative)
    return rules


def preview_rules(session: Session, slug: str, rules: SeatRules) -> dict:
    """Apply ``rules`` to the event as its next revision, in ``session``
    (which the caller rolls back), and count who it seats:

    ``promoted``: the registrations that get a seat off the waiting list, or
    a seat in a session off that session's line (each counted once);
    ``per_pool``: every pool of the event (under the new rules) -> the seats
    it gives to them. A registration seated draws one seat from each pool it
    needs (the event's, its category's, each of its sessions', and for a
    follower the open sessions it takes with its seat), so the pools add up
    to more than ``promoted``; a seat in a session off its line is that
    session's pool alone. Seats that followers take in sessions the new rules
    add are not promotions, and are not counted."""
    current = store.lock_event(session, slug, must_exist=False)
    if current is None:
        raise NotFound(f"no event {slug!r}")
    outbox = _Listening()
    seats.apply_rules(session, outbox, slug, rules, current.revision + 1)

    decided = [m for m in outbox.messages if isinstance(m, SeatDecided)]
    seated = sorted({m.registration_id for m in decided if m.promoted})
    pools = store.pools(session, slug)
    per_pool = dict.fromkeys(sorted(pools), 0)
    for row in session.execute(select(reservations.c.category, reservations.c.sessions).where(
            reservations.c.registration_id.in_(seated))):
        for key in ledger.pool_keys(row.category, row.sessions):
            if key in per_pool:
                per_pool[key] += 1
    in_sessions: set[str] = set()
    for m in decided:
        change = m.session_change
        if change is not None and change.reason == "freed" and change.outcome == "seated":
            in_sessions.add(m.registration_id)
            per_pool[ledger.session_key(change.session)] += 1
    return {"promoted": len(in_sessions.union(seated)), "per_pool": per_pool}
