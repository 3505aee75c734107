"""The sender loop against a real SMTP server (aiosmtpd, in-process): due
messages go out once each, with their cause's Message-ID, and are recorded;
a server away or a refusal is recorded as the retry or the failure it is."""
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from services.notification import deliveries, sending
from services.notification.models import deliveries as table
from shared.config import Settings
from shared.db import transaction
from tests.support.mail import SmtpServer
from tests.support.ports import free_port


@pytest.fixture
def db(service_db):
    return service_db("notification")


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


def worker_for(db, monkeypatch, port, connections=2):
    """A DeliveryWorker set up as its container would, on this database."""
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    monkeypatch.setenv("SMTP_FROM", "Events <events@example.org>")
    monkeypatch.setenv("SMTP_CONNECTIONS", str(connections))
    monkeypatch.setenv("SEND_LEASE_SECONDS", "60")
    worker = sending.DeliveryWorker()
    worker.container = SimpleNamespace(config={"SETTINGS": Settings.from_env("notification")},
                                       service_name="notification")
    worker.setup()
    worker.session_factory = lambda: db
    return worker


def queue(db, number, recipient=None, content=None):
    with transaction(db) as session:
        deliveries.enqueue(session, f"status:r{number}:1", "seat_confirmed",
                           recipient or f"a{number}@example.org", "en",
                           content or {"subject": f"Seat {number}", "text": "t", "html": "<p>h</p>",
                                       "recipient_name": f"Attendee {number}"},
                           "conf", f"r{number}")


def log(db):
    with transaction(db) as session:
        return {row.cause: row for row in session.execute(select(table))}


