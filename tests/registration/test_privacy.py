"""An attendee's details changed, a registration erased (by the attendee, an
organiser, or RETENTION_DAYS), and lists read a page at a time, against a
real (SQLite) registration database."""
import json
from datetime import timedelta

import pytest
from sqlalchemy import inspect, select, text

from services.registration import audit, decisions, privacy, registrations, reports
from services.registration.models import outbox as outbox_table
from services.registration.organisations import INSTALLATION
from shared.contracts import (
    RegistrationCancelled,
    RegistrationErased,
    RegistrationStatusChanged,
    SeatDecided,
)
from shared.db import transaction
from shared.errors import BadQuery, Invalid, NotAllowed, NotFound
from shared.statuses import Status

from .test_registrations import LINKS, make_event, register, status_of

EMAIL, NAME = "amira.haddad@example.org", "Amira Haddad"
PAST = [{"slug": "day-1", "title": {"en": "Day 1"},
         "starts_at": "2020-03-18T10:00:00+03:00", "ends_at": "2020-03-18T18:00:00+03:00"}]


def seated(db, outbox, slug, **fields):
    answer = register(db, outbox, slug, name=NAME, email=EMAIL, **fields)
    with transaction(db) as session:
        decisions.apply_seat_decision(session, outbox, LINKS, SeatDecided(
            registration_id=answer["id"], event_slug=slug, outcome=Status.CONFIRMED,
            decision_seq=1))
    return answer["id"]


def every_value(db) -> str:
    """Every row of every table, as text: where personal data would show."""
    with transaction(db) as session:
        tables = inspect(session.get_bind()).get_table_names()
        return "\n".join(str(tuple(row)) for table in tables
                         for row in session.execute(text(f'SELECT * FROM "{table}"')))


def test_details_change_and_every_later_message_carries_them(db, outbox):
    spec = make_event(db, outbox, questions=[{"slug": "topic", "label": {"en": "Topic"}}])
    registration_id = seated(db, outbox, spec.slug, answers={"topic": "seats"})
    with transaction(db) as session:
        changed = privacy.change_details(session, outbox, LINKS, registration_id, {
            "name": "Amira H.", "language": "ar", "timezone": "Asia/Baghdad",
            "answers": {"topic": "visas"}})
    assert (changed["name"], changed["language"], changed["timezone"], changed["answers"]) == \
        ("Amira H.", "ar", "Asia/Baghdad", {"topic": "visas"})
    change = outbox.of_type(RegistrationStatusChanged)[-1]
    assert change.cause == "details_changed" and change.status == Status.CONFIRMED
    assert change.attendee.language == "ar" and change.attendee.name == "Amira H."
    before = len(outbox.messages)
    with transaction(db) as session:             # the same again: nothing to announce
        privacy.change_details(session, outbox, LINKS, registration_id, {"language": "ar"})
    assert len(outbox.messages) == before


@pytest.mark.parametrize("changes, field", [
    ({"language": "tr"}, "language"),            # not one of the event's
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"name": ""}, "name"),
    ({"answers": {"nope": "x"}}, "answers.nope"),
    ({"email": "other@example.org"}, "email"),    # the address is not a detail one changes
])
def test_bad_details_are_refused_and_change_nothing(db, outbox, changes, field):
    spec = make_event(db, outbox)
    registration_id = seated(db, outbox, spec.slug)
    with transaction(db) as session, pytest.raises(Invalid) as refused:
        privacy.change_details(session, outbox, LINKS, registration_id, changes)
    assert refused.value.fields[0]["field"] == field
    assert status_of(db, registration_id)["name"] == NAME


def test_a_cancelled_registration_keeps_its_details(db, outbox):
    spec = make_event(db, outbox)
    registration_id = seated(db, outbox, spec.slug)
    with transaction(db) as session:
        registrations.cancel(session, outbox, LINKS, registration_id)
    with transaction(db) as session, pytest.raises(NotAllowed):
        privacy.change_details(session, outbox, LINKS, registration_id, {"name": "X"})


def test_erasure_releases_the_seat_then_leaves_nothing_that_names_the_attendee(db, outbox):
    spec = make_event(db, outbox, questions=[{"slug": "topic", "label": {"en": "Topic"}}])
    registration_id = seated(db, outbox, spec.slug, answers={"topic": "Kurdish visas"},
                             country="IQ", language="ar")
    register(db, outbox, spec.slug, key="again", name="Nadia", email="nadia@example.org")
    assert EMAIL in every_value(db) and NAME in every_value(db)
    with transaction(db) as session:
        privacy.erase(session, outbox, registration_id, audit.ATTENDEE)
    released = outbox.of_type(RegistrationCancelled)
    assert [m.registration_id for m in released] == [registration_id]
    assert [m.registration_id for m in outbox.of_type(RegistrationErased)] == [registration_id]
    stored = every_value(db)
    for personal in (EMAIL, NAME, EMAIL.lower(), "Kurdish visas"):
        assert personal not in stored
    assert "nadia@example.org" in stored                     # only theirs went
    with transaction(db) as session:
        counts = reports.stats(session, spec.slug)
        trail = audit.page(session, [], spec.slug, 100, None)["entries"]
    # The counts stay: a cancelled registration, in Arabic, from Iraq.
    assert counts["registrations"]["cancelled"] == 1 and counts["per_country"]["IQ"]["cancelled"] == 1
    assert counts["per_language"]["ar"]["cancelled"] == 1
    assert trail[-1]["action"] == "registration.erased" and trail[-1]["key_id"] == "attendee"
    assert trail[-1]["details"] == {"registration": registration_id}
    with pytest.raises(NotFound):
        status_of(db, registration_id)                       # its token opens nothing now
    with transaction(db) as session, pytest.raises(NotFound):
        privacy.erase(session, outbox, registration_id, audit.ATTENDEE)


