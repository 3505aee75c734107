"""Erasure: every copy of an attendee's personal data leaves the database in
one transaction (snapshot, messages, webhook payloads, reminders, a refused
address no one else has), a search of every column finds neither their name
nor their address afterwards, and nothing that arrives later brings it back.
Also a quiet change of details, which later messages follow. A real
migrated SQLite database."""
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Text, cast, column, inspect, select, table, update

from services.notification import deliveries, erasure, policy, recipients, webhooks
from services.notification.models import attendees, metadata, scheduled, undeliverable
from services.notification.models import deliveries as log
from shared.db import transaction
from shared.errors import NotFound
from tests.notification import test_policy as p
from tests.notification.test_policy import DAY_1, announce, event, publish, reminders, seat, send_due, tell
from tests.notification.test_sending import worker_for

NAME = "Zuleika Quartermaine"
EMAIL = "Zuleika.Q@example.org"
HOOK = "https://hooks.example.org/registrations"


@pytest.fixture(autouse=True)
def fresh_slug():
    """A slug of its own for each test's event (see test_policy.fresh_slug)."""
    p.SLUG = f"conf-{uuid.uuid4().hex[:8]}"


def person(status="confirmed", seq=1, registration="r1", cause=None, email=EMAIL, name=NAME,
           language="en", sessions=("day-1",)):
    """A status change of an attendee with a name and address no other test data has."""
    change = p.change(status, seq, registration, cause, sessions)
    attendee = change.attendee.model_copy(update={"name": name, "email": email, "language": language})
    return change.model_copy(update={"attendee": attendee,
                                     "links": {**change.links, "unsubscribe": f"u/{registration}"}})


def erase(db, registration="r1"):
    with transaction(db) as session:
        return erasure.erase(session, registration, p.SLUG)


def add_hook(db):
    with transaction(db) as session:
        return webhooks.add(session, p.SLUG, HOOK)["id"]


def rows_of(db, registration="r1"):
    with transaction(db) as session:
        return list(session.execute(select(log).where(log.c.registration_id == registration)
                                    .order_by(log.c.id)))


def attendee_row(db, registration="r1"):
    with transaction(db) as session:
        return session.execute(select(attendees).where(attendees.c.registration_id == registration)).one()


def everything(db) -> str:
    """Every column of every row of every table, as text, lower case."""
    with transaction(db) as session:
        found = inspect(session.connection())
        names = found.get_table_names()
        assert set(metadata.tables) <= set(names)
        texts = []
        for name in names:
            columns = [c["name"] for c in found.get_columns(name)]
            rows = session.execute(select(*(cast(column(c), Text) for c in columns))
                                   .select_from(table(name, *(column(c) for c in columns))))
            texts.extend(str(value) for row in rows for value in row if value is not None)
    return "\n".join(texts).lower()


def traces(db) -> list[str]:
    text = everything(db)
    return [word for word in (EMAIL.lower(), "zuleika", "quartermaine") if word in text]


def sent(db, cause):
    with transaction(db) as session:
        session.execute(update(log).where(log.c.cause == cause).values(status="sent"))


# -- erasure -------------------------------------------------------------------------------

def test_erasure_removes_every_copy_of_the_personal_data(db):
    publish(db, event())
    hook = add_hook(db)
    tell(db, person())
    seat(db, "r2")                                              # someone else, untouched
    sent(db, "status:r1:1")
    announce(db, "news")
    with transaction(db) as session:
        # the announcement on its way to the server, and a refusal quoting the address
        [claimed] = [row for row in deliveries.claim_due(session) if row.cause.endswith(":r1")
                     and row.kind == "announcement"]
        recipients.refused(session, EMAIL, f"550 <{EMAIL.lower()}> no such user")
    assert traces(db) == [EMAIL.lower(), "zuleika", "quartermaine"]     # the search finds them
    before_r2 = rows_of(db, "r2")

    assert erase(db) == 1                                       # the organiser is told to delete
    stored = attendee_row(db)
    assert (stored.status, stored.email_key) == ("cancelled", None) and stored.erased_at is not None
    assert stored.snapshot["attendee"]["name"] == stored.snapshot["attendee"]["email"] == ""
    assert stored.snapshot["links"] == {}
    *scrubbed, told = rows_of(db)
    assert {(row.kind, row.channel, row.status) for row in scrubbed} == {
        ("seat_confirmed", "email", "sent"), ("status_changed", "webhook", "withdrawn"),
        ("announcement", "email", "withdrawn")}
    assert all(row.content == {} and row.lease is None for row in scrubbed)
    assert [row.recipient for row in scrubbed if row.channel == "email"] == ["", ""]
    assert (told.kind, told.status, told.recipient, told.content) == (
        "registration_erased", "queued", HOOK,
        {"hook_id": hook, "payload": {"type": "registration.erased", "event": p.SLUG,
                                      "registration": {"id": "r1"},
                                      "delivery_id": f"webhook:{hook}:r1:erased"}})
    with transaction(db) as session:
        assert session.execute(select(undeliverable)).all() == []
        assert set(session.execute(select(scheduled.c.state).where(
            scheduled.c.registration_id == "r1")).scalars()) == {"cancelled"}
        # the sender that held the announcement can no longer write to it
        assert deliveries.mark_sent(session, claimed) is False
        deliveries.mark_failed(session, claimed, f"timeout talking about {EMAIL}")
    assert traces(db) == []
    assert rows_of(db, "r2") == before_r2 and {r for r, _, _ in reminders(db)} == {"r2"}


