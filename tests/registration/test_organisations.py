"""Organisations, keys, what a key reaches, and the audit trail, against a
real (SQLite) registration database."""
import json

import pytest
from sqlalchemy import select

from services.registration import audit, catalogue, organisations
from services.registration.models import api_keys
from services.registration.organisations import INSTALLATION
from shared import keys
from shared.db import transaction
from shared.errors import Conflict, Forbidden, NotAuthenticated, NotFound
from shared.schemas import EventSpec, KeyRequest, OrganisationRequest
from tests.support.documents import event_document


def organisation(db, slug):
    with transaction(db) as session:
        organisations.create_organisation(session, INSTALLATION,
                                          OrganisationRequest(slug=slug, name=slug.title()))


def key(db, org, scopes, events=None, actor=INSTALLATION):
    with transaction(db) as session:
        return organisations.create_key(session, actor, org, KeyRequest(
            name=f"{org} {' '.join(scopes)}", scopes=scopes, events=events))


def principal(db, secret):
    with transaction(db) as session:
        return organisations.authenticate(session, keys.fingerprint(secret))


def event(db, outbox, slug, org, actor=INSTALLATION):
    spec = EventSpec.model_validate_json(json.dumps(event_document(slug=slug)))
    with transaction(db) as session:
        owner = organisations.owner_of_new_event(session, actor, org)
        catalogue.create_event(session, outbox, spec, owner, actor)


def access(db, secret, scope, slug=None):
    with transaction(db) as session:
        return organisations.access(session, secret and keys.fingerprint(secret), [scope], slug)


def test_a_key_is_shown_once_and_stored_as_a_hash(db):
    organisation(db, "rights")
    made = key(db, "rights", ["registrations", "events"])
    assert made["key"].startswith(f"evk_{made['id']}_") and made["scopes"] == ["events", "registrations"]
    with transaction(db) as session:
        stored = session.execute(select(api_keys)).one()
        listed = organisations.list_keys(session, INSTALLATION, "rights")
    secret = made["key"].rsplit("_", 1)[1]
    assert secret not in json.dumps(stored._asdict(), default=str)
    assert "key" not in listed[0] and listed[0]["id"] == made["id"]
    assert principal(db, made["key"])["organisation"] == "rights"
    assert stored.secret_hash == keys.fingerprint(made["key"]).secret_hash


def test_unknown_keys_are_refused_and_malformed_ones_are_not_keys(db):
    organisation(db, "rights")
    key(db, "rights", ["events"])
    with pytest.raises(NotAuthenticated):
        principal(db, "evk_" + "0" * 32 + "_" + "x" * 43)
    for malformed in ("", "nope", "evk_ab_cd", "é" * 50, "evk_" + "0" * 32 + "_short"):
        assert keys.fingerprint(malformed) is None


def test_a_wrong_secret_for_a_real_key_id_is_refused(db):
    organisation(db, "rights")
    made = key(db, "rights", ["events"])
    forged = made["key"][:-4] + ("AAAA" if not made["key"].endswith("AAAA") else "BBBB")
    with pytest.raises(NotAuthenticated):
        principal(db, forged)


def test_a_revoked_key_is_refused_from_the_next_call(db):
    organisation(db, "rights")
    made = key(db, "rights", ["events"])
    with transaction(db) as session:
        organisations.revoke_key(session, INSTALLATION, "rights", made["id"])
        organisations.revoke_key(session, INSTALLATION, "rights", made["id"])   # again: no-op
    with pytest.raises(NotAuthenticated):
        principal(db, made["key"])
    with transaction(db) as session, pytest.raises(NotFound):
        organisations.revoke_key(session, INSTALLATION, "rights", "f" * 32)


def test_another_organisations_event_is_not_there_and_a_missing_scope_is_forbidden(db, outbox):
    for slug in ("rights", "press"):
        organisation(db, slug)
    event(db, outbox, "rights-day", "rights")
    rights = key(db, "rights", ["events"])["key"]
    press = key(db, "press", list(organisations.SCOPES))["key"]
    assert access(db, rights, "events", "rights-day")["organisation"] == "rights"
    with pytest.raises(NotFound):
        access(db, press, "events", "rights-day")              # even with every scope
    with pytest.raises(Forbidden):
        access(db, rights, "registrations", "rights-day")
    with pytest.raises(NotFound):
        access(db, rights, "events", "no-such-event")
    assert access(db, None, "registrations", "rights-day") == INSTALLATION