def metric(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0


def test_due_messages_go_out_once_each_with_their_causes_id_and_are_recorded(db, smtp, monkeypatch):
    worker = worker_for(db, monkeypatch, smtp.port)
    assert worker.connections == 2 and worker.mailers.qsize() == 2
    monkeypatch.setattr(deliveries, "BATCH", 4)     # full batches: the loop claims again
    for number in range(10):
        queue(db, number)
    sent_before = metric("evreg_messages_sent_total", kind="seat_confirmed", channel="email")
    worker.tick()
    by_recipient = smtp.mailbox.by_recipient()
    assert sorted(by_recipient) == sorted(f"a{n}@example.org" for n in range(10))
    for number in range(10):
        [message] = by_recipient[f"a{number}@example.org"]
        assert message["Message-ID"] == f"<status.r{number}.1@example.org>"
        assert message["Subject"] == f"Seat {number}"
        assert message["From"] == "Events <events@example.org>"
        assert str(message["To"]) == f"Attendee {number} <a{number}@example.org>"
    assert {(row.status, row.attempts, row.lease) for row in log(db).values()} == {("sent", 1, None)}
    assert metric("evreg_messages_sent_total", kind="seat_confirmed", channel="email") == sent_before + 10
    worker.tick()                                   # nothing due: nothing sent again
    assert len(smtp.mailbox.messages) == 10
    worker.stop()


def test_a_server_away_is_a_retry_later_and_the_message_is_kept(db, monkeypatch):
    worker = worker_for(db, monkeypatch, free_port(), connections=1)
    queue(db, 1)
    failed_before = metric("evreg_messages_failed_total", kind="seat_confirmed", channel="email", final="no")
    worker.tick()
    [row] = log(db).values()
    assert (row.status, row.attempts, row.lease) == ("queued", 1, None)
    assert row.last_error.startswith("ConnectionRefusedError")
    assert metric("evreg_messages_failed_total", kind="seat_confirmed", channel="email",
                  final="no") == failed_before + 1


def test_the_server_back_the_retry_goes_out(db, smtp, monkeypatch):
    worker = worker_for(db, monkeypatch, free_port(), connections=1)
    queue(db, 1)
    worker.tick()
    worker = worker_for(db, monkeypatch, smtp.port, connections=1)
    with transaction(db) as session:
        session.execute(update(table).values(next_attempt_at=deliveries.utcnow()))
    worker.tick()
    [row] = log(db).values()
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    assert len(smtp.mailbox.to("a1@example.org")) == 1


class Refusing:
    """An SMTP handler that refuses one recipient for good (550)."""

    def __init__(self, mailbox):
        self.mailbox = mailbox

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        return await self.mailbox.handle_DATA(server, session, envelope)


def test_a_refused_recipient_fails_for_good_and_the_others_still_go(db, monkeypatch):
    from aiosmtpd.controller import Controller
    server = SmtpServer()
    controller = Controller(Refusing(server.mailbox), hostname="127.0.0.1", port=server.port)
    controller.start()
    try:
        worker = worker_for(db, monkeypatch, server.port, connections=1)
        queue(db, 1, recipient="nobody@example.org")
        queue(db, 2)
        final_before = metric("evreg_messages_failed_total", kind="seat_confirmed", channel="email",
                              final="yes")
        worker.tick()
    finally:
        controller.stop()
    rows = log(db)
    assert (rows["status:r1:1"].status, rows["status:r1:1"].attempts) == ("failed", 1)
    assert "no such user" in rows["status:r1:1"].last_error
    assert rows["status:r2:1"].status == "sent"
    assert [str(m["To"]) for m in server.mailbox.messages] == ["Attendee 2 <a2@example.org>"]
    assert metric("evreg_messages_failed_total", kind="seat_confirmed", channel="email",
                  final="yes") == final_before + 1


def test_a_message_that_cannot_be_built_fails_for_good_without_touching_the_server(db, smtp, monkeypatch):
    worker = worker_for(db, monkeypatch, smtp.port, connections=1)
    queue(db, 1, content={"subject": "line\nbreak", "text": "t", "html": "h"})
    worker.tick()
    [row] = log(db).values()
    assert row.status == "failed" and row.last_error.startswith("the message cannot be built: ValueError")
    assert smtp.mailbox.messages == []


def test_sends_are_recorded_in_groups_renewing_the_lease_of_the_rest(db, smtp, monkeypatch):
    """Each record renews the lease of the rows still to send: a chunk slower
    than the lease keeps its rows, and another sender cannot take them."""
    worker = worker_for(db, monkeypatch, smtp.port, connections=1)
    monkeypatch.setattr(sending, "GROUP", 2)
    monkeypatch.setattr(sending, "RECORD_EVERY", 3600)
    for number in range(5):
        queue(db, number)
    with transaction(db) as session:
        claimed = deliveries.claim_due(session)
    records = []
    real_record = worker._record

    def record(sessions, sent, following):
        with transaction(db) as session:     # what another sender would see
            records.append(([r.cause for r in sent], len(deliveries.claim_due(session))))
        return real_record(sessions, sent, following)
    worker._record = record
    worker._send_chunk(db, claimed)
    assert records == [(["status:r0:1", "status:r1:1"], 0), (["status:r2:1", "status:r3:1"], 0),
                       (["status:r4:1"], 0)]
    assert {row.status for row in log(db).values()} == {"sent"}


def test_a_row_another_sender_took_over_is_not_sent_by_the_late_one(db, smtp, monkeypatch):
    worker = worker_for(db, monkeypatch, smtp.port, connections=1)
    monkeypatch.setattr(sending, "GROUP", 1)
    for number in range(3):
        queue(db, number)
    with transaction(db) as session:
        claimed = deliveries.claim_due(session)
    with transaction(db) as session:        # r2's lease ran out and another sender took it
        session.execute(update(table).where(table.c.cause == "status:r2:1").values(lease="another"))
    worker._send_chunk(db, claimed)
    assert sorted(smtp.mailbox.by_recipient()) == ["a0@example.org", "a1@example.org"]
    assert log(db)["status:r2:1"].lease == "another"
