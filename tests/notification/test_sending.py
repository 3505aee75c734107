"""The sender loop against a real SMTP server (aiosmtpd, in-process): due
messages go out once each, with their cause's Message-ID, and are recorded;
a server away or a refusal is recorded as the retry or the failure it is.
Sends are recorded in groups under the configured lease, a row another sender
took over is left to it, a database hiccup is ridden out, and a chunk cut
short hands back what it never started."""
import logging
from datetime import timedelta
from types import SimpleNamespace

import eventlet
import pytest
from eventlet.event import Event
from prometheus_client import REGISTRY
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from services.notification import deliveries, sending
from services.notification.models import deliveries as table
from shared.config import Settings
from shared.db import transaction
from tests.support.mail import SmtpServer
from tests.support.ports import free_port


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


def worker_for(db, monkeypatch, port, connections=2, lease=60):
    """A DeliveryWorker set up as its container would, on this database."""
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    monkeypatch.setenv("SMTP_FROM", "Events <events@example.org>")
    monkeypatch.setenv("SMTP_CONNECTIONS", str(connections))
    monkeypatch.setenv("SEND_LEASE_SECONDS", str(lease))
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


def gone_away():
    return OperationalError("UPDATE", {}, Exception("the database went away"))


@pytest.fixture
def recorded(monkeypatch):
    """The causes of every group recorded as sent, in order."""
    groups: list[list[str]] = []
    real = deliveries.mark_sent_many

    def mark_sent_many(session, rows):
        groups.append([row.cause for row in rows])
        return real(session, rows)
    monkeypatch.setattr(deliveries, "mark_sent_many", mark_sent_many)
    return groups


@pytest.fixture
def pauses(monkeypatch):
    """The pauses between retries of a database write (not really slept)."""
    slept: list[float] = []
    monkeypatch.setattr(eventlet, "sleep", lambda seconds=0: slept.append(seconds))
    return slept


def flapping(monkeypatch, name, failures):
    """deliveries.<name> losing its database connection ``failures`` times first."""
    real, left = getattr(deliveries, name), [failures]

    def flaky(*args, **kwargs):
        if left[0]:
            left[0] -= 1
            raise gone_away()
        return real(*args, **kwargs)
    monkeypatch.setattr(deliveries, name, flaky)


def warnings_of(caplog):
    return [(r.levelname, r.getMessage()) for r in caplog.records
            if r.name == sending.__name__ and r.levelno >= logging.WARNING]


def test_due_messages_go_out_once_each_with_their_causes_id_and_are_recorded(
        db, smtp, monkeypatch, caplog):
    worker = worker_for(db, monkeypatch, smtp.port)
    assert worker.connections == 2 and worker.mailers.qsize() == 2
    # Batches of 4: a full batch makes the loop claim again, a short one ends it.
    monkeypatch.setattr(deliveries, "BATCH", 4)
    claims, real_claim = [], deliveries.claim_due

    def claim_due(session, lease=deliveries.LEASE, channels=None):
        claims.append(len(batch := real_claim(session, limit=4, lease=lease, channels=channels)))
        return batch
    monkeypatch.setattr(deliveries, "claim_due", claim_due)
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
    assert claims == [4, 4, 2]
    worker.tick()                                   # nothing due: nothing sent again
    assert len(smtp.mailbox.messages) == 10 and claims == [4, 4, 2, 0]
    assert warnings_of(caplog) == []
    # The connections are kept open between messages, and closed on stop.
    mailers = list(worker.mailers.queue)
    assert any(mailer._smtp is not None for mailer in mailers)
    worker.stop()
    assert len(mailers) == 2 and all(mailer._smtp is None for mailer in mailers)


def test_a_server_away_is_no_messages_fault_it_waits_unchanged_and_the_sender_pauses(
        db, monkeypatch, recorded, caplog):
    """Unreachable, no TLS, a refused login: the message is not to blame.
    It goes back to the log with no attempt counted (it is never dropped
    however long the server is away), the sender pauses before trying the
    server again, and the operator is told once, naming the server."""
    port = free_port()
    worker = worker_for(db, monkeypatch, port, connections=1)
    queue(db, 1)
    queue(db, 2)
    failed_before = metric("evreg_messages_failed_total", kind="seat_confirmed", channel="email", final="no")
    sent_before = metric("evreg_messages_sent_total", kind="seat_confirmed", channel="email")
    before = deliveries.utcnow()
    worker.tick()
    rows = log(db)
    for row in rows.values():
        assert (row.status, row.attempts, row.lease) == ("queued", 0, None)
        assert row.last_error.startswith(f"cannot reach smtp://127.0.0.1:{port} (none): ConnectionRefused")
        assert timedelta(seconds=0.5) < row.next_attempt_at - before < timedelta(seconds=2)
    assert worker.problem == rows["status:r1:1"].last_error
    assert metric("evreg_smtp_up") == 0
    assert metric("evreg_messages_failed_total", kind="seat_confirmed", channel="email",
                  final="no") == failed_before
    assert metric("evreg_messages_sent_total", kind="seat_confirmed", channel="email") == sent_before
    assert recorded == []                           # a failure is never recorded as a send
    assert warnings_of(caplog) == [("ERROR", f"cannot send email: {worker.problem}; messages wait in "
                                             "the delivery log and the server is tried again, at "
                                             "least every 60 s")]
    # Paused: a message queued now is not claimed, and nothing is logged again.
    queue(db, 3)
    worker.tick()
    assert log(db)["status:r3:1"].status == "queued" and log(db)["status:r3:1"].last_error is None
    assert len(warnings_of(caplog)) == 1


