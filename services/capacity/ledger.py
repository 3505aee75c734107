"""The seat ledger's rules, as plain data and functions (no database).

A registration draws one seat from every pool it needs: the event's pool, its
category's pool and each chosen session's pool. It gets a seat only if every
one of them has room (all or nothing), so a seat is never half-given.

The waiting list is served in arrival order. When seats come free, waiting
entries are seated in that order; an entry that still does not fit (its
session is full, say) keeps its place and does not block those behind it
whose pools have room.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.statuses import Status


@dataclass
class Pool:
    key: str
    capacity: int | None      # None: unlimited
    used: int = 0

    def has_room(self) -> bool:
        return self.capacity is None or self.used < self.capacity


@dataclass
class Waiting:
    registration_id: str
    needs: list[str]
    queue_seq: int


def pool_keys(category: str | None, sessions: list[str]) -> list[str]:
    """The pools a registration draws from, in a fixed order (lock order too)."""
    keys = ["event"]
    if category:
        keys.append(f"category:{category}")
    keys.extend(f"session:{slug}" for slug in sorted(set(sessions)))
    return keys


def can_seat(pools: dict[str, Pool], needs: list[str]) -> bool:
    return all(pools[key].has_room() for key in needs if key in pools)


def take(pools: dict[str, Pool], needs: list[str]) -> None:
    if not can_seat(pools, needs):
        raise ValueError("no room")
    for key in needs:
        if key in pools:
            pools[key].used += 1


def place(pools: dict[str, Pool], requests: list[list[str]], waitlist: bool) -> list[str]:
    """Decide requests (each the pools it needs) in order: "seated" while
    there is room, then "waitlisted" (or "rejected" without a waiting list).
    The pools are taken from as it goes."""
    outcomes = []
    for needs in requests:
        if can_seat(pools, needs):
            take(pools, needs)
            outcomes.append("seated")
        else:
            outcomes.append(Status.WAITLISTED if waitlist else Status.REJECTED)
    return outcomes


def give_back(pools: dict[str, Pool], needs: list[str]) -> None:
    for key in needs:
        if key in pools:
            pools[key].used = max(0, pools[key].used - 1)


def promote(pools: dict[str, Pool], waiting: list[Waiting]) -> list[Waiting]:
    """Seat waiting entries, in order, while there is room; returns the seated."""
    seated = []
    for entry in sorted(waiting, key=lambda w: w.queue_seq):
        if "event" in pools and not pools["event"].has_room():
            break   # nobody can fit any more
        if can_seat(pools, entry.needs):
            take(pools, entry.needs)
            seated.append(entry)
    return seated
