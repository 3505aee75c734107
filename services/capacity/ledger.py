"""The seat ledger's rules, as plain data and functions (no database).

A registration draws one seat from every pool it needs: the event's pool, its
category's pool and each chosen session's pool. It gets a seat only if every
one of them has room (all or nothing), so a seat is never half-given.

A registration that follows the event (it chose no sessions) also takes a
seat in each open session it did not ask for, one session at a time: while
that session has room, else it waits in that session's own line (or is
refused it without a waiting list). Its seat in the event never depends on
a session added later.

The waiting lines are served in arrival order. When seats come free, waiting
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
    cancelled: bool = False   # a cancelled session: no room, and nobody waits for it

    def has_room(self) -> bool:
        return self.capacity is None or self.used < self.capacity


@dataclass
class Waiting:
    """A registration in line for its seat, or (``session``) a registration
    with its seat in line for one more session."""
    registration_id: str
    needs: list[str]
    queue_seq: int
    session: str | None = None


def pool_keys(category: str | None, sessions: list[str]) -> list[str]:
    """The pools a registration draws from, in a fixed order (lock order too)."""
    keys = ["event"]
    if category:
        keys.append(f"category:{category}")
    keys.extend(f"session:{slug}" for slug in sorted(set(sessions)))
    return keys


def session_key(slug: str) -> str:
    return f"session:{slug}"


def open_sessions(pools: dict[str, Pool]) -> list[str]:
    """The sessions of the event that are not cancelled, by slug."""
    return sorted(key.removeprefix("session:") for key, pool in pools.items()
                  if key.startswith("session:") and not pool.cancelled)


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
    return [place_one(pools, needs, waitlist) for needs in requests]


def place_one(pools: dict[str, Pool], needs: list[str], waitlist: bool) -> str:
    """One request (or one more session: ``[session_key(slug)]``): "seated"
    and taken from the pools if there is room, else "waitlisted" or "rejected"."""
    if can_seat(pools, needs):
        take(pools, needs)
        return "seated"
    return Status.WAITLISTED if waitlist else Status.REJECTED


def follow(pools: dict[str, Pool], sessions: list[str], holds: list[str], waits: list[str],
           waitlist: bool) -> dict[str, str]:
    """A follower with its seat takes each of ``sessions`` (slugs) it
    neither holds nor waits for, one at a time: slug -> "seated" (taken from
    the pools), "waitlisted" or "rejected". Cancelled sessions are skipped."""
    outcomes = {}
    for slug in sessions:
        pool = pools.get(session_key(slug))
        if pool is None or pool.cancelled or slug in holds or slug in waits:
            continue
        outcomes[slug] = place_one(pools, [session_key(slug)], waitlist)
    return outcomes


def give_back(pools: dict[str, Pool], needs: list[str]) -> None:
    for key in needs:
        if key in pools:
            pools[key].used = max(0, pools[key].used - 1)


def promote(pools: dict[str, Pool], waiting: list[Waiting]) -> list[Waiting]:
    """Seat waiting entries, in order, while there is room; returns the seated."""
    seated = []
    for entry in sorted(waiting, key=lambda w: w.queue_seq):
        if can_seat(pools, entry.needs):
            take(pools, entry.needs)
            seated.append(entry)
    return seated
