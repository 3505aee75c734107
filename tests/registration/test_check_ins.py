"""The door: a seat's check-in code lets its attendee in once, and the door
finds seats by name or address, against a real (SQLite) registration
database (one race on PostgreSQL)."""
import re
import threading

import pytest
from sqlalchemy import select

from services.registration import audit, check_ins
from services.registration.models import audit_trail
from services.registration.organisations import INSTALLATION
from shared.check_in import read, shown
from shared.db import transaction
from shared.errors import Conflict, NotFound

from .test_registrations import decide, make_event, postgres_db, register, status_of  # noqa: F401

DOOR_FIELDS = {"id", "name", "status", "category", "sessions", "checked_in_at", "check_in_code"}


def seat(db, outbox, slug, name="Amal Haddad", email="amal@example.org", outcome="confirmed"):
    answer = register(db, outbox, slug, name=name, email=email)
    decide(db, outbox, answer["id"], outcome, 1)
    return status_of(db, answer["id"])


def door(db, slug, code):
    with transaction(db) as session:
        return check_ins.check_in(session, slug, code, INSTALLATION)


def search(db, slug, query, limit=10):
    with transaction(db) as session:
        return check_ins.search(session, slug, query, limit)


def test_every_registration_has_a_code_of_its_own(db, outbox):
    spec = make_event(db, outbox)
    views = [status_of(db, register(db, outbox, spec.slug, email=f"p{n}@example.org")["id"])
             for n in range(3)]
    codes = [view["check_in_code"] for view in views]
    assert all(read(code) == code for code in codes) and len(set(codes)) == 3
    assert all(view["checked_in_at"] is None for view in views)


def test_a_seat_is_let_in_once_by_its_code_however_it_is_typed(db, outbox):
    spec = make_event(db, outbox)
    amal = seat(db, outbox, spec.slug)
    inside = door(db, spec.slug, f" {shown(amal['check_in_code']).lower()} ")
    assert set(inside) == DOOR_FIELDS
    assert inside["id"] == amal["id"] and inside["name"] == "Amal Haddad"
    assert inside["status"] == "confirmed" and inside["sessions"] == ["day-1"]
    assert inside["check_in_code"] == amal["check_in_code"] and inside["checked_in_at"]
    assert status_of(db, amal["id"])["checked_in_at"] == inside["checked_in_at"]
    came = re.escape(f"Amal Haddad was checked in at {inside['checked_in_at']}")
    with pytest.raises(Conflict, match=came):
        door(db, spec.slug, amal["check_in_code"])
    with transaction(db) as session:
        entries = session.execute(select(audit_trail.c.action, audit_trail.c.details).where(
            audit_trail.c.action == audit.CHECKED_IN)).all()
    assert [tuple(entry) for entry in entries] == [(audit.CHECKED_IN, {"registration": amal["id"]})]


def test_a_held_seat_is_let_in_too(db, outbox):
    spec = make_event(db, outbox)
    held = seat(db, outbox, spec.slug, outcome="held")
    assert door(db, spec.slug, held["check_in_code"])["status"] == "held"


def test_a_code_that_is_no_seat_of_this_event_is_not_found(db, outbox):
    spec, other = make_event(db, outbox), make_event(db, outbox)
    waiting = seat(db, outbox, spec.slug, email="w@example.org", outcome="waitlisted")
    pending = status_of(db, register(db, outbox, spec.slug, email="p@example.org")["id"])
    elsewhere = seat(db, outbox, other.slug)
    for code in ("", "not a code at all", "0" * 10, waiting["check_in_code"],
                 pending["check_in_code"], elsewhere["check_in_code"]):
        with pytest.raises(NotFound, match="not a seat of this event"):
            door(db, spec.slug, code)
    assert status_of(db, elsewhere["id"])["checked_in_at"] is None


def test_the_door_counts_and_finds_seats_by_name_or_address(db, outbox):
    spec = make_event(db, outbox, capacity=None)
    amal = seat(db, outbox, spec.slug)
    seat(db, outbox, spec.slug, name="Omar Haddad", email="omar@example.org")
    seat(db, outbox, spec.slug, name="Zeina Khoury", email="z.haddad@example.org")
    seat(db, outbox, spec.slug, name="Nadia Haddad", email="nadia@example.org",
         outcome="waitlisted")
    seat(db, outbox, spec.slug, name="100%_Real", email="real@example.org")
    door(db, spec.slug, amal["check_in_code"])
    found = search(db, spec.slug, "HADDAD")
    assert (found["checked_in"], found["seats"]) == (1, 4)
    assert [m["name"] for m in found["matches"]] == ["Amal Haddad", "Omar Haddad", "Zeina Khoury"]
    assert set(found["matches"][0]) == DOOR_FIELDS and found["matches"][0]["checked_in_at"]
    assert [m["name"] for m in search(db, spec.slug, "haddad", limit=1)["matches"]] == ["Amal Haddad"]
    assert search(db, spec.slug, "") == {"checked_in": 1, "seats": 4, "matches": []}
    # LIKE's wildcards are only themselves.
    assert [m["name"] for m in search(db, spec.slug, "%_")["matches"]] == ["100%_Real"]
    assert search(db, spec.slug, "_")["matches"][0]["name"] == "100%_Real"
    # A refused code is looked up to say who it was, however it was typed.
    shown = amal["check_in_code"][:5].lower() + "-" + amal["check_in_code"][5:]
    assert [m["name"] for m in search(db, spec.slug, shown)["matches"]] == ["Amal Haddad"]
    with pytest.raises(NotFound):
        search(db, "no-such-event", "x")


def test_two_doors_reading_one_code_at_once_let_in_once_on_postgres(postgres_db, outbox):  # noqa: F811
    db = postgres_db
    spec = make_event(db, outbox)
    amal = seat(db, outbox, spec.slug)
    first = db()
    first.begin()
    check_ins.check_in(first, spec.slug, amal["check_in_code"], INSTALLATION)
    outcome: list = []

    def second_door():
        try:
            outcome.append(door(db, spec.slug, amal["check_in_code"]))
        except Conflict as refused:
            outcome.append(refused)
    second = threading.Thread(target=second_door)
    second.start()
    second.join(0.5)
    assert second.is_alive()            # waits on the first door's UPDATE
    first.commit()
    first.close()
    second.join(10)
    [refused] = outcome
    assert isinstance(refused, Conflict) and "Amal Haddad was checked in at" in refused.detail
