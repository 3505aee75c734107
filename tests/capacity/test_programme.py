"""A series' sessions against a real (SQLite) database: followers enrolled in
added sessions in arrival order, each session's own line, a session asked
for, cancelled sessions, and followers seated after a session was added."""
import json
from datetime import UTC, datetime

from sqlalchemy import select

from services.capacity import programme, seats
from services.capacity.models import seat_pools, session_waits
from shared.contracts import (
    RegistrationCancelled,
    RegistrationRequested,
    RegistrationUnfollowed,
    SeatDecided,
    SessionRequested,
)
from shared.db import transaction
from shared.schemas import EventSpec
from tests.support.documents import event_document

W1 = {"slug": "w1", "title": {"en": "One"}, "starts_at": "2027-05-10T14:00:00+03:00",
      "ends_at": "2027-05-10T15:00:00+03:00"}


def webinar(slug: str, capacity=None, cancelled=False) -> dict:
    return {**W1, "slug": slug, "capacity": capacity, "cancelled": cancelled}


def describe(db, outbox, revision, sessions, **fields):
    spec = EventSpec.model_validate_json(json.dumps(event_document(
        slug="series", sessions=sessions, **{"capacity": None, **fields})))
    with transaction(db) as session:
        seats.apply_event(session, outbox, spec, revision)


def ask(db, outbox, registration_id, sessions=("w1",), follows=True):
    with transaction(db) as session:
        seats.reserve(session, outbox, RegistrationRequested(
            registration_id=registration_id, event_slug="series", category=None,
            sessions=list(sessions), requested_at=datetime.now(UTC), follows=follows))


def news(outbox, session_slug=None) -> list[tuple]:
    return [(d.registration_id, d.session_change.session, d.session_change.outcome,
             d.session_change.position) for d in outbox.of_type(SeatDecided)
            if d.session_change and session_slug in (None, d.session_change.session)]


def last_word(outbox, registration_id) -> SeatDecided:
    return [d for d in outbox.of_type(SeatDecided) if d.registration_id == registration_id][-1]


def used(db, pool) -> int:
    with transaction(db) as session:
        return session.execute(select(seat_pools.c.used).where(
            seat_pools.c.event_slug == "series", seat_pools.c.pool == pool)).scalar_one()


def test_followers_take_an_added_session_in_arrival_order_then_wait_for_it(db, outbox):
    describe(db, outbox, 1, [webinar("w1")])
    for name in ("a", "b", "c", "d"):
        ask(db, outbox, name)
    ask(db, outbox, "chooser", follows=False)
    describe(db, outbox, 2, [webinar("w1"), webinar("w2", capacity=2)])
    assert news(outbox) == [("a", "w2", "seated", None), ("b", "w2", "seated", None),
                            ("c", "w2", "waitlisted", 1), ("d", "w2", "waitlisted", 2)]
    assert last_word(outbox, "a").sessions == ["w1", "w2"] and last_word(outbox, "a").decision_seq == 2
    assert last_word(outbox, "c").sessions == ["w1"] and last_word(outbox, "c").sessions_waiting == ["w2"]
    assert used(db, "session:w2") == 2

    # The same revision again, or a later one that keeps w2: nobody is told twice.
    before = len(news(outbox))
    describe(db, outbox, 2, [webinar("w1"), webinar("w2", capacity=2)])
    describe(db, outbox, 3, [webinar("w1"), webinar("w2", capacity=2)], title={"en": "Renamed"})
    assert len(news(outbox)) == before

    # a leaves: the first in w2's line takes the seat, and is told why.
    with transaction(db) as session:
        seats.release(session, outbox, RegistrationCancelled(registration_id="a", event_slug="series"))
    word = last_word(outbox, "c")
    assert word.session_change.outcome == "seated" and word.session_change.reason == "freed"
    assert word.sessions == ["w1", "w2"] and word.sessions_waiting == []
    assert last_word(outbox, "d").session_change.outcome == "waitlisted"
    assert used(db, "session:w2") == 2


