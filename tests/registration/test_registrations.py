"""Registration domain logic against a real (SQLite) database, no broker."""
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from services.registration import catalogue, decisions, registrations, reports
from services.registration.models import FIRST_ORGANISATION
from services.registration.models import outbox as outbox_table
from services.registration.models import registrations as registrations_table
from services.registration.organisations import INSTALLATION
from shared.contracts import (
    EventPublished,
    RegistrationCancelled,
    RegistrationRequested,
    RegistrationStatusChanged,
    RegistrationUnfollowed,
    SeatDecided,
    SeatRules,
    SessionOutcome,
    SessionRequested,
)
from shared.db import transaction
from shared.errors import Conflict, Invalid, NotAllowed, NotFound
from shared.schemas import EventSpec, RegistrationRequest
from shared.tokens import token_is_valid
from tests.support.documents import event_document

LINKS = registrations.Links("https://events.example.org", "secret")


def make_event(db, outbox, **fields):
    spec = EventSpec.model_validate_json(json.dumps(event_document(**fields)))
    with transaction(db) as session:
        catalogue.create_event(session, outbox, spec, FIRST_ORGANISATION, INSTALLATION)
    return spec


def request(**fields):
    body = {"name": "Amira", "email": "amira@example.org", **fields}
    return RegistrationRequest.model_validate_json(json.dumps(body))


def register(db, outbox, slug, key=None, **fields):
    with transaction(db) as session:
        return registrations.register(session, outbox, LINKS, slug, request(**fields), key)


def decide(db, outbox, registration_id, outcome, seq, **fields):
    decision = SeatDecided(registration_id=registration_id, event_slug="x", outcome=outcome,
                           decision_seq=seq, **fields)
    with transaction(db) as session:
        decisions.apply_seat_decision(session, outbox, LINKS, decision)


def status_of(db, registration_id):
    with transaction(db) as session:
        return registrations.get_registration(session, registration_id)


def test_creating_an_event_publishes_it(db, outbox):
    spec = make_event(db, outbox)
    [published] = outbox.of_type(EventPublished)
    assert published.event == spec and published.revision == 1
    with pytest.raises(Conflict):
        make_event(db, outbox, slug=spec.slug)


def test_a_registration_is_stored_pending_and_announced_in_one_transaction(db, outbox):
    spec = make_event(db, outbox)
    answer = register(db, outbox, spec.slug, language="ar")
    assert answer["status"] == "pending"
    assert token_is_valid("secret", answer["id"], answer["token"])
    [requested] = outbox.of_type(RegistrationRequested)
    assert requested.registration_id == answer["id"] and requested.sessions == ["day-1"]
    # It carries the seat rules of the revision it was checked against.
    assert requested.event_revision == 1 and requested.seat_rules == SeatRules.of(spec)
    # The committed outbox holds that very message, once.
    with transaction(db) as session:
        rows = session.execute(outbox_table.select().where(
            outbox_table.c.event_type == "registration.requested")).all()
    assert [RegistrationRequested.model_validate(json.loads(r.body)["data"]) for r in rows] == [requested]
    assert status_of(db, answer["id"])["language"] == "ar"
    # One transaction: if it does not commit, neither the registration nor its message remains.
    with pytest.raises(RuntimeError), transaction(db) as session:
        second = registrations.register(session, outbox, LINKS, spec.slug,
                                        request(email="nadia@example.org"), None)
        raise RuntimeError("the transaction fails after the registration")
    with pytest.raises(NotFound):
        status_of(db, second["id"])
    with transaction(db) as session:
        assert session.execute(select(func.count()).select_from(outbox_table).where(
            outbox_table.c.event_type == "registration.requested")).scalar_one() == 1


