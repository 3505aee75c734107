"""What organisers read: the list filtered a page at a time, the stats, the
dashboard's queue, and a change to the event previewed, against a real
(SQLite) registration database."""
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from services.registration import audit, catalogue, check_ins, reports
from services.registration.models import audit_trail, events
from services.registration.models import outbox as outbox_table
from services.registration.models import registrations as registrations_table
from services.registration.organisations import INSTALLATION
from shared.contracts import SeatRules
from shared.db import transaction
from shared.errors import BadQuery, Conflict, Invalid
from shared.schemas import EventSpec, parse
from tests.support.documents import event_document

from .test_registrations import decide, make_event, postgres_db, register, status_of  # noqa: F401

DAY_1 = event_document()["sessions"][0]
DAY_2 = {"slug": "day_2", "title": {"en": "Day 2"},
         "starts_at": "2027-03-19T10:00:00+03:00", "ends_at": "2027-03-19T18:00:00+03:00"}


def listed(db, slug, filters, limit=10, after=None):
    with transaction(db) as session:
        return reports.list_for_event(session, slug, filters, limit, after)


def names(page):
    return [row["name"] for row in page["rows"]]


@pytest.fixture
def crowd(db, outbox):
    """An event of two sessions and categories, and five attendees."""
    spec = make_event(db, outbox, capacity=None, sessions=[DAY_1, DAY_2],
                      categories=[{"slug": "press"}, {"slug": "guest"}])
    people = [("Amal Haddad", "amal@example.org", "press", ["day-1"], "ar"),
              ("Omar Saleh", "omar.haddad@example.org", "guest", ["day_2"], "en"),
              ("Zeina Khoury", "zeina@example.org", "guest", ["day-1", "day_2"], "fr"),
              ("Rami 50%_off", "rami@example.org", "press", ["day-1"], "en"),
              ("Lina Haddad", "lina@example.org", "guest", ["day-1"], "en")]
    ids = {}
    for name, email, category, sessions, language in people:
        ids[name] = register(db, outbox, spec.slug, name=name, email=email, category=category,
                             sessions=sessions, language=language)["id"]
    for name in ("Amal Haddad", "Omar Saleh", "Zeina Khoury", "Rami 50%_off"):
        decide(db, outbox, ids[name], "confirmed", 1)
    with transaction(db) as session:
        check_ins.check_in(session, spec.slug, status_of(db, ids["Amal Haddad"])["check_in_code"],
                           INSTALLATION)
    return spec, ids


@pytest.mark.parametrize("filters, expected", [
    ({}, ["Amal Haddad", "Omar Saleh", "Zeina Khoury", "Rami 50%_off", "Lina Haddad"]),
    ({"status": "pending"}, ["Lina Haddad"]),
    ({"q": "HADDAD"}, ["Amal Haddad", "Omar Saleh", "Lina Haddad"]),     # name or address
    ({"q": "%_"}, ["Rami 50%_off"]),                                       # wildcards as typed
    ({"q": "_"}, ["Rami 50%_off"]),
    ({"category": "press"}, ["Amal Haddad", "Rami 50%_off"]),
    ({"session": "day_2"}, ["Omar Saleh", "Zeina Khoury"]),
    ({"session": "day"}, []),                                              # the whole slug only
    ({"language": "en"}, ["Omar Saleh", "Rami 50%_off", "Lina Haddad"]),
    ({"checked_in": True}, ["Amal Haddad"]),
    ({"checked_in": False}, ["Omar Saleh", "Zeina Khoury", "Rami 50%_off", "Lina Haddad"]),
    ({"status": "confirmed", "category": "guest", "session": "day-1"}, ["Zeina Khoury"]),
    ({"status": None, "q": "", "checked_in": None}, ["Amal Haddad", "Omar Saleh", "Zeina Khoury",
                                                     "Rami 50%_off", "Lina Haddad"]),
])
def test_the_list_is_filtered(db, crowd, filters, expected):
    spec, _ = crowd
    assert names(listed(db, spec.slug, filters)) == expected


