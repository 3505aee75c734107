"""Organisers' webhooks: every registration status change of an event, and
each erasure (by id only), as JSON, signed with HMAC-SHA256, retried with
backoff like any other delivery.

Receivers verify ``X-Signature-256: sha256=<hex>`` over the raw body with the
secret returned when the webhook was registered, and use ``X-Delivery-Id``
(stable across retries) to ignore a repeat.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import uuid

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.contracts import RegistrationStatusChanged
from shared.db import rowcount, transaction
from shared.errors import Invalid, NotFound

from . import deliveries, destinations
from .models import webhooks

log = logging.getLogger(__name__)
TIMEOUT = 10.0


class PermanentWebhookFailure(Exception):
    """The receiver said the hook is gone (410), the hook was deleted, or its
    address is one webhooks may not reach."""


class WebhookFailure(Exception):
    """The receiver answered other than 2xx: retried with backoff."""


def check_url(url: str, allow_private: bool) -> None:
    """Refuse, at registration, a URL that webhooks may not reach (422). A
    host that does not resolve yet is accepted: every send checks again."""
    try:
        destinations.resolve(url, allow_private)
    except destinations.ForbiddenDestination as exc:
        raise Invalid("the webhook URL is not allowed", [{"field": "url", "message": str(exc)}]) from None
    except OSError:
        pass


def add(session: Session, slug: str, url: str) -> dict:
    created_at = utcnow()
    row = {"id": uuid.uuid4().hex, "event_slug": slug, "url": url,
           "secret": secrets.token_urlsafe(32)}
    session.execute(webhooks.insert().values(**row, created_at=created_at))
    return {**row, "created_at": created_at.isoformat()}


def list_for(session: Session, slug: str) -> list[dict]:
    return [{"id": r.id, "url": r.url, "created_at": r.created_at.isoformat()}
            for r in session.execute(select(webhooks).where(webhooks.c.event_slug == slug))]


def remove(session: Session, slug: str, hook_id: str) -> None:
    result = session.execute(delete(webhooks).where(webhooks.c.id == hook_id,
                                                    webhooks.c.event_slug == slug))
    if rowcount(result) == 0:
        raise NotFound("no such webhook")


class HooksOf:
    """The webhooks of each event, read once per batch."""

    def __init__(self, session: Session):
        self.session = session
        self._hooks: dict[str, list] = {}

    def of(self, slug: str) -> list:
        if slug not in self._hooks:
            self._hooks[slug] = list(self.session.execute(select(webhooks.c.id, webhooks.c.url).where(
                webhooks.c.event_slug == slug)).all())
        return self._hooks[slug]

    def deliveries_for(self, change: RegistrationStatusChanged) -> list[dict]:
        """One delivery per webhook of the event for this status change."""
        if not self.of(change.event_slug):
            return []
        return self._deliveries(change.event_slug, change.registration_id, str(change.status_seq),
                                "status_changed", _payload(change))

    def erasure_for(self, slug: str, registration_id: str) -> list[dict]:
        """One delivery per webhook of the event: the registration was
        erased, so the receiver can delete its copy. Ids only: the personal
        data it names is exactly what must not travel any more."""
        return self._deliveries(slug, registration_id, "erased", "registration_erased", {
            "type": "registration.erased", "event": slug, "registration": {"id": registration_id}})

    def _deliveries(self, slug: str, registration_id: str, step: str, kind: str,
                    payload: dict) -> list[dict]:
        rows = []
        for hook in self.of(slug):
            cause = f"webhook:{hook.id}:{registration_id}:{step}"
            content = {"hook_id": hook.id, "payload": {**payload, "delivery_id": cause}}
            rows.append(deliveries.queued_row(cause, kind, hook.url, "", content, slug,
                                              registration_id, channel="webhook"))
        return rows


def _payload(change: RegistrationStatusChanged) -> dict:
    return {
        "type": "registration.status_changed",
        "event": change.event_slug,
        "registration": {
            "id": change.registration_id, "status": change.status,
            "previous_status": change.previous_status, "cause": change.cause,
            "sequence": change.status_seq, "waitlist_position": change.waitlist_position,
            "hold_expires_at": change.hold_expires_at.isoformat() if change.hold_expires_at else None,
            "attendee": change.attendee.model_dump(mode="json"),
        },
    }


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(session_factory, row, allow_private: bool) -> None:
    """POST one delivery; raises on failure (the caller retries with backoff)."""
    with transaction(session_factory) as session:
        secret = session.execute(select(webhooks.c.secret).where(
            webhooks.c.id == row.content["hook_id"])).scalar()
    if secret is None:
        raise PermanentWebhookFailure("the webhook was deleted")
    try:
        destination = destinations.resolve(row.recipient, allow_private)
    except destinations.ForbiddenDestination as exc:
        raise PermanentWebhookFailure(str(exc)) from None
    body = json.dumps(row.content["payload"], ensure_ascii=False).encode()
    status = destinations.post(destination, body, timeout=TIMEOUT, headers={
        "Content-Type": "application/json", "User-Agent": "event-registration-webhooks",
        "X-Delivery-Id": row.cause, "X-Signature-256": signature(secret, body)})
    if status == 410:
        # The receiver says the hook is gone for good: stop it, so that its
        # other queued deliveries fail without a call and nothing new is queued.
        with transaction(session_factory) as session:
            session.execute(delete(webhooks).where(webhooks.c.id == row.content["hook_id"]))
        log.warning("webhook %s answered 410 Gone: removed", row.content["hook_id"])
        raise PermanentWebhookFailure("410 Gone: the webhook was removed")
    if not 200 <= status < 300:
        raise WebhookFailure(f"the receiver answered {status}"
                             + (" (redirects are not followed)" if 300 <= status < 400 else ""))
