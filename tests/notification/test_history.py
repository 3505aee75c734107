"""What organisers see of the messages: a registration's messages newest
first, a resend of the last one that went (a message of its own, refused
when it cannot reach anyone), an event's messages counted, and an
announcement previewed before it is sent. A real migrated SQLite database."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, update

from services.notification import deliveries as log
from services.notification import erasure, history, messages, recipients
from services.notification.models import deliveries
from shared.contracts import EventPublished, envelope
from shared.db import transaction
from shared.errors import Conflict, Invalid, NotFound
from tests.notification import samples
from tests.notification import test_policy as p
from tests.notification import test_service as s
from tests.notification.test_policy import announce, change, event, publish, seat, tell
from tests.notification.test_service import call, container, sender  # noqa: F401 (fixtures)

ROW = {"id", "kind", "channel", "language", "subject", "status", "attempts", "created_at",
       "sent_at", "last_error"}


@pytest.fixture(autouse=True)
def fresh_slug():
    """A slug of its own for each test's event (see test_policy.fresh_slug)."""
    p.SLUG = f"conf-{uuid.uuid4().hex[:8]}"


def sent_all(db):
    with transaction(db) as session:
        rows = log.claim_due(session)
        log.mark_sent_many(session, rows)


def messages_of(db, registration="r1"):
    with transaction(db) as session:
        return history.of_registration(session, registration)


def resend(db, registration="r1"):
    with transaction(db) as session:
        return history.resend_last(session, registration)


def counts(db):
    with transaction(db) as session:
        return history.counts_of_event(session, p.SLUG)


def test_a_registrations_messages_come_newest_first_with_what_organisers_need(db):
    publish(db, event())
    seat(db, "r1", "waitlisted")
    sent_all(db)
    tell(db, change("confirmed", seq=2))
    first, second = messages_of(db)[::-1]
    assert set(first) == ROW
    assert (first["kind"], first["status"], first["attempts"]) == ("waitlisted", "sent", 1)
    assert first["sent_at"] is not None and first["created_at"] and first["channel"] == "email"
    assert (second["kind"], second["status"], second["sent_at"]) == ("seat_confirmed", "queued", None)
    assert second["subject"].startswith("Your seat") and second["language"] == "en"
    assert second["id"] > first["id"]
    assert messages_of(db, "nobody") == []


def test_an_erased_registration_keeps_its_messages_without_subjects(db):
    publish(db, event())
    seat(db, "r1")
    with transaction(db) as session:
        erasure.erase(session, "r1", p.SLUG)
    [message] = messages_of(db)
    assert message["subject"] is None and message["status"] == "withdrawn"


def test_a_resend_is_a_new_message_with_the_same_words_and_a_cause_of_its_own(db):
    publish(db, event())
    seat(db, "r1")
    sent_all(db)
    again = resend(db)
    assert set(again) == ROW and again["status"] == "queued" and again["attempts"] == 0
    with pytest.raises(Conflict, match="still on its way"):
        resend(db)                        # a second click while the copy waits sends nothing
    with transaction(db) as session:
        original, copy = session.execute(select(deliveries).order_by(deliveries.c.id)).all()
    assert copy.id == again["id"] and copy.cause == f"resend:{original.id}"
    assert (copy.kind, copy.recipient, copy.language, copy.registration_id) == (
        original.kind, original.recipient, original.language, original.registration_id)
    assert {**copy.content, "correlation_id": None} == {**original.content, "correlation_id": None}
    sent_all(db)
    twice = resend(db)                    # once the copy went, it may go again
    assert [m["id"] for m in messages_of(db)] == [twice["id"], copy.id, original.id]


def test_two_organisers_resending_at_once_queue_one_copy(db):
    """Both read the same last message, so both name the same cause: the
    delivery log queues one message per cause."""
    publish(db, event())
    seat(db, "r1")
    sent_all(db)
    copy = resend(db)
    with transaction(db) as session:
        original = session.execute(select(deliveries).order_by(deliveries.c.id)).first()
        assert not log.enqueue(session, f"resend:{original.id}", original.kind, original.recipient,
                               original.language, original.content, original.event_slug, "r1")
        copies = session.execute(select(deliveries.c.id).where(
            deliveries.c.cause.like("resend:%"))).scalars().all()
    assert copies == [copy["id"]]


def test_only_the_last_message_is_sent_again_never_an_older_one(db):
    publish(db, event())
    seat(db, "r1", "waitlisted")
    with transaction(db) as session:
        session.execute(update(deliveries).values(status="failed", last_error="451 later"))
    tell(db, change("confirmed", seq=2))                        # queued, not yet sent
    with pytest.raises(Conflict, match="still on its way"):
        resend(db)
    sent_all(db)
    assert resend(db)["kind"] == "seat_confirmed"