def test_choices_are_checked_against_the_event(db, outbox):
    spec = make_event(db, outbox, questions=[
        {"slug": "diet", "label": {"en": "Diet"}, "type": "choice", "options": ["vegan", "any"],
         "required": True}])
    with pytest.raises(Invalid) as error:
        register(db, outbox, spec.slug, language="tr", sessions=["day-9"], category="local",
                 answers={"diet": "fish", "shoe_size": "42"})
    fields = {problem["field"] for problem in error.value.fields}
    assert fields == {"language", "sessions", "category", "answers.diet", "answers.shoe_size"}
    with transaction(db) as session:
        assert session.execute(registrations_table.select()).all() == []   # nothing stored


def test_unknown_event(db, outbox):
    with pytest.raises(NotFound):
        register(db, outbox, "no-such-event")


def test_the_same_address_twice_is_a_conflict_until_cancelled(db, outbox):
    spec = make_event(db, outbox)
    first = register(db, outbox, spec.slug, email="Amira@Example.org")
    with pytest.raises(Conflict):
        register(db, outbox, spec.slug, email="amira@example.org")
    with transaction(db) as session:
        registrations.cancel(session, outbox, LINKS, first["id"])
    register(db, outbox, spec.slug, email="amira@example.org")


def test_an_idempotency_key_returns_the_first_answer_and_refuses_another_body(db, outbox):
    spec = make_event(db, outbox)
    first = register(db, outbox, spec.slug, key="k1")
    assert register(db, outbox, spec.slug, key="k1") == first
    with pytest.raises(Invalid):
        register(db, outbox, spec.slug, key="k1", name="Someone Else")
    assert len(outbox.of_type(RegistrationRequested)) == 1


def test_seat_decisions_become_statuses_in_order(db, outbox):
    spec = make_event(db, outbox)
    answer = register(db, outbox, spec.slug)
    decide(db, outbox, answer["id"], "waitlisted", 1, waitlist_position=3)
    assert status_of(db, answer["id"])["waitlist_position"] == 3
    decide(db, outbox, answer["id"], "confirmed", 2, promoted=True)
    decide(db, outbox, answer["id"], "waitlisted", 1, waitlist_position=3)   # late duplicate
    assert status_of(db, answer["id"])["status"] == "confirmed"
    changes = outbox.of_type(RegistrationStatusChanged)
    assert [(c.status, c.cause, c.status_seq) for c in changes] == [
        ("waitlisted", "waitlisted", 1), ("confirmed", "promoted", 2)]


def test_a_decision_that_takes_long_is_preceded_by_a_received_notice(db, outbox):
    spec = make_event(db, outbox)
    quick = register(db, outbox, spec.slug, email="quick@example.org")
    slow = register(db, outbox, spec.slug, email="slow@example.org")
    decide(db, outbox, quick["id"], "confirmed", 1)
    for _ in range(2):              # announced once, however often the timer runs
        with transaction(db) as session:
            decisions.announce_slow_decisions(session, outbox, LINKS, timedelta(0))
    decide(db, outbox, slow["id"], "confirmed", 1)
    changes = [(c.registration_id, c.status, c.cause, c.status_seq)
               for c in outbox.of_type(RegistrationStatusChanged)]
    assert changes == [(quick["id"], "confirmed", "confirmed", 1),
                       (slow["id"], "pending", "received", 1),
                       (slow["id"], "confirmed", "confirmed", 2)]
    with transaction(db) as session:    # not yet old enough: nothing
        assert decisions.announce_slow_decisions(session, outbox, LINKS, timedelta(hours=1)) == 0


def test_cancelling_releases_and_a_later_decision_does_not_revive(db, outbox):
    spec = make_event(db, outbox)
    answer = register(db, outbox, spec.slug)
    with transaction(db) as session:
        assert registrations.cancel(session, outbox, LINKS, answer["id"])["status"] == "cancelled"
    with transaction(db) as session:   # cancelling twice is harmless
        registrations.cancel(session, outbox, LINKS, answer["id"])
    assert len(outbox.of_type(RegistrationCancelled)) == 1
    decide(db, outbox, answer["id"], "confirmed", 1)
    assert status_of(db, answer["id"])["status"] == "cancelled"


