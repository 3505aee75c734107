"""Organisations, their API keys, and what a key reaches.

An organisation owns the events its keys create. A key has scopes (SCOPES)
and may be limited to some of the organisation's events. It is shown once
(shared.keys); only the SHA-256 of its secret is stored, and compared in
constant time. Every request reads the key's row, so a revoked key is
refused at once by every gateway. The installation key (ADMIN_API_KEY,
checked by the gateway) reaches everything. A key never acts on a key that
holds more than it does: it cannot make, see or revoke one.

What a key does not reach answers as if it did not exist (NotFound): another
organisation's events are not even confirmed to be there. What it reaches
without the scope the action needs is Forbidden.
"""
from __future__ import annotations

import hmac

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared import keys
from shared.clock import utcnow
from shared.errors import Conflict, Forbidden, NotAuthenticated, NotFound
from shared.schemas import SCOPES, KeyRequest, OrganisationRequest

from . import audit
from .models import FIRST_ORGANISATION, api_keys, events, organisations, registrations

INSTALLATION = {"key_id": "installation", "key_name": "installation key", "organisation": None,
                "scopes": list(SCOPES), "events": None}


def authenticate(session: Session, presented: list | None) -> dict:
    """The principal a key stands for: who it is and what it reaches.
    ``presented``: the key's fingerprint (shared.keys), or None for the
    installation key (which the gateway has checked)."""
    if presented is None:
        return INSTALLATION
    key_id, secret_hash = presented
    row = session.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
    if not row or row.revoked_at is not None or not hmac.compare_digest(
            secret_hash.encode(), row.secret_hash.encode()):
        raise NotAuthenticated("this key is unknown or was revoked")
    return {"key_id": row.id, "key_name": row.name, "organisation": row.organisation_slug,
            "scopes": row.scopes, "events": row.events}


def reaches(principal: dict, organisation: str, event_slug: str | None = None) -> bool:
    """Whether the principal reaches the organisation (or one of its events)."""
    if principal["organisation"] is None:
        return True
    return principal["organisation"] == organisation and (
        event_slug is None or principal["events"] is None or event_slug in principal["events"])


def visible(principal: dict, organisation_column, event_column) -> list:
    """``reaches`` as SQL conditions on rows naming an organisation and an event."""
    if principal["organisation"] is None:
        return []
    conditions = [organisation_column == principal["organisation"]]
    if principal["events"] is not None:
        conditions.append(event_column.in_(principal["events"]))
    return conditions


def require_scopes(principal: dict, scopes: list[str]) -> None:
    lacking = [scope for scope in scopes if scope not in principal["scopes"]]
    if lacking:
        raise Forbidden(f"this key lacks the scope {', '.join(map(repr, lacking))}")


def _within(actor: dict, scopes: list[str], events: list[str] | None) -> bool:
    """Whether a key with these scopes and events holds no more than the actor."""
    return set(scopes) <= set(actor["scopes"]) and (
        actor["events"] is None or (events is not None and set(events) <= set(actor["events"])))


def event_owner(session: Session, slug: str) -> str:
    owner = session.execute(select(events.c.organisation_slug).where(
        events.c.slug == slug)).scalar()
    if owner is None:
        raise NotFound(f"no event {slug!r}")
    return owner


def access(session: Session, presented: list | None, scopes: list[str], slug: str | None = None,
           registration_id: str | None = None) -> dict:
    """The principal, once it is known to reach the event (named, or the
    registration's) with every one of ``scopes``."""
    principal = authenticate(session, presented)
    if registration_id is not None:
        slug = session.execute(select(registrations.c.event_slug).where(
            registrations.c.id == registration_id, registrations.c.erased_at.is_(None))).scalar()
        if slug is None:
            raise NotFound("no such registration")
    if slug is not None and not reaches(principal, event_owner(session, slug), slug):
        raise NotFound(f"no event {slug!r}" if registration_id is None else "no such registration")
    require_scopes(principal, scopes)
    return principal


def owner_of_new_event(session: Session, principal: dict, requested: str | None) -> str:
    """The organisation a new event belongs to: the key's own, or for the
    installation key the one it names."""
    if principal["organisation"] is None:
        organisation = requested or FIRST_ORGANISATION
        if not organisation_exists(session, organisation):
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
    limited = sorted(set(request.events)) if request.events is not None else None
    if not _within(actor, scopes, limited):
        raise Forbidden("a key cannot make a key with scopes or events it does not hold")
    key, kept = keys.make()
    row = {"id": kept.key_id, "organisation_slug": organisation, "name": request.name,
           "scopes": scopes, "events": limited, "secret_hash": kept.secret_hash,
           "created_at": utcnow(), "revoked_at": None}
    session.execute(api_keys.insert().values(**row))
    audit.record(session, actor, audit.KEY_CREATED, organisation=organisation, key=kept.key_id,
                 name=request.name, scopes=scopes, events=limited)
    return {**_key_view(row), "key": key}


def list_keys(session: Session, actor: dict, organisation: str) -> list[dict]:
    """The keys the actor holds as much as: those it could have made."""
    _managed(session, actor, organisation)
    return [_key_view(row._mapping) for row in session.execute(
        select(api_keys).where(api_keys.c.organisation_slug == organisation)
        .order_by(api_keys.c.created_at, api_keys.c.id)) if _within(actor, row.scopes, row.events)]


def revoke_key(session: Session, actor: dict, organisation: str, key_id: str) -> None:
    _managed(session, actor, organisation)
    row = session.execute(select(api_keys).where(
        api_keys.c.id == key_id, api_keys.c.organisation_slug == organisation)).first()
    if row is None:
        raise NotFound("no such key")
    if not _within(actor, row.scopes, row.events):
        raise Forbidden("a key cannot revoke a key that holds more than it does")
    if row.revoked_at is None:
        session.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=utcnow()))
        audit.record(session, actor, audit.KEY_REVOKED, organisation=organisation, key=key_id)


def _key_view(row) -> dict:
    return {"id": row["id"], "organisation": row["organisation_slug"], "name": row["name"],
            "scopes": row["scopes"], "events": row["events"],
            "created_at": row["created_at"].isoformat(),
            "revoked_at": row["revoked_at"] and row["revoked_at"].isoformat()}