def test_the_pause_grows_to_a_minute_and_ends_with_the_first_message_that_goes(
        db, smtp, monkeypatch, caplog):
    worker = worker_for(db, monkeypatch, free_port(), connections=1)
    queue(db, 1)
    pauses = []
    for _ in range(8):
        worker._resume_at = 0                      # as if the pause were over
        with transaction(db) as session:
            session.execute(update(table).values(next_attempt_at=deliveries.utcnow()))
        worker.tick()
        pauses.append(round(log(db)["status:r1:1"].next_attempt_at.timestamp()
                            - deliveries.utcnow().timestamp()))
    assert pauses == [1, 2, 4, 8, 16, 32, 60, 60]
    assert len(warnings_of(caplog)) == 1           # one cause, said once
    worker = worker_for(db, monkeypatch, smtp.port, connections=1)
    worker.problem, worker._pauses = "the old cause", 7
    with transaction(db) as session:
        session.execute(update(table).values(next_attempt_at=deliveries.utcnow()))
    with caplog.at_level(logging.INFO, logger=sending.__name__):
        worker.tick()
    assert log(db)["status:r1:1"].status == "sent"
    assert (worker.problem, worker._pauses, metric("evreg_smtp_up")) == (None, 0, 1)
    assert f"the SMTP server smtp://127.0.0.1:{smtp.port} (none) takes mail again" in caplog.messages


def test_webhooks_still_go_while_the_smtp_server_is_paused(db, monkeypatch):
    worker = worker_for(db, monkeypatch, free_port(), connections=1)
    queue(db, 1)
    worker.tick()
    assert worker.problem is not None
    with transaction(db) as session:
        deliveries.enqueue(session, "webhook:w1:1", "status_changed", "http://hook.example/x",
                           "en", {"body": {}}, "conf", "r1", channel="webhook")
    posted = []
    monkeypatch.setattr(sending.webhooks, "post", lambda sessions, row, allow: posted.append(row.cause))
    worker.tick()
    assert posted == ["webhook:w1:1"]
    assert log(db)["status:r1:1"].status == "queued"


def test_the_server_back_the_retry_goes_out(db, smtp, monkeypatch, caplog):
    worker = worker_for(db, monkeypatch, free_port(), connections=1)
    queue(db, 1)
    worker.tick()
    worker.tick()                                   # paused: not tried again yet
    assert len(warnings_of(caplog)) == 1
    worker = worker_for(db, monkeypatch, smtp.port, connections=1)
    with transaction(db) as session:
        session.execute(update(table).values(next_attempt_at=deliveries.utcnow()))
    worker.tick()
    [row] = log(db).values()
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    assert len(smtp.mailbox.to("a1@example.org")) == 1


class Refusing:
    """An SMTP handler that refuses one recipient (for good: 550; for now: 4xx)."""

    def __init__(self, mailbox, reply="550 5.1.1 no such user"):
        self.mailbox, self.reply = mailbox, reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("nobody@"):
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        return await self.mailbox.handle_DATA(server, session, envelope)


def test_a_refused_recipient_fails_for_good_and_the_others_still_go(db, monkeypatch, recorded, caplog):
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
    assert recorded == [["status:r2:1"]]            # the refused one is not recorded as sent
    assert warnings_of(caplog) == [("ERROR", "seat_confirmed to nobody@example.org for status:r1:1: "
                                             f"attempt 1 failed for good: {rows['status:r1:1'].last_error}")]


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
    with transaction(db) as session:        # r1's lease ran out and another sender took it
        session.execute(update(table).where(table.c.cause == "status:r1:1").values(lease="another"))
    worker._send_chunk(db, claimed)
    # The late sender skips r1 and goes on with the rows it still holds.
    assert sorted(smtp.mailbox.by_recipient()) == ["a0@example.org", "a2@example.org"]
    rows = log(db)
    assert (rows["status:r1:1"].status, rows["status:r1:1"].lease) == ("sending", "another")
    assert rows["status:r0:1"].status == rows["status:r2:1"].status == "sent"


