"""Webhooks through the real sender, against a real HTTP receiver on loopback:
``410 Gone`` stops a delivery for good (other failures are retried), and a
host whose DNS answer changes after it was checked (rebinding) is never
called at a private address."""
from __future__ import annotations

import dataclasses
import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest
from sqlalchemy import select, update

from services.notification import destinations, webhooks
from services.notification.deliveries import enqueue_many
from services.notification.models import deliveries as deliveries_table
from services.notification.sending import DeliveryWorker
from shared.clock import utcnow
from shared.config import Settings
from shared.contracts import Attendee, RegistrationStatusChanged
from shared.db import transaction

pytestmark = pytest.mark.timeout(60)

PUBLIC = "93.184.216.34"          # a global address: allowed, but never really connected to
HOST = "hooks.example.test"


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers the
    statuses it is told to, in order (the last one repeated)."""

    def __init__(self):
        self.answers = [200]
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "body": json.loads(body)})
                status = (receiver.answers.pop(0) if len(receiver.answers) > 1
                          else receiver.answers[0])
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/hook"


@pytest.fixture
def receiver():
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


class Resolver:
    """``getaddrinfo`` under the test's control for HOST (every other name and
    every literal address resolves as usual). ``answers`` are used in turn, the
    last one for every later lookup."""

    def __init__(self, real):
        self.real = real
        self.answers: list[list[str]] = []
        self.lookups = 0

    def __call__(self, host, port, *args, **kwargs):
        if host != HOST:
            return self.real(host, port, *args, **kwargs)
        self.lookups += 1
        addresses = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0)) if ":" in a
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]


@pytest.fixture
def resolver(monkeypatch):
    resolver = Resolver(socket.getaddrinfo)
    monkeypatch.setattr(destinations.socket, "getaddrinfo", resolver)
    return resolver


@pytest.fixture
def connections(monkeypatch):
    """Every address a connection is opened to. The public address stands
    for the internet: refused at once, so that no test leaves the machine."""
    opened: list[tuple] = []
    real = socket.create_connection

    def create_connection(address, *args, **kwargs):
        opened.append(tuple(address[:2]))
        if address[0] == PUBLIC:
            raise ConnectionRefusedError(f"{PUBLIC} stands for the internet")
        return real(address, *args, **kwargs)
    monkeypatch.setattr(destinations.socket, "create_connection", create_connection)
    return opened


def sender(db, allow_private: bool) -> DeliveryWorker:
    """The real delivery worker, set up from the settings as in the service,
    without a nameko container around it; ``tick()`` is one round of sending."""
    settings = dataclasses.replace(Settings.from_env(None), smtp_host="127.0.0.1", smtp_port=9,
                                   smtp_connections=1, webhook_allow_private=allow_private)
    worker = DeliveryWorker()
    worker.container = SimpleNamespace(config={"SETTINGS": settings})
    worker.setup()
    worker.session_factory = lambda: db          # type: ignore[method-assign]
    return worker


def add_hook(db, url: str, allow_private: bool) -> dict:
    webhooks.check_url(url, allow_private)       # what the API does before storing one
    with transaction(db) as session:
        return webhooks.add(session, "conf", url)


def change(registration_id="r1", seq=1) -> RegistrationStatusChanged:
    return RegistrationStatusChanged(
        registration_id=registration_id, event_slug="conf", status="confirmed",
        previous_status="pending", status_seq=seq, cause="seat_decided",
        attendee=Attendee(name="Amira", email="amira@example.org", language="en", timezone=None,
                          country=None, category=None, sessions=["day-1"]),
        links={})


def status_changed(db, registration_id="r1", seq=1):
    """A status change of the event, queued for its webhooks as the handler does."""
    with transaction(db) as session:
        assert enqueue_many(session, webhooks.HooksOf(session).deliveries_for(
            change(registration_id, seq))) == 1


def the_delivery(db):
    with transaction(db) as session:
        return session.execute(select(deliveries_table)).one()


def make_due(db):
    """Let any backoff run out: the row is due now if it is to be sent at all."""
    with transaction(db) as session:
        session.execute(update(deliveries_table).values(next_attempt_at=utcnow() - timedelta(hours=2)))


# -- 410 Gone ------------------------------------------------------------------------
def test_a_webhook_answered_410_gone_is_stopped(db, receiver):
    receiver.answers = [410]
    add_hook(db, receiver.url(), allow_private=True)
    status_changed(db, "r1")
    status_changed(db, "r2")                     # queued before the receiver said 410
    worker = sender(db, allow_private=True)
    worker.tick()
    assert len(receiver.requests) == 1
    with transaction(db) as session:
        assert webhooks.list_for(session, "conf") == []           # the hook is gone
        rows = session.execute(select(deliveries_table).order_by(deliveries_table.c.id)).all()
    assert (rows[0].status, rows[0].attempts, rows[0].last_error) == (
        "failed", 1, "410 Gone: the webhook was removed")
    # The other queued delivery fails without a call; however long one waits,
    # nothing is sent again, and a later status change queues nothing.
    make_due(db)
    worker.tick()
    worker.tick()
    assert len(receiver.requests) == 1
    with transaction(db) as session:
        assert [r.status for r in session.execute(select(deliveries_table))] == ["failed", "failed"]
        assert webhooks.HooksOf(session).deliveries_for(change("r3")) == []


def test_any_other_failure_is_retried_with_the_same_delivery_id(db, receiver):
    """The contrast that makes 410 special: a 500 backs off and is sent again."""
    receiver.answers = [500, 200]
    add_hook(db, receiver.url(), allow_private=True)
    status_changed(db)
    worker = sender(db, allow_private=True)
    worker.tick()
    row = the_delivery(db)
    assert (row.status, row.attempts) == ("queued", 1) and "500" in row.last_error
    assert row.next_attempt_at > utcnow()                 # backing off
    worker.tick()
    assert len(receiver.requests) == 1                    # not before its time
    make_due(db)
    worker.tick()
    assert [(r["path"], r["headers"]["X-Delivery-Id"]) for r in receiver.requests] == [
        ("/hook", "webhook:" + row.content["hook_id"] + ":r1:1")] * 2
    assert (the_delivery(db).status, the_delivery(db).attempts) == ("sent", 2)


# -- DNS rebinding ------------------------------------------------------------------
@pytest.mark.parametrize("at_send", [["127.0.0.1"], [PUBLIC, "127.0.0.1"], ["::ffff:127.0.0.1"]],
                         ids=["loopback", "public-and-loopback", "mapped-loopback"])
def test_a_host_public_when_registered_and_private_at_send_time_is_never_called(
        db, receiver, resolver, connections, at_send):
    resolver.answers = [[PUBLIC]]
    hook_url = receiver.url(HOST)
    add_hook(db, hook_url, allow_private=False)           # accepted: public then
    resolver.answers = [at_send]                          # rebound onto the receiver's address
    status_changed(db)
    sender(db, allow_private=False).tick()
    assert resolver.lookups == 2
    assert receiver.requests == [] and connections == []
    row = the_delivery(db)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "not a public address" in row.last_error and at_send[-1] in row.last_error


def test_the_connection_goes_to_the_address_checked_not_to_a_second_answer(
        db, receiver, resolver, connections):
    """The answer changes between the check and the connection, inside one
    send: the connection is made to the checked (public) address; looking the
    name up again would have reached the receiver on loopback."""
    resolver.answers = [[PUBLIC]]
    add_hook(db, receiver.url(HOST), allow_private=False)
    resolver.answers = [[PUBLIC], ["127.0.0.1"]]          # the send's check, then anything later
    status_changed(db)
    sender(db, allow_private=False).tick()
    assert receiver.requests == []
    assert connections == [(PUBLIC, receiver.port)]
    row = the_delivery(db)
    assert (row.status, row.attempts) == ("queued", 1)    # a refused connection is retried
    assert "ConnectionRefusedError" in row.last_error
