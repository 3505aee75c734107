"""The delivery log: every message to send, its state and its attempts.

A message is queued in the same transaction as the event that caused it and
keyed by its cause, so a twice-delivered event cannot queue it twice. Senders
claim due rows with a lease (``sending`` until a deadline, under a lease id):
a sender that dies mid-send leaves a lease that runs out, and the row is sent
again. A sender renews a row's lease just before sending it and names its lease
in every later write, so a sender that fell behind its lease neither sends a
row another sender has taken nor overwrites what that sender recorded.
Failures back off exponentially and are never dropped: after the last retry
the row is ``failed`` in the log and counted in the metrics. A message to an
address refused for good is ``failed`` from the start; one the attendee no
longer wants (they unsubscribed) or whose registration was erased is
``withdrawn``.
"""
from __future__ import annotations

import random
import uuid
from datetime import timedelta

from sqlalchemy import func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.db import insert_absent, rowcount, skip_locked

from .models import deliveries, undeliverable

LEASE = timedelta(seconds=60)     # the default; SEND_LEASE_SECONDS sets the sender's
BATCH = 200
MAX_ATTEMPTS = 30                 # about a day of backing off
MAX_BACKOFF = timedelta(hours=1)



def queued_row(cause: str, kind: str, recipient: str, language: str, content: dict, event_slug: str,
        registration_id: str | None, channel: str = "email") -> dict:
    """A message to queue, for one cause."""
    now = utcnow()
    return {"cause": cause, "kind": kind, "channel": channel, "recipient": recipient,
            "language": language, "content": content, "event_slug": event_slug,
            "registration_id": registration_id, "status": "queued", "attempts": 0, "last_error": None,
            "next_attempt_at": now, "created_at": now}


def enqueue(session: Session, cause: str, kind: str, recipient: str, language: str,
            content: dict, event_slug: str, registration_id: str | None,
            channel: str = "email") -> bool:
    """Queue one message for one cause; False if that cause already has one."""
    return enqueue_many(session, [queued_row(cause, kind, recipient, language, content, event_slug,
                                             registration_id, channel)]) == 1


def enqueue_many(session: Session, rows: list[dict]) -> int:
    """Queue messages, one per cause: a cause that already has its message
    (a status change delivered twice, say) queues nothing. A message to an
    address refused for good is kept, as failed, and never tried. Returns
    how many were queued."""
    refused: dict[str, str] = dict(session.execute(select(undeliverable.c.address_key, undeliverable.c.reason).where(
        undeliverable.c.address_key.in_(sorted({address_key(row["recipient"]) for row in rows
                                                 if row["channel"] == "email"})))).all())
    for row in rows:
        reason = refused.get(address_key(row["recipient"])) if row["channel"] == "email" else None
        if reason is not None:
            row.update(status="failed", last_error=f"the address is undeliverable: {reason}"[:1000])
    return len(insert_absent(session, deliveries, sorted(rows, key=lambda r: r["cause"]),
                             deliveries.c.id))


def address_key(address: str) -> str:
    """The same address in any letter case is one mailbox to us (the local
    part is case-sensitive in theory only; no provider treats it so)."""
    return address.strip().lower()


def withdraw(session: Session, registration_id: str, kinds, reason: str) -> int:
    """Messages of these kinds still queued for a registration: not to be sent."""
    return rowcount(session.execute(update(deliveries).where(
        deliveries.c.registration_id == registration_id, deliveries.c.kind.in_(kinds),
        deliveries.c.status == "queued").values(status="withdrawn", last_error=reason)))


def fail_queued_to(session: Session, key: str, reason: str) -> int:
    """Every email still queued for an address (any letter case): failed.
    A scan of the log, for a rare event (a permanent refusal)."""
    return rowcount(session.execute(update(deliveries).where(
        func.lower(deliveries.c.recipient) == key, deliveries.c.channel == "email",
        deliveries.c.status == "queued").values(status="failed", last_error=reason)))


