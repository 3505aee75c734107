"""The statuses of a registration, named once.

Registration stores them, capacity decides most of them (its reservations use
the same words), notification picks its message by them, the gateway filters
and counts by them, and the manage page shows them. Adding a status is an
edit here, plus its words in the page and the messages.
"""
from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"          # stored, the seat not yet decided
    HELD = "held"                # a seat kept until the attendee confirms
    CONFIRMED = "confirmed"      # a seat
    WAITLISTED = "waitlisted"    # in line for a seat
    REJECTED = "rejected"        # full with no waiting list, or closed
    CANCELLED = "cancelled"      # by the attendee
    EXPIRED = "expired"          # a hold not confirmed in time


ALL = tuple(Status)
# At most one registration per address and event is in one of these.
ACTIVE = frozenset({Status.PENDING, Status.HELD, Status.CONFIRMED, Status.WAITLISTED})
# A seat is taken from the pools.
SEATED = frozenset({Status.HELD, Status.CONFIRMED})
# Nothing changes any more.
FINAL = frozenset({Status.REJECTED, Status.CANCELLED, Status.EXPIRED})
# What capacity may decide for a registration (``SeatDecided.outcome``).
DECISIONS = frozenset({Status.HELD, Status.CONFIRMED, Status.WAITLISTED, Status.REJECTED,
                       Status.EXPIRED})


def sql_in(column: str, statuses) -> str:
    """A SQL predicate for partial indexes, e.g. ``status IN ('held', 'confirmed')``."""
    listed = ", ".join(f"'{s.value}'" for s in sorted(statuses, key=ALL.index))
    return f"{column} IN ({listed})"