def test_nothing_to_resend_is_a_conflict(db):
    publish(db, event())
    with pytest.raises(Conflict, match="no message"):
        resend(db, "nobody")
    seat(db, "r1")
    with transaction(db) as session:
        session.execute(update(deliveries).values(status="withdrawn"))
    with pytest.raises(Conflict, match="withdrawn"):
        resend(db)


def test_no_resend_to_an_erased_attendee_or_an_address_refused_for_good(db):
    publish(db, event())
    for registration in ("r1", "r2"):
        seat(db, registration)
    sent_all(db)
    with transaction(db) as session:
        recipients.refused(session, "R2@example.org", "550 no such user")
        erasure.erase(session, "r1", p.SLUG)
    with pytest.raises(Conflict, match="erased"):
        resend(db, "r1")
    with pytest.raises(Conflict, match="undeliverable: 550 no such user"):
        resend(db, "r2")


def test_no_resend_of_bulk_mail_to_an_attendee_who_unsubscribed(db):
    publish(db, event())
    seat(db, "r1")
    announce(db, "a" * 32)
    sent_all(db)
    with transaction(db) as session:
        recipients.unsubscribe(session, "r1")
    with pytest.raises(Conflict, match="unsubscribed"):
        resend(db)


def test_an_events_messages_are_counted_by_state_with_who_mail_does_not_reach(db):
    publish(db, event())
    for registration in ("r1", "r2", "r3", "r4"):
        seat(db, registration)
    with transaction(db) as session:
        [first, *_] = log.claim_due(session, limit=1)
        log.mark_sent(session, first)                       # r1's: sent
        recipients.refused(session, "r2@example.org", "550 gone")   # r2's: failed
        log.claim_due(session, limit=1)                     # r3's: sending
    announce(db, "a" * 32)
    with transaction(db) as session:
        recipients.unsubscribe(session, "r4")               # r4's announcement: withdrawn
    # r2's announcement failed from the start; r1's and r3's wait
    assert counts(db) == {"queued": 4, "sent": 1, "failed": 2, "withdrawn": 1,
                          "undeliverable": 1, "unsubscribed": 1}
    p.SLUG = "another"
    assert counts(db) == dict.fromkeys(("queued", "sent", "failed", "withdrawn", "undeliverable",
                                        "unsubscribed"), 0)


def test_an_announcement_preview_is_the_announcement_an_attendee_gets():
    body = "Doors open at <b>nine</b>.\n\nBring {{ 7*7 }} friends."
    preview = messages.preview_announcement(samples.EVENT, "fr", "Portes & accès", body,
                                            "https://events.example.org")
    sent = messages.compose_announcement(samples.EVENT, messages._sample_change(
        samples.EVENT, "announcement", "fr", "https://events.example.org"),
        {"fr": "Portes & accès"}, {"fr": body})
    assert preview == {"subject": sent.subject, "text": sent.text, "html": sent.html}
    assert "&lt;b&gt;nine&lt;/b&gt;" in preview["html"] and "<b>" not in preview["html"]
    assert "{{ 7*7 }}" in preview["text"] and "49" not in preview["text"]
    assert 'lang="fr"' in preview["html"] and "Portes & accès" in preview["subject"]
    assert "https://events.example.org/unsubscribe/" in preview["html"]
    small = samples.EVENT.model_copy(update={"languages": ["en", "fr"]})
    with pytest.raises(Invalid):
        messages.preview_announcement(small, "ar", "s", "b", "https://x")


# -- the RPCs --------------------------------------------------------------------------------

def test_the_rpcs_answer_for_a_registration_and_an_event(container, sender):  # noqa: F811
    slug = p.SLUG
    call(container, "on_event_published", envelope(EventPublished(event=s.event(slug), revision=1)))
    call(container, "on_status_changed", [envelope(s.change(slug))])
    [message] = call(container, "history", "r1")
    assert message["kind"] == "seat_confirmed" and message["status"] == "queued"
    with pytest.raises(Conflict):
        call(container, "resend_last", "r1")
    with pytest.raises(Conflict):
        call(container, "resend_last", "nobody")
    assert call(container, "message_counts", slug)["queued"] == 1
    sent_all(s.database(container))
    again = call(container, "resend_last", "r1")
    assert sender.calls[-1] == "queued"                  # sent at once, by the usual sender
    assert [m["id"] for m in call(container, "history", "r1")] == [again["id"], message["id"]]
    assert call(container, "message_counts", slug)["sent"] == 1
    preview = call(container, "preview_announcement", slug, "en", "News", "Doors at nine.")
    assert preview["subject"].endswith("News") and "Doors at nine." in preview["text"]
    with pytest.raises(NotFound):
        call(container, "preview_announcement", "unknown", "en", "News", "Doors at nine.")
    with pytest.raises(NotFound):
        call(container, "preview", "unknown", "hold", "en")
    with pytest.raises(Invalid):
        call(container, "preview_announcement", slug, "tr", "News", "Doors at nine.")