@pytest.mark.parametrize("filters, field", [
    ({"colour": "red"}, "colour"),
    ({"session": "day-1%"}, "session"),
    ({"session": 'x" OR 1=1'}, "session"),
    ({"checked_in": "yes"}, "checked_in"),
    ({"q": ["a"]}, "q"),
])
def test_a_filter_that_is_none_is_a_bad_query(db, crowd, filters, field):
    spec, _ = crowd
    with pytest.raises(BadQuery) as refused:
        listed(db, spec.slug, filters)
    assert [f["field"] for f in refused.value.fields] == [field]


def test_a_filtered_list_is_read_a_page_at_a_time(db, crowd):
    spec, _ = crowd
    seen, after = [], None
    while True:
        page = listed(db, spec.slug, {"checked_in": False}, limit=2, after=after)
        seen += names(page)
        if page["next"] is None:
            break
        after = page["next"]
    assert seen == ["Omar Saleh", "Zeina Khoury", "Rami 50%_off", "Lina Haddad"]


def test_reading_the_list_records_its_filters_but_no_text_searched_for(db, crowd):
    spec, _ = crowd
    with transaction(db) as session:
        reports.read_list(session, spec.slug, {"q": "amal", "category": "press", "status": None},
                          10, None, INSTALLATION, "exported")
    with transaction(db) as session:
        [entry] = session.execute(select(audit_trail).where(
            audit_trail.c.action == audit.REGISTRATIONS_EXPORTED)).all()
    assert entry.details == {"filters": {"q": True, "category": "press"}, "after": None}
    assert "amal" not in str(entry.details)


def test_stats_count_check_ins_and_registrations_by_hour(db, crowd):
    spec, ids = crowd
    hours = [datetime(2026, 3, 1, 9, 5, tzinfo=UTC), datetime(2026, 3, 1, 9, 55, tzinfo=UTC),
             datetime(2026, 3, 1, 12, 0, tzinfo=UTC), datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
             datetime(2026, 2, 28, 23, 59, tzinfo=UTC)]
    with transaction(db) as session:
        for registration_id, created in zip(ids.values(), hours):
            session.execute(update(registrations_table).where(
                registrations_table.c.id == registration_id).values(created_at=created))
    with transaction(db) as session:
        counts = reports.stats(session, spec.slug)
    assert counts["checked_in"] == 1
    assert counts["timeline"] == [["2026-02-28T23:00:00+00:00", 1], ["2026-03-01T09:00:00+00:00", 2],
                                  ["2026-03-01T12:00:00+00:00", 2]]


def test_the_queue_shows_holds_by_deadline_and_the_waiting_list_in_order(db, outbox):
    spec = make_event(db, outbox)
    soon = datetime.now(UTC) + timedelta(hours=1)
    ids = {name: register(db, outbox, spec.slug, name=name, email=f"{name}@example.org")["id"]
           for name in ("late", "early", "third", "first", "second", "unplaced")}
    decide(db, outbox, ids["late"], "held", 1, hold_expires_at=soon + timedelta(hours=2))
    decide(db, outbox, ids["early"], "held", 1, hold_expires_at=soon)
    for name, position in (("third", 3), ("first", 1), ("second", 2), ("unplaced", None)):
        decide(db, outbox, ids[name], "waitlisted", 1, waitlist_position=position)
    with transaction(db) as session:
        line = reports.queue(session, spec.slug, 3)
    assert [h["name"] for h in line["holds"]] == ["early", "late"] and line["holds_total"] == 2
    assert line["holds"][0] == {"id": ids["early"], "name": "early", "category": None,
                                "hold_expires_at": soon.isoformat()}
    assert [w["name"] for w in line["waiting"]] == ["first", "second", "third"]
    assert line["waiting_total"] == 4
    assert set(line["waiting"][0]) == {"id", "name", "category", "waitlist_position", "created_at"}
    with transaction(db) as session:
        assert [w["name"] for w in reports.queue(session, spec.slug, 10)["waiting"]][-1] == "unplaced"