def postpone(session: Session, rows: list, until, reason: str) -> None:
    """Hand claimed messages back unsent, due ``until``, no attempt counted:
    the server, not the message, was the trouble."""
    if rows:
        session.execute(update(deliveries).where(_held(rows)).values(
            status="queued", lease=None, next_attempt_at=until, last_error=reason[:1000]))


def claim_due(session: Session, limit: int = BATCH, lease: timedelta = LEASE,
              channels: tuple[str, ...] | None = None) -> list:
    """Lease due messages to this sender (queued ones, and leases run out),
    of these channels only if given; the rows returned carry their lease id."""
    now = utcnow()
    due = select(deliveries.c.id).where(
        or_(deliveries.c.status == "queued", deliveries.c.status == "sending"),
        deliveries.c.next_attempt_at <= now)
    if channels is not None:
        due = due.where(deliveries.c.channel.in_(channels))
    ids: list[int] = list(session.execute(skip_locked(
        due.order_by(deliveries.c.id).limit(limit), session)).scalars())
    if not ids:
        return []
    rows = session.execute(update(deliveries).where(deliveries.c.id.in_(ids)).values(
        status="sending", lease=uuid.uuid4().hex, next_attempt_at=now + lease)
        .returning(*deliveries.c)).all()
    return sorted(rows, key=lambda row: row.id)


def _held(rows: list):
    """These rows, while the claims that returned them still hold them."""
    return (deliveries.c.status == "sending") & tuple_(deliveries.c.id, deliveries.c.lease).in_(
        [(row.id, row.lease) for row in rows])


def held(session: Session, row) -> bool:
    """Whether the claim that returned this row still holds it (locked
    until the transaction ends): not withdrawn, not taken over."""
    return session.execute(select(deliveries.c.id).where(_held([row])).with_for_update()).first() is not None


def take(session: Session, row) -> bool:
    """Renew one row's lease just before sending; False if it ran out and
    another sender has the row now."""
    return bool(renew(session, [row]))


def release(session: Session, rows: list) -> None:
    """Hand claimed messages back unsent, due now."""
    session.execute(update(deliveries).where(_held(rows)).values(
        status="queued", lease=None, next_attempt_at=utcnow()))


def renew(session: Session, rows: list, lease: timedelta = LEASE) -> set:
    """Renew the lease of claimed rows just before sending them; returns the
    ids still held (a lease that ran out may belong to another sender now)."""
    if not rows:
        return set()
    return set(session.execute(update(deliveries).where(_held(rows))
                               .values(next_attempt_at=utcnow() + lease)
                               .returning(deliveries.c.id)).scalars())


def mark_sent(session: Session, row) -> bool:
    """Record one send; False if the lease had run out meanwhile."""
    return mark_sent_many(session, [row]) == 1


def mark_sent_many(session: Session, rows: list) -> int:
    """Record sends; returns how many were still under the lease that claimed
    them (the others are another sender's now, and it sends them too)."""
    if not rows:
        return 0
    return rowcount(session.execute(update(deliveries).where(_held(rows)).values(
        status="sent", lease=None, sent_at=utcnow(), attempts=deliveries.c.attempts + 1,
        last_error=None)))


def mark_failed(session: Session, row, error: str, permanent: bool = False) -> bool:
    """Record a failed attempt; True if it was the last one."""
    attempts = row.attempts + 1
    final = permanent or attempts >= MAX_ATTEMPTS
    values = {"attempts": attempts, "last_error": error[:1000], "lease": None}
    if final:
        values["status"] = "failed"
    else:
        values.update(status="queued", next_attempt_at=utcnow() + backoff(attempts))
    session.execute(update(deliveries).where(_held([row])).values(**values))
    return final


def backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s ... capped at an hour, with jitter so that a returning
    server is not hit by every message at the same instant."""
    seconds = min(MAX_BACKOFF.total_seconds(), 2 ** (attempts - 1))
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))
