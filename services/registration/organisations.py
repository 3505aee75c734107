"""Organisations, their API keys, and what a key reaches.

An organisation owns the events its keys create. A key has scopes (SCOPES)
and may be limited to some of the organisation's events. It is shown once,
as ``evk_<id>_<secret>``; only the SHA-256 of the secret is stored, and it is
compared in constant time. Every request reads the key's row, so a revoked
key is refused at once by every gateway. The installation key
(ADMIN_API_KEY, checked by the gateway) reaches everything.

What a key does not reach answers as if it did not exist (NotFound): another
organisation's events are not even confirmed to be there. What it reaches
without the scope the action needs is Forbidden.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.clock import utcnow
from shared.errors import Conflict, Forbidden, NotAuthenticated, NotFound
from shared.schemas import SCOPES, KeyRequest, OrganisationRequest

from . import audit
from .models import FIRST_ORGANISATION, api_keys, events, organisations, registrations

KEY_SHAPE = re.compile(r"evk_(?P<id>[0-9a-f]{32})_(?P<secret>[A-Za-z0-9_-]{20,100})")
INSTALLATION = {"key_id": "installation", "key_name": "installation key", "organisation": None,
                "scopes": list(SCOPES), "events": None}


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def authenticate(session: Session, presented: str | None) -> dict:
    """The principal a key stands for: who it is and what it reaches.
    ``None`` is the installation key (which the gateway has checked)."""
    if presented is None:
        return INSTALLATION
    match = KEY_SHAPE.fullmatch(presented)
    row = match and session.execute(select(api_keys).where(
        api_keys.c.id == match["id"])).first()
    if not match or not row or row.revoked_at is not None or not hmac.compare_digest(
            _hash(match["secret"]).encode(), row.secret_hash.encode()):
        raise NotAuthenticated("this key is unknown or was revoked")
    return {"key_id": row.id, "key_name": row.name, "organisation": row.organisation_slug,
            "scopes": row.scopes, "events": row.events}


def reaches(principal: dict, organisation: str, event_slug: str | None = None) -> bool:
    if principal["organisation"] is None:
        return True
    return principal["organisation"] == organisation and (
        event_slug is None or principal["events"] is None or event_slug in principal["events"])


def require_scope(principal: dict, scope: str | None) -> None:
    if scope is not None and scope not in principal["scopes"]:
        raise Forbidden(f"this key lacks the scope {scope!r}")


def event_owner(session: Session, slug: str) -> str:
    owner = session.execute(select(events.c.organisation_slug).where(
        events.c.slug == slug)).scalar()
    if owner is None:
        raise NotFound(f"no event {slug!r}")
    return owner


def access(session: Session, presented: str | None, scope: str | None, slug: str | None = None,
           registration_id: str | None = None) -> dict:
    """The principal, once it is known to reach the event (named, or the
    registration's) with ``scope``: ``{"principal", "event"}``, the event's slug or None."""
    principal = authenticate(session, presented)
    if registration_id is not None:
        slug = session.execute(select(registrations.c.event_slug).where(
            registrations.c.id == registration_id, registrations.c.erased_at.is_(None))).scalar()
        if slug is None:
            raise NotFound("no such registration")
    if slug is not None and not reaches(principal, event_owner(session, slug), slug):
        raise NotFound(f"no event {slug!r}" if registration_id is None else "no such registration")
    require_scope(principal, scope)
    return {"principal": principal, "event": slug}


def owner_of_new_event(principal: dict, requested: str | None, known) -> str:
    """The organisation a new event belongs to: the key's own, or for the
    installation key the one it names (``known(slug)`` says whether it exists)."""
    if principal["organisation"] is None:
        organisation = requested or FIRST_ORGANISATION
        if not known(organisation):
            raise NotFound(f"no organisation {organisation!r}")
        return organisation
    if requested not in (None, principal["organisation"]):
        raise NotFound(f"no organisation {requested!r}")
    if principal["events"] is not None:
        raise Forbidden("this key is limited to some events and cannot create others")
    return principal["organisation"]


def organisation_exists(session: Session, slug: str) -> bool:
    return session.execute(select(organisations.c.slug).where(
        organisations.c.slug == slug)).first() is not None


def _installation_only(principal: dict) -> None:
    if principal["organisation"] is not None:
        raise Forbidden("only the installation key manages organisations")


def create_organisation(session: Session, actor: dict, request: OrganisationRequest) -> dict:
    _installation_only(actor)
    if organisation_exists(session, request.slug):
        raise Conflict(f"an organisation {request.slug!r} exists",
                       [{"field": "slug", "message": "already taken"}])
    row = {"slug": request.slug, "name": request.name, "created_at": utcnow()}
    session.execute(organisations.insert().values(**row))
    audit.record(session, actor, audit.ORGANISATION_CREATED, organisation=request.slug,
                 name=request.name)
    return _organisation_view(row)


def list_organisations(session: Session, principal: dict) -> list[dict]:
    _installation_only(principal)
    return [_organisation_view(row._mapping) for row in session.execute(
        select(organisations).order_by(organisations.c.created_at, organisations.c.slug))]


def _organisation_view(row) -> dict:
    return {"slug": row["slug"], "name": row["name"], "created_at": row["created_at"].isoformat()}


def _managed(session: Session, principal: dict, organisation: str) -> None:
    """A key manages the keys of its own organisation (the gateway asked
    for the scope ``keys``); the installation key those of any."""
    if not organisation_exists(session, organisation) or not reaches(principal, organisation):
        raise NotFound(f"no organisation {organisation!r}")


def create_key(session: Session, actor: dict, organisation: str, request: KeyRequest) -> dict:
    """A new key, its secret shown in this answer only. A key cannot give
    what it does not hold: no scope it lacks, no event beyond its own."""
    _managed(session, actor, organisation)
    scopes = [scope for scope in SCOPES if scope in request.scopes]
    beyond = [scope for scope in scopes if scope not in actor["scopes"]]
    if beyond:
        raise Forbidden(f"a key cannot give scopes it lacks: {', '.join(beyond)}")
    limited = sorted(set(request.events)) if request.events is not None else None
    if actor["events"] is not None and (limited is None or set(limited) - set(actor["events"])):
        raise Forbidden("a key limited to some events can only make keys for those events")
    key_id, secret = uuid.uuid4().hex, secrets.token_urlsafe(32)
    row = {"id": key_id, "organisation_slug": organisation, "name": request.name,
           "scopes": scopes, "events": limited, "secret_hash": _hash(secret),
           "created_at": utcnow(), "revoked_at": None}
    session.execute(api_keys.insert().values(**row))
    audit.record(session, actor, audit.KEY_CREATED, organisation=organisation, key=key_id,
                 name=request.name, scopes=scopes, events=limited)
    return {**_key_view(row), "key": f"evk_{key_id}_{secret}"}


def list_keys(session: Session, actor: dict, organisation: str) -> list[dict]:
    _managed(session, actor, organisation)
    return [_key_view(row._mapping) for row in session.execute(
        select(api_keys).where(api_keys.c.organisation_slug == organisation)
        .order_by(api_keys.c.created_at, api_keys.c.id))]


def revoke_key(session: Session, actor: dict, organisation: str, key_id: str) -> None:
    _managed(session, actor, organisation)
    revoked = session.execute(update(api_keys).where(
        api_keys.c.id == key_id, api_keys.c.organisation_slug == organisation,
        api_keys.c.revoked_at.is_(None)).values(revoked_at=utcnow()))
    if revoked.rowcount:      # type: ignore[attr-defined]
        audit.record(session, actor, audit.KEY_REVOKED, organisation=organisation, key=key_id)
    elif session.execute(select(api_keys.c.id).where(
            api_keys.c.id == key_id, api_keys.c.organisation_slug == organisation)).first() is None:
        raise NotFound("no such key")


def _key_view(row) -> dict:
    return {"id": row["id"], "organisation": row["organisation_slug"], "name": row["name"],
            "scopes": row["scopes"], "events": row["events"],
            "created_at": row["created_at"].isoformat(),
            "revoked_at": row["revoked_at"] and row["revoked_at"].isoformat()}