def test_only_a_live_hold_can_be_confirmed(db, outbox):
    spec = make_event(db, outbox)
    answer = register(db, outbox, spec.slug)
    with pytest.raises(NotAllowed), transaction(db) as session:
        registrations.confirm(session, outbox, answer["id"])
    decide(db, outbox, answer["id"], "held", 1,
           hold_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(NotAllowed), transaction(db) as session:
        registrations.confirm(session, outbox, answer["id"])


def test_a_change_to_the_event_waits_for_registrations_being_stored_on_postgres(outbox):
    """A PATCH counts the sessions in use only after registrations that hold
    the event's row (shared) have committed, so none can name a session the
    PATCH then removes."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import sessionmaker

    from shared.db import make_engine, run_migrations
    from tests.support.databases import PostgresDatabases, require_postgres
    from tests.support.paths import ROOT
    require_postgres()
    databases = PostgresDatabases(["registration"]).create()
    engine = make_engine(databases.url("registration"))
    try:
        run_migrations(engine, ROOT / "services" / "registration" / "migrations")
        db = sessionmaker(engine, expire_on_commit=False)
        spec = make_event(db, outbox)
        registering, other = db(), db()
        with registering.begin():
            registrations.register(registering, outbox, LINKS, spec.slug, request())
            with other.begin():           # a second registration is not held up
                registrations.register(other, outbox, LINKS, spec.slug,
                                       request(email="second@example.org"))
            with pytest.raises(OperationalError, match="lock"), other.begin():
                other.execute(text("SET LOCAL lock_timeout = '200ms'"))
                catalogue.load_event(other, spec.slug, lock="update")     # a PATCH waits
        registering.close()
        other.close()
    finally:
        engine.dispose()
        databases.drop()


@pytest.fixture
def postgres_db():
    from sqlalchemy.orm import sessionmaker

    from shared.db import make_engine, run_migrations
    from tests.support.databases import PostgresDatabases, require_postgres
    from tests.support.paths import ROOT
    require_postgres()
    databases = PostgresDatabases(["registration"]).create()
    engine = make_engine(databases.url("registration"))
    try:
        run_migrations(engine, ROOT / "services" / "registration" / "migrations")
        yield sessionmaker(engine, expire_on_commit=False)
    finally:
        engine.dispose()
        databases.drop()


@pytest.mark.parametrize("first_commits", ["between the retry's two reads", "after both reads"])
def test_a_retry_racing_its_first_attempt_gets_the_first_answer_on_postgres(
        postgres_db, outbox, monkeypatch, first_commits):
    """A front end retries with its Idempotency-Key while the first attempt
    (whose answer it never saw, say across a broker restart) is still being
    stored. Whenever the first commits, the retry gets the first answer: not
    a 409 for the address, not a second registration."""
    import threading

    db = postgres_db
    spec = make_event(db, outbox)
    first = db()
    first.begin()
    first_answer = registrations.register(first, outbox, LINKS, spec.slug, request(), "key-1")
    commit_now = threading.Event()

    def commit_first():
        commit_now.wait(10)
        first.commit()
        first.close()
    committer = threading.Thread(target=commit_first)
    committer.start()
    if first_commits == "between the retry's two reads":
        # The retry reads the active registrations and the earlier answers
        # (in whichever order): the first commits right after the first read.
        for read in ("_active", "_earlier"):
            def then_commit(self, keys, original=getattr(registrations._EventBatch, read)):
                found = original(self, keys)
                if not commit_now.is_set():
                    commit_now.set()
                    committer.join()
                return found
            monkeypatch.setattr(registrations._EventBatch, read, then_commit)
    else:
        # The retry reads nothing yet, then waits on the first's key.
        threading.Timer(0.5, commit_now.set).start()
    retry_answer = register(db, outbox, spec.slug, key="key-1")
    committer.join()
    assert retry_answer == first_answer
    with transaction(db) as session:
        assert session.execute(select(registrations_table.c.id)).scalars().all() == [first_answer["id"]]


def test_one_batch_answers_each_registration_on_its_own(db, outbox):
    spec = make_event(db, outbox)
    Submission = registrations.Submission
    with transaction(db) as session:
        results = registrations.register_many(session, outbox, LINKS, [
            Submission(spec.slug, request(email="a@example.org"), "k1"),
            Submission(spec.slug, request(email="A@example.org")),          # same address
            Submission(spec.slug, request(email="b@example.org"), "k1"),    # key reused, other body
            Submission(spec.slug, request(email="a@example.org"), "k1"),    # a repeat: first answer
            Submission(spec.slug, request(email="c@example.org", language="tr")),   # not offered
            Submission("no-such-event", request(email="d@example.org")),
            Submission(spec.slug, request(email="e@example.org")),
        ])
    assert isinstance(results[0], dict) and results[3] == results[0]
    assert [type(r).__name__ for r in results[1:3]] == ["Conflict", "Invalid"]
    assert [type(r).__name__ for r in results[4:6]] == ["Invalid", "NotFound"]
    assert isinstance(results[6], dict)
    with transaction(db) as session:
        stored = session.execute(select(registrations_table.c.email)).scalars().all()
    assert sorted(stored) == ["a@example.org", "e@example.org"]
    assert len(outbox.of_type(RegistrationRequested)) == 2


# -- the series: following, sessions added, asked for and cancelled -------------------------
DAY_2 = {"slug": "day-2", "title": {"en": "Day 2"}, "starts_at": "2027-03-19T10:00:00+03:00",
         "ends_at": "2027-03-19T18:00:00+03:00"}


def test_a_registration_without_sessions_follows_and_one_with_sessions_does_not(db, outbox):
    spec = make_event(db, outbox)
    follower = register(db, outbox, spec.slug)
    chooser = register(db, outbox, spec.slug, email="c@example.org", sessions=["day-1"])
    assert status_of(db, follower["id"])["follows"] is True
    assert status_of(db, chooser["id"])["follows"] is False
    requested = {r.registration_id: r.follows for r in outbox.of_type(RegistrationRequested)}
    assert requested == {follower["id"]: True, chooser["id"]: False}


def test_news_of_a_session_keeps_the_status_and_is_announced_once(db, outbox):
    spec = make_event(db, outbox)
    answer = register(db, outbox, spec.slug)
    decide(db, outbox, answer["id"], "confirmed", 1)
    news = SessionOutcome(session="day-2", outcome="seated", reason="added")
    decide(db, outbox, answer["id"], "confirmed", 2, sessions=["day-1", "day-2"],
           sessions_waiting=[], session_change=news)
    decide(db, outbox, answer["id"], "confirmed", 2, sessions=["day-1", "day-2"],
           sessions_waiting=[], session_change=news)                 # delivered twice
    view = status_of(db, answer["id"])
    assert view["status"] == "confirmed" and view["sessions"] == ["day-1", "day-2"]
    changes = outbox.of_type(RegistrationStatusChanged)
    assert [(c.cause, c.session_change) for c in changes] == [("confirmed", None),
                                                              ("session_seated", news)]
    assert changes[-1].attendee.sessions == ["day-1", "day-2"]
    gone = SessionOutcome(session="day-1", outcome="cancelled", reason="cancelled")
    decide(db, outbox, answer["id"], "confirmed", 3, sessions=["day-2"], sessions_waiting=[],
           session_change=gone)
    view = status_of(db, answer["id"])
    assert view["sessions"] == ["day-2"] and view["sessions_cancelled"] == ["day-1"]


def test_a_session_is_added_to_a_seat_and_a_cancelled_one_never(db, outbox):
    spec = make_event(db, outbox, sessions=[event_document()["sessions"][0], DAY_2])
    answer = register(db, outbox, spec.slug, sessions=["day-1"])
    with transaction(db) as session, pytest.raises(NotAllowed):
        registrations.add_session(session, outbox, answer["id"], "day-2")     # no seat yet
    decide(db, outbox, answer["id"], "confirmed", 1)
    with transaction(db) as session, pytest.raises(Invalid):
        registrations.add_session(session, outbox, answer["id"], "day-9")
    with transaction(db) as session:
        registrations.add_session(session, outbox, answer["id"], "day-2")
    assert [(m.registration_id, m.session) for m in outbox.of_type(SessionRequested)] == \
        [(answer["id"], "day-2")]
    cancelled = [event_document()["sessions"][0], {**DAY_2, "cancelled": True}]
    with transaction(db) as session:
        catalogue.update_event(session, outbox, spec.slug, {"sessions": cancelled},
                               reports.choices_in_use, INSTALLATION)
    with transaction(db) as session, pytest.raises(Conflict, match="stays cancelled"):
        catalogue.update_event(session, outbox, spec.slug,
                               {"sessions": [event_document()["sessions"][0], DAY_2]},
                               reports.choices_in_use, INSTALLATION)
    with pytest.raises(Invalid):
        register(db, outbox, spec.slug, email="late@example.org", sessions=["day-2"])
    assert status_of(db, register(db, outbox, spec.slug, email="f@example.org")["id"]
                     )["sessions"] == ["day-1"]       # a follower: the open sessions


def test_stopping_following_is_told_to_capacity_and_sends_nothing(db, outbox):
    spec = make_event(db, outbox)
    answer = register(db, outbox, spec.slug)
    decide(db, outbox, answer["id"], "confirmed", 1)
    for _ in range(2):
        with transaction(db) as session:
            registrations.unfollow(session, outbox, LINKS, answer["id"])
    assert status_of(db, answer["id"])["follows"] is False
    assert len(outbox.of_type(RegistrationUnfollowed)) == 1
    [quiet] = [c for c in outbox.of_type(RegistrationStatusChanged) if c.cause == "unfollowed"]
    assert quiet.attendee.follows is False and quiet.status == "confirmed"


def test_every_status_message_carries_the_seats_check_in_code(db, outbox):
    spec = make_event(db, outbox)
    answer = register(db, outbox, spec.slug)
    decide(db, outbox, answer["id"], "confirmed", 1)
    code = status_of(db, answer["id"])["check_in_code"]
    [change] = outbox.of_type(RegistrationStatusChanged)
    assert change.attendee.check_in_code == code and RegistrationStatusChanged.VERSION == 3


def test_migration_0005_gives_registrations_stored_before_it_a_code_each(tmp_path):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from shared.check_in import read
    from shared.db import make_engine
    from tests.support.paths import ROOT

    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    config = Config()
    config.set_main_option("script_location", str(ROOT / "services" / "registration" / "migrations"))

    def migrate(to):
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, to)
    try:
        migrate("0004")
        with engine.begin() as connection:
            for n in range(3):
                connection.execute(text(
                    "INSERT INTO registrations (id, event_slug, name, email, email_key, language,"
                    " timezone, sessions, answers, status, status_seq, decision_seq, created_at,"
                    " updated_at) VALUES (:id, 'old', 'A', 'a@x.org', :key, 'en', 'UTC', '[]',"
                    " '{}', 'confirmed', 1, 1, '2026-01-01 10:00:00', '2026-01-01 10:00:00')"),
                    {"id": f"r{n}", "key": f"a{n}@x.org"})
        migrate("head")
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT check_in_code, checked_in_at FROM registrations")).all()
    finally:
        engine.dispose()
    codes = [row.check_in_code for row in rows]
    assert len(set(codes)) == 3 and all(read(code) == code for code in codes)
    assert all(row.checked_in_at is None for row in rows)