def test_a_refusal_met_after_the_erasure_writes_no_address_back(db, monkeypatch):
    publish(db, event())
    tell(db, person())
    with transaction(db) as session:
        [claimed] = deliveries.claim_due(session)
    erase(db)
    worker = worker_for(db, monkeypatch, port=9)
    worker._failed(db, claimed, f"550 <{EMAIL}> no such user", permanent=True, address_refused=True)
    assert traces(db) == []


def test_a_refused_address_stays_while_another_attendee_has_it(db):
    publish(db, event())
    tell(db, person(registration="r1"), person(registration="r2", email=EMAIL.upper()))
    with transaction(db) as session:
        recipients.refused(session, EMAIL, "550 no such user")
    erase(db, "r1")
    with transaction(db) as session:
        assert session.execute(select(undeliverable.c.address_key)).scalars().all() == [EMAIL.lower()]
    erase(db, "r2")
    with transaction(db) as session:
        assert session.execute(select(undeliverable)).all() == []


def test_a_late_status_change_after_the_erasure_restores_nothing(db):
    publish(db, event())
    add_hook(db)
    tell(db, person())
    erase(db)
    before = rows_of(db)
    assert tell(db, person("cancelled", 2, cause="cancelled"), person("confirmed", 3)) == 0
    assert rows_of(db) == before                   # no message, no webhook call
    stored = attendee_row(db)
    assert (stored.status, stored.status_seq, stored.email_key) == ("cancelled", 1, None)
    assert reminders(db) == [] and traces(db) == []


def test_an_erasure_before_any_status_change_keeps_the_later_ones_out(db):
    publish(db, event())
    assert erase(db, "r9") == 0                     # no webhooks: nothing to tell
    assert tell(db, person(registration="r9")) == 0
    assert rows_of(db, "r9") == [] and reminders(db) == [] and traces(db) == []
    assert attendee_row(db, "r9").erased_at is not None


def test_an_erased_registration_gets_no_reminder_announcement_or_calendar(db):
    publish(db, event(reminders=("P1D",)))
    seat(db, "r1")
    seat(db, "r2")
    erase(db, "r1")
    with transaction(db) as session:       # as if planned again by a race: still nothing goes
        session.execute(update(scheduled).values(state="pending"))
    assert send_due(db, DAY_1 - timedelta(hours=12)) == (2, 1)
    assert announce(db, "news") == 1
    assert [row.kind for row in rows_of(db, "r1") if row.status == "queued"] == []
    with pytest.raises(NotFound):
        with transaction(db) as session:
            policy.calendar_for(session, "r1", p.ORGANISER)


def test_a_repeat_erasure_changes_nothing(db):
    publish(db, event())
    add_hook(db)
    tell(db, person())
    assert erase(db) == 1
    first = (attendee_row(db), rows_of(db))
    assert erase(db) == 0
    assert (attendee_row(db), rows_of(db)) == first
    assert [row.status for row in rows_of(db) if row.kind == "registration_erased"] == ["queued"]


# -- details changed -----------------------------------------------------------------------

def test_a_details_change_tells_nobody_but_later_messages_follow_it(db):
    publish(db, event(reminders=("P1D",), languages=("en", "fr")))
    tell(db, person())
    planned = reminders(db)
    changed = person(seq=2, cause="details_changed", name="Zuleika Q. Martin", language="fr")
    assert tell(db, changed) == 0
    assert reminders(db) == planned                 # reconciled: the same seat, the same plan
    assert attendee_row(db).snapshot["attendee"]["language"] == "fr"
    assert send_due(db, DAY_1 - timedelta(hours=12)) == (1, 1)
    [reminder] = [row for row in rows_of(db) if row.kind == "reminder"]
    assert reminder.language == "fr" and reminder.content["recipient_name"] == "Zuleika Q. Martin"
    assert [row.cause for row in rows_of(db) if row.channel == "email"] == [
        "status:r1:1", reminder.cause]                           # no message of the change itself