def test_a_send_whose_lease_ran_out_before_its_record_is_left_to_the_new_holder_and_logged(
        db, smtp, monkeypatch, recorded, caplog):
    worker = worker_for(db, monkeypatch, smtp.port, connections=1)
    monkeypatch.setattr(sending, "RECORD_EVERY", 3600)
    for number in range(2):
        queue(db, number)
    real_send = worker._send

    def send(sessions, mailer, row):
        went = real_send(sessions, mailer, row)
        if row.cause == "status:r0:1":      # sent, then taken over before its record
            with transaction(db) as session:
                session.execute(update(table).where(table.c.cause == row.cause).values(lease="another"))
        return went
    worker._send = send
    worker.tick()
    assert recorded == [["status:r0:1", "status:r1:1"]]
    rows = log(db)
    assert (rows["status:r0:1"].status, rows["status:r0:1"].lease) == ("sending", "another")
    assert rows["status:r1:1"].status == "sent"
    assert warnings_of(caplog) == [("WARNING", "1 messages were sent after their lease ran out; the "
                                               "sender that took them over sends them again")]


def test_a_group_is_recorded_once_a_send_has_waited_record_every(db, smtp, monkeypatch, recorded):
    """Under light traffic a send is not left unrecorded for longer than
    RECORD_EVERY (a sender killed meanwhile would send it again)."""
    worker = worker_for(db, monkeypatch, smtp.port, connections=1)
    monkeypatch.setattr(sending, "RECORD_EVERY", 0.5)
    clock = [0.0]
    monkeypatch.setattr(sending, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    real_send = worker._send

    def send(sessions, mailer, row):        # each send takes a quarter of a second
        clock[0] += 0.25
        return real_send(sessions, mailer, row)
    worker._send = send
    for number in range(5):
        queue(db, number)
    worker.tick()
    assert recorded == [["status:r0:1", "status:r1:1"], ["status:r2:1", "status:r3:1"], ["status:r4:1"]]


def test_the_lease_is_the_configured_one_when_claimed_and_when_renewed(db, smtp, monkeypatch):
    worker = worker_for(db, monkeypatch, smtp.port, connections=1, lease=600)
    monkeypatch.setattr(sending, "GROUP", 1)
    for number in range(3):
        queue(db, number)
    deadlines = []
    real_send = worker._send

    def send(sessions, mailer, row):
        waiting = [r for r in log(db).values() if r.status == "sending"]
        deadlines.append((len(waiting), min(r.next_attempt_at for r in waiting) - deliveries.utcnow()))
        return real_send(sessions, mailer, row)
    worker._send = send
    worker.tick()
    assert [count for count, _ in deadlines] == [3, 2, 1]
    assert all(timedelta(seconds=590) < left <= timedelta(seconds=600) for _, left in deadlines)


def test_a_batch_is_shared_over_the_connections_a_group_each_at_least(db, monkeypatch):
    worker = worker_for(db, monkeypatch, free_port(), connections=3)
    chunks = []
    worker._send_chunk = lambda sessions, rows: chunks.append([row.cause for row in rows])

    def queue_many(numbers):
        with transaction(db) as session:
            deliveries.enqueue_many(session, [deliveries.queued_row(
                f"status:r{n:03}:1", "seat_confirmed", f"a{n}@example.org", "en",
                {"subject": "s", "text": "t", "html": "h"}, "conf", f"r{n}") for n in numbers])
    queue_many(range(10))
    worker.tick()
    assert [len(chunk) for chunk in chunks] == [10]         # one connection, one record
    chunks.clear()
    queue_many(range(10, 110))
    worker.tick()
    assert [len(chunk) for chunk in chunks] == [34, 34, 32]
    assert sum(chunks, []) == [f"status:r{n:03}:1" for n in range(10, 110)]


def test_a_database_hiccup_is_ridden_out_when_claiming_and_when_recording(
        db, smtp, monkeypatch, pauses):
    worker = worker_for(db, monkeypatch, smtp.port, connections=1)
    queue(db, 1)
    flapping(monkeypatch, "claim_due", 1)
    flapping(monkeypatch, "mark_sent_many", 5)
    worker.tick()
    assert pauses == [0.2, 0.2, 0.4, 0.8, 1.6, 2.0]        # the claim's, then the record's
    assert log(db)["status:r1:1"].status == "sent"
    assert len(smtp.mailbox.messages) == 1


def test_a_failure_is_recorded_through_a_database_hiccup(db, monkeypatch, pauses):
    from aiosmtpd.controller import Controller
    server = SmtpServer()
    controller = Controller(Refusing(server.mailbox, "451 4.3.0 try later"), hostname="127.0.0.1",
                            port=server.port)
    controller.start()
    try:
        worker = worker_for(db, monkeypatch, server.port, connections=1)
        queue(db, 1, recipient="nobody@example.org")
        flapping(monkeypatch, "mark_failed", 5)
        worker.tick()
    finally:
        controller.stop()
    row = log(db)["status:r1:1"]
    assert (row.status, row.attempts, row.lease) == ("queued", 1, None)
    assert pauses == [0.2, 0.4, 0.8, 1.6, 2.0]


def cut_short_at_r1(db, monkeypatch, release_failures):
    """Three rows in one chunk, the sender going down at the second, and the
    hand-back losing its database connection ``release_failures`` times."""
    worker = worker_for(db, monkeypatch, free_port(), connections=1)
    for number in range(3):
        queue(db, number)

    def send(sessions, mailer, row):
        if row.cause == "status:r1:1":
            raise RuntimeError("the sender is going down")
        return True
    worker._send = send
    flapping(monkeypatch, "release", release_failures)
    with pytest.raises(RuntimeError):
        worker.tick()


def test_a_chunk_cut_short_hands_back_the_rest_through_a_database_hiccup(db, monkeypatch, pauses):
    cut_short_at_r1(db, monkeypatch, 5)
    rows = log(db)
    assert (rows["status:r2:1"].status, rows["status:r2:1"].lease) == ("queued", None)
    assert rows["status:r1:1"].status == "sending"          # started: left to its lease
    assert pauses[-5:] == [0.2, 0.4, 0.8, 1.6, 2.0]


def test_rows_that_cannot_be_handed_back_are_left_to_their_lease_and_logged(
        db, monkeypatch, pauses, caplog):
    cut_short_at_r1(db, monkeypatch, 100)
    assert {row.status for row in log(db).values()} == {"sending"}
    [(level, message)] = warnings_of(caplog)
    assert level == "WARNING" and message.startswith(
        "could not hand back 1 claimed messages; they are sent when their lease runs out: "
        "(builtins.Exception) the database went away")


def test_a_failed_send_drops_its_connection_and_the_next_goes_over_a_fresh_one(db, monkeypatch):
    server = SmtpServer()
    peers = Busy(server.mailbox)
    from aiosmtpd.controller import Controller
    controller = Controller(peers, hostname="127.0.0.1", port=server.port)
    controller.start()
    try:
        worker = worker_for(db, monkeypatch, server.port, connections=1)
        queue(db, 1, recipient="busy@example.org")
        queue(db, 2)
        queue(db, 3)
        worker.tick()
    finally:
        controller.stop()
    rows = log(db)
    assert (rows["status:r1:1"].status, rows["status:r1:1"].attempts) == ("queued", 1)
    assert rows["status:r1:1"].last_error.startswith("SMTPRecipientsRefused")
    assert rows["status:r2:1"].status == rows["status:r3:1"].status == "sent"
    refused_on, [second, third] = peers.refused_on, peers.delivered_on
    assert second != refused_on and second == third      # a fresh connection, kept


class Busy:
    """An SMTP handler that defers one recipient (451, try again later) and
    remembers the connection each recipient came over."""

    def __init__(self, mailbox):
        self.mailbox = mailbox
        self.refused_on = None
        self.delivered_on: list = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("busy@"):
            self.refused_on = session.peer
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.delivered_on.append(session.peer)
        return await self.mailbox.handle_DATA(server, session, envelope)


def test_a_sent_message_is_logged_with_its_tracing_fields_and_addressed_without_a_name(
        db, smtp, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger=sending.__name__)
    worker = worker_for(db, monkeypatch, smtp.port, connections=1)
    queue(db, 1, content={"subject": "Seat", "text": "t", "html": "h", "correlation_id": "corr-1"})
    worker.tick()
    [message] = smtp.mailbox.messages
    assert str(message["To"]) == "a1@example.org"           # no name stored: none invented
    [record] = [r for r in caplog.records if r.name == sending.__name__]
    assert (record.levelname, record.getMessage()) == ("INFO", "sent seat_confirmed by email")
    assert (record.correlation_id, record.kind, record.registration_id, record.event_slug) == (
        "corr-1", "seat_confirmed", "r1", "conf")


def test_a_worker_that_queued_messages_wakes_the_sender_when_it_is_done(db, monkeypatch):
    worker = worker_for(db, monkeypatch, free_port(), connections=1)
    mine, other = object(), object()
    worker.get_dependency(mine).queued()
    worker.worker_result(other)
    assert not worker._wake.ready()                 # another worker's end is not this one's commit
    worker.worker_result(mine)
    assert worker._wake.ready()
    worker._wake = Event()
    worker.get_dependency(other).wake()
    assert worker._wake.ready()