def preview(db, slug, changes):
    with transaction(db) as session:
        return catalogue.preview_update(session, slug, changes, reports.choices_in_use, reports.told)


def test_a_preview_shows_the_change_and_whom_it_tells_and_changes_nothing(db, outbox, crowd):
    spec, ids = crowd
    decide(db, outbox, ids["Lina Haddad"], "waitlisted", 1, waitlist_position=1)
    moved = {**DAY_1, "starts_at": "2027-03-18T11:00:00+03:00"}
    with transaction(db) as session:
        before = catalogue.get_event(session, spec.slug)
        published = outbox_rows(session)
        trail = session.execute(select(audit_trail.c.id)).all()
    seen = preview(db, spec.slug, {"sessions": [moved, {**DAY_2, "cancelled": True}],
                                   "capacity": 40})
    after = parse(EventSpec, {**spec.model_dump(mode="json"), "capacity": 40,
                                      "sessions": [moved, {**DAY_2, "cancelled": True}]})
    assert seen["event"] == {**after.model_dump(mode="json"), "revision": 2,
                             "organisation": before["organisation"]}
    assert seen["seat_rules"] == SeatRules.of(after).model_dump()
    assert seen["seat_rules"]["cancelled_sessions"] == ["day_2"]
    # day-1 moves: its seats are told (Amal, Zeina, Rami; Lina waits for a seat);
    # day_2 is cancelled: those who hold it (Omar, Zeina).
    assert seen["told"] == {"day-1": 3, "day_2": 2}
    with transaction(db) as session:
        assert catalogue.get_event(session, spec.slug) == before
        assert outbox_rows(session) == published
        assert session.execute(select(audit_trail.c.id)).all() == trail
    assert preview(db, spec.slug, {"capacity": 40})["told"] == {}
    assert preview(db, spec.slug, {})["event"] == before
    # The revision previewed was never made: the real one is read as it is.
    with transaction(db) as session:
        catalogue.update_event(session, outbox, spec.slug, {"capacity": 7},
                               reports.choices_in_use, INSTALLATION)
    with transaction(db) as session:
        made = catalogue.get_event(session, spec.slug)
    assert (made["revision"], made["capacity"], made["sessions"]) == (2, 7, before["sessions"])


def test_a_preview_refuses_as_the_change_would(db, crowd):
    spec, _ = crowd
    with pytest.raises(Invalid):
        preview(db, spec.slug, {"capacity": -1})
    with pytest.raises(Conflict, match="registrations still use"):
        preview(db, spec.slug, {"sessions": [DAY_1]})
    with transaction(db) as session:
        assert session.execute(select(events.c.revision)).scalar_one() == 1


def outbox_rows(session):
    return session.execute(select(outbox_table.c.id)).all()


def test_filters_queue_and_preview_read_alike_on_postgres(postgres_db, outbox):  # noqa: F811
    db = postgres_db
    spec = make_event(db, outbox, capacity=None, sessions=[DAY_1, DAY_2])
    ids = [register(db, outbox, spec.slug, name=name, email=f"{n}@example.org", sessions=chosen)["id"]
           for n, (name, chosen) in enumerate([("Amal Haddad", ["day_2"]), ("Rami 50%_off", ["day-1"])])]
    for registration_id in ids:
        decide(db, outbox, registration_id, "confirmed", 1)
    assert names(listed(db, spec.slug, {"session": "day_2"})) == ["Amal Haddad"]
    assert names(listed(db, spec.slug, {"q": "%_", "checked_in": False})) == ["Rami 50%_off"]
    with transaction(db) as session:
        assert reports.queue(session, spec.slug, 5)["holds_total"] == 0
    seen = preview(db, spec.slug, {"sessions": [DAY_1, {**DAY_2, "cancelled": True}]})
    assert seen["told"] == {"day_2": 1} and seen["event"]["revision"] == 2
    with transaction(db) as session:
        assert catalogue.get_event(session, spec.slug)["revision"] == 1