def test_a_decision_arriving_after_erasure_announces_nothing(db, outbox):
    spec = make_event(db, outbox)
    registration_id = register(db, outbox, spec.slug, name=NAME, email=EMAIL)["id"]
    with transaction(db) as session:
        privacy.erase(session, outbox, registration_id, INSTALLATION)
    before = len(outbox.of_type(RegistrationStatusChanged))
    with transaction(db) as session:
        decisions.apply_seat_decision(session, outbox, LINKS, SeatDecided(
            registration_id=registration_id, event_slug=spec.slug, outcome=Status.CONFIRMED,
            decision_seq=1))
    assert len(outbox.of_type(RegistrationStatusChanged)) == before
    assert NAME not in every_value(db)


def test_the_outbox_drops_unsent_news_of_the_erased_and_blanks_what_was_sent(db, outbox):
    spec = make_event(db, outbox)
    registration_id = seated(db, outbox, spec.slug)
    changes = outbox_table.c.event_type == "registration.status_changed"
    with transaction(db) as session:
        [sent] = session.execute(select(outbox_table.c.id).where(changes)).scalars().all()
        session.execute(outbox_table.update().where(outbox_table.c.id == sent).values(
            published_at=outbox_table.c.created_at))
        privacy.change_details(session, outbox, LINKS, registration_id, {"name": "Amira H."})
    with transaction(db) as session:
        privacy.erase(session, outbox, registration_id, INSTALLATION)
        left = session.execute(select(outbox_table.c.id, outbox_table.c.body).where(changes)).all()
        kinds = session.execute(select(outbox_table.c.event_type)).scalars().all()
    assert [row.id for row in left] == [sent]            # the unsent one is gone
    data = json.loads(left[0].body)["data"]
    assert data["attendee"]["email"] == data["attendee"]["name"] == "" and data["links"] == {}
    assert data["attendee"]["timezone"] is None
    assert {"registration.cancelled", "registration.erased"} <= set(kinds)


def test_retention_erases_an_events_attendees_after_it_ended_and_keeps_the_counts(db, outbox):
    old = make_event(db, outbox, sessions=PAST)
    current = make_event(db, outbox)
    for n in range(3):
        register(db, outbox, old.slug, name=f"Person {n}", email=f"p{n}@example.org")
    register(db, outbox, current.slug, name=NAME, email=EMAIL)
    swept = []
    for _ in range(3):
        with transaction(db) as session:
            swept.append(privacy.expire_personal_data(session, outbox, timedelta(days=180), limit=2))
    assert swept == [2, 1, 0]
    with transaction(db) as session:
        counts = reports.stats(session, old.slug)["registrations"]
        trail = audit.page(session, [], old.slug, 100, None)["entries"]
    stored = every_value(db)
    assert counts["pending"] == 3
    assert not any(f"p{n}@example.org" in stored or f"Person {n}" in stored for n in range(3))
    assert EMAIL in stored                               # the current event is untouched
    assert len(outbox.of_type(RegistrationErased)) == 3
    assert [(e["action"], e["key_id"], e["details"]) for e in trail[-2:]] == [
        ("event.personal_data_erased", "retention", {"registrations": 2}),
        ("event.personal_data_erased", "retention", {"registrations": 1})]
    # Someone who registers late is swept in their turn.
    register(db, outbox, old.slug, name="Late Comer", email="late@example.org")
    with transaction(db) as session:
        assert privacy.expire_personal_data(session, outbox, timedelta(days=180)) == 1
    assert "late@example.org" not in every_value(db)


def test_a_list_is_read_a_page_at_a_time_in_registration_order(db, outbox):
    spec = make_event(db, outbox, capacity=None)
    ids = [register(db, outbox, spec.slug, email=f"p{n}@example.org")["id"] for n in range(5)]
    seen, after = [], None
    with transaction(db) as session:
        while True:
            page = reports.list_for_event(session, spec.slug, {}, 2, after)
            seen += [row["id"] for row in page["rows"]]
            if page["next"] is None:
                break
            after = page["next"]
        assert seen == ids
        assert reports.list_for_event(session, spec.slug, {}, 5, None)["next"] is None
        with pytest.raises(BadQuery):
            reports.list_for_event(session, spec.slug, {}, 2, "f" * 32)