def test_a_key_limited_to_some_events_reaches_only_those_and_creates_none(db, outbox):
    organisation(db, "rights")
    event(db, outbox, "day-one", "rights")
    event(db, outbox, "day-two", "rights")
    limited = key(db, "rights", ["events", "keys"], events=["day-one"])["key"]
    access(db, limited, "events", "day-one")
    with pytest.raises(NotFound):
        access(db, limited, "events", "day-two")
    with pytest.raises(Forbidden):
        event(db, outbox, "day-three", None, actor=principal(db, limited))
    with transaction(db) as session:
        listed = catalogue.list_events(session, principal(db, limited))
    assert [e["slug"] for e in listed] == ["day-one"]


def test_an_organisation_key_makes_its_own_events_only(db, outbox):
    for slug in ("rights", "press"):
        organisation(db, slug)
    rights = principal(db, key(db, "rights", ["events"])["key"])
    event(db, outbox, "ours", None, actor=rights)
    with pytest.raises(NotFound):
        event(db, outbox, "theirs", "press", actor=rights)
    with pytest.raises(NotFound):
        event(db, outbox, "nobodys", "no-such-org")
    event(db, outbox, "old-style", None)             # the installation key, no owner named
    with transaction(db) as session:
        owners = {e["slug"]: e["organisation"] for e in catalogue.list_events(session, INSTALLATION)}
    assert owners == {"ours": "rights", "old-style": "default"}


def test_a_key_cannot_give_more_than_it_holds(db):
    organisation(db, "rights")
    organisation(db, "press")
    admin = principal(db, key(db, "rights", ["keys", "events"])["key"])
    made = key(db, "rights", ["events"], actor=admin)
    assert made["scopes"] == ["events"]
    with pytest.raises(Forbidden):
        key(db, "rights", ["registrations"], actor=admin)
    with pytest.raises(NotFound):
        key(db, "press", ["events"], actor=admin)
    limited = principal(db, key(db, "rights", ["keys"], events=["a"])["key"])
    with pytest.raises(Forbidden):
        key(db, "rights", ["keys"], actor=limited)                # unlimited
    with pytest.raises(Forbidden):
        key(db, "rights", ["keys"], events=["a", "b"], actor=limited)
    assert key(db, "rights", ["keys"], events=["a"], actor=limited)["events"] == ["a"]


def test_a_key_sees_and_revokes_only_keys_that_hold_no_more_than_it_does(db):
    organisation(db, "rights")
    broad = key(db, "rights", list(organisations.SCOPES))
    limited = principal(db, key(db, "rights", ["keys", "events"], events=["a"])["key"])
    small = key(db, "rights", ["events"], events=["a"])
    with transaction(db) as session:
        seen = [k["id"] for k in organisations.list_keys(session, limited, "rights")]
    assert broad["id"] not in seen and small["id"] in seen
    with transaction(db) as session, pytest.raises(Forbidden):
        organisations.revoke_key(session, limited, "rights", broad["id"])
    with transaction(db) as session:
        organisations.revoke_key(session, limited, "rights", small["id"])
    principal(db, broad["key"])                          # still works
    with pytest.raises(NotAuthenticated):
        principal(db, small["key"])


def test_only_the_installation_key_manages_organisations(db):
    organisation(db, "rights")
    admin = principal(db, key(db, "rights", list(organisations.SCOPES))["key"])
    with transaction(db) as session, pytest.raises(Forbidden):
        organisations.create_organisation(session, admin, OrganisationRequest(slug="x", name="X"))
    with transaction(db) as session, pytest.raises(Conflict):
        organisations.create_organisation(session, INSTALLATION,
                                          OrganisationRequest(slug="rights", name="Again"))
    with transaction(db) as session:
        assert [o["slug"] for o in organisations.list_organisations(session, INSTALLATION)] == \
            ["default", "rights"]


def test_the_audit_trail_pages_through_an_organisations_own_actions_in_order(db, outbox):
    organisation(db, "rights")
    organisation(db, "press")
    rights = principal(db, key(db, "rights", ["keys", "events"])["key"])
    event(db, outbox, "rights-day", None, actor=rights)
    event(db, outbox, "press-day", "press")
    def page(who, event, limit, after):
        return audit.page(session, organisations.visible(who, *audit.WHOSE), event, limit, after)
    with transaction(db) as session:
        first = page(rights, None, 1, None)
        second = page(rights, None, 5, first["next"])
        everything = page(INSTALLATION, None, 100, None)["entries"]
        of_event = page(INSTALLATION, "press-day", 100, None)["entries"]
    ours = first["entries"] + second["entries"]
    assert [e["action"] for e in ours] == ["organisation.created", "key.created", "event.created"]
    assert second["next"] is None and all(e["organisation"] == "rights" for e in ours)
    assert ours[-1]["key_id"] == rights["key_id"] and ours[-1]["event"] == "rights-day"
    assert [e["action"] for e in of_event] == ["event.created"]
    assert [int(e["id"]) for e in everything] == sorted(int(e["id"]) for e in everything)