def test_without_a_waiting_list_a_full_added_session_is_refused(db, outbox):
    describe(db, outbox, 1, [webinar("w1")], waitlist=False)
    ask(db, outbox, "a")
    ask(db, outbox, "b")
    describe(db, outbox, 2, [webinar("w1"), webinar("w2", capacity=1)], waitlist=False)
    assert news(outbox) == [("a", "w2", "seated", None), ("b", "w2", "refused", None)]


def test_a_follower_seated_after_the_session_was_added_takes_it_with_the_seat(db, outbox):
    describe(db, outbox, 1, [webinar("w1")])
    describe(db, outbox, 2, [webinar("w1"), webinar("w2")])
    ask(db, outbox, "late", sessions=("w1",))      # its request saw revision 1
    word = last_word(outbox, "late")
    assert word.outcome == "confirmed" and word.sessions == ["w1", "w2"]
    assert word.session_change is None              # one word: the seat and its sessions


def test_a_promoted_follower_takes_the_open_sessions_too(db, outbox):
    describe(db, outbox, 1, [webinar("w1")], capacity=1)
    ask(db, outbox, "a")
    ask(db, outbox, "b")                            # waits for the event
    describe(db, outbox, 2, [webinar("w1"), webinar("w2")], capacity=1)
    with transaction(db) as session:
        seats.release(session, outbox, RegistrationCancelled(registration_id="a", event_slug="series"))
    word = last_word(outbox, "b")
    assert word.promoted and word.sessions == ["w1", "w2"]


def test_an_attendee_who_chose_asks_for_an_added_session(db, outbox):
    describe(db, outbox, 1, [webinar("w1")])
    ask(db, outbox, "c", follows=False)
    describe(db, outbox, 2, [webinar("w1"), webinar("w2", capacity=0)])
    assert news(outbox) == []                       # not enrolled unasked
    with transaction(db) as session:
        programme.request_session(session, outbox, SessionRequested(
            registration_id="c", event_slug="series", session="w2"))
    word = last_word(outbox, "c")
    assert (word.session_change.outcome, word.session_change.reason, word.session_change.position) \
        == ("waitlisted", "asked", 1)
    with transaction(db) as session:                # asking again changes nothing
        programme.request_session(session, outbox, SessionRequested(
            registration_id="c", event_slug="series", session="w2"))
    assert len(news(outbox)) == 1


def test_a_cancelled_session_lets_everyone_go_and_seats_nobody(db, outbox):
    describe(db, outbox, 1, [webinar("w1"), webinar("w2", capacity=1)], capacity=2)
    ask(db, outbox, "holder", sessions=("w1", "w2"))
    ask(db, outbox, "only-w2", sessions=("w2",), follows=False)     # waits: w2 is full
    ask(db, outbox, "third", sessions=("w1",), follows=False)       # the event's last seat
    ask(db, outbox, "late", sessions=("w1",), follows=False)        # waits for the event
    describe(db, outbox, 2, [webinar("w1"), webinar("w2", capacity=1, cancelled=True)], capacity=2)
    assert sorted(news(outbox, "w2")) == [("holder", "w2", "cancelled", None),
                                          ("only-w2", "w2", "cancelled", None)]
    assert last_word(outbox, "holder").sessions == ["w1"]
    assert used(db, "session:w2") == 0
    with transaction(db) as session:                # nobody waits for it, nobody is put in it
        assert session.execute(select(session_waits)).all() == []
        seats.release(session, outbox, RegistrationCancelled(registration_id="holder",
                                                             event_slug="series"))
    # The event seat goes to "late", not to "only-w2", who waited for w2 alone.
    assert last_word(outbox, "late").promoted
    assert last_word(outbox, "only-w2").outcome == "waitlisted"
    with transaction(db) as session:
        assert seats.waitlist_position(session, "only-w2") is None


def test_a_follower_who_stopped_following_is_not_enrolled(db, outbox):
    describe(db, outbox, 1, [webinar("w1")])
    ask(db, outbox, "a")
    with transaction(db) as session:
        programme.unfollow(session, RegistrationUnfollowed(registration_id="a", event_slug="series"))
    describe(db, outbox, 2, [webinar("w1"), webinar("w2")])
    assert news(outbox) == []
