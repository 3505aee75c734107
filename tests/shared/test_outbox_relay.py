"""The outbox relay against a real RabbitMQ and a real PostgreSQL.

* A broker that withholds its confirms (a proxy stops the broker -> client
  direction): the batch is not marked published; a later relay publishes it.
* A row no queue takes (basic.return) stays unpublished and backs off; the
  routed rows of its batch are marked.
* Two relays on one outbox table publish every row exactly once.

Each mechanism has a companion test (``test_without_…``) that takes it away
(the confirm wait skipped, the returns ignored, SKIP LOCKED replaced by no
lock) and asserts that the bad outcome then does happen.
"""
from __future__ import annotations

import json
import threading
import uuid
from collections import Counter

import pika
import pytest
from kombu import Exchange
from sqlalchemy import MetaData, delete, select

from shared import outbox as outbox_module
from shared.clock import utcnow
from shared.db import transaction
from shared.messaging import ConfirmedPublisher, Unconfirmed
from shared.outbox import OutboxRelay, outbox_table
from tests.support.broker import Vhost
from tests.support.contention import InThread, postgres_service_db
from tests.support.proxy import TO_CLIENT, FreezableProxy

SERVICE = "relaytest"
EXCHANGE = f"{SERVICE}.events"
CONFIRM_TIMEOUT = 1.0

table = outbox_table(MetaData())


@pytest.fixture(scope="module")
def pg():
    with postgres_service_db("outbox", migrate=False) as (engine, db):
        table.metadata.create_all(engine)
        yield engine, db


@pytest.fixture(scope="module")
def broker():
    vhost = Vhost().create()
    connection = pika.BlockingConnection(pika.URLParameters(vhost.amqp_uri))
    channel = connection.channel()
    channel.exchange_declare(EXCHANGE, "topic", durable=True)
    yield vhost, channel
    connection.close()
    vhost.delete()


@pytest.fixture
def db(pg):
    _engine, sessions = pg
    with transaction(sessions) as session:
        session.execute(delete(table))
    return sessions


@pytest.fixture
def queue(broker):
    """A fresh queue bound to routing key ``<its name>.#``."""
    _vhost, channel = broker
    name = f"q{uuid.uuid4().hex[:8]}"
    channel.queue_declare(name, durable=True)
    channel.queue_bind(name, EXCHANGE, f"{name}.#")
    yield name
    channel.queue_delete(name)


@pytest.fixture
def proxy():
    proxy = FreezableProxy("127.0.0.1", 5672)
    yield proxy
    proxy.close()


def make_relay(amqp_uri: str) -> OutboxRelay:
    """What OutboxRelay.setup builds, without a nameko container."""
    relay = OutboxRelay(table)
    relay.service_name = SERVICE
    relay.exchange = Exchange(EXCHANGE, type="topic", durable=True, delivery_mode=2)
    relay.publisher = ConfirmedPublisher(amqp_uri, timeout=CONFIRM_TIMEOUT)
    return relay


def add_rows(db, routing_key: str, count: int) -> list[str]:
    now = utcnow()
    ids = [uuid.uuid4().hex for _ in range(count)]
    with transaction(db) as session:
        session.execute(table.insert(), [
            {"message_id": message_id, "event_type": routing_key, "created_at": now, "attempts": 0,
             "next_attempt_at": now, "body": json.dumps({"message_id": message_id, "correlation_id": "c"})}
            for message_id in ids])
    return ids


def rows(db) -> dict:
    with transaction(db) as session:
        return {row.message_id: row for row in session.execute(select(table))}


def drain(broker, queue_name: str) -> Counter:
    """The message ids waiting in the queue, and how often each."""
    _vhost, channel = broker
    seen: Counter = Counter()
    while True:
        method, properties, _body = channel.basic_get(queue_name, auto_ack=True)
        if method is None:
            return seen
        seen[properties.message_id] += 1


def warm_up(relay: OutboxRelay) -> None:
    """Open the publisher's connection and channel and declare its exchange
    (each waits for the broker's answer), so that a frozen proxy later holds
    back confirms only."""
    unroutable = relay.publisher.publish([{"exchange": relay.exchange, "routing_key": "warm.up",
                                           "body": "{}", "message_id": "warm-up", "headers": {}}])
    assert unroutable == {"warm-up"}


def spy_on_close(relay: OutboxRelay) -> threading.Event:
    """Set when the publisher gives up its connection (after a failed batch)."""
    closing = threading.Event()
    close = relay.publisher.close

    def spied(graceful=True):
        closing.set()
        close(graceful)
    relay.publisher.close = spied
    return closing


# -- (a) a broker that withholds its confirms --------------------------------------------
@pytest.mark.timeout(60)
def test_a_withheld_confirm_leaves_the_batch_unpublished_until_a_later_relay(db, broker, queue, proxy):
    vhost, _channel = broker
    relay = make_relay(proxy.amqp_uri(vhost.name))
    try:
        warm_up(relay)
        ids = add_rows(db, f"{queue}.thing", 5)
        closing = spy_on_close(relay)
        proxy.freeze(TO_CLIENT)                 # the broker's confirms are held back
        attempt = InThread(lambda: relay.relay_once(db), "relay")
        # the confirm wait gave up (CONFIRM_TIMEOUT): the publisher drops its connection
        assert closing.wait(CONFIRM_TIMEOUT + 10), "the relay never gave up waiting"
        proxy.thaw(TO_CLIENT)
        with pytest.raises(Unconfirmed):
            attempt.outcome(10)
        assert {(row.published_at, row.attempts) for row in rows(db).values()} == {(None, 0)}

        assert relay.relay_once(db) == 5        # a new connection, the same rows
        after = rows(db)
        assert all(after[i].published_at is not None and after[i].attempts == 1 for i in ids)
        assert relay.relay_once(db) == 0
    finally:
        relay.publisher.close()
    # The unconfirmed copies did reach the queue (only the confirms were held
    # back), so each message is there twice: at least once, and consumers
    # drop the twin by its message_id. Never zero times.
    assert drain(broker, queue) == {message_id: 2 for message_id in ids}


@pytest.mark.timeout(60)
def test_a_withheld_confirm_does_not_hold_the_relay_past_its_timeout(db, broker, queue, proxy):
    vhost, _channel = broker
    relay = make_relay(proxy.amqp_uri(vhost.name))
    try:
        warm_up(relay)
        add_rows(db, f"{queue}.thing", 2)
        proxy.freeze(TO_CLIENT)
        attempt = InThread(lambda: relay.relay_once(db), "relay")
        returned_in_time = attempt.join(CONFIRM_TIMEOUT + 2)
    finally:
        proxy.thaw(TO_CLIENT)
    attempt.join(10)
    relay.publisher.close()
    assert returned_in_time, "relay_once still running long after its confirm timeout"
    assert isinstance(attempt.error, Unconfirmed)


@pytest.mark.timeout(60)
def test_without_the_confirm_wait_a_batch_the_broker_never_got_is_marked_published(db, broker, queue, proxy,
                                                                                   monkeypatch):
    """Companion: with the confirm wait skipped, a batch swallowed on its way
    (both directions frozen, then the connection cut) is marked published
    although no queue ever received it: the messages are lost."""
    vhost, _channel = broker
    relay = make_relay(proxy.amqp_uri(vhost.name))
    try:
        warm_up(relay)
        monkeypatch.setattr(ConfirmedPublisher, "_wait_for_confirms", lambda self: None)
        ids = add_rows(db, f"{queue}.thing", 5)
        proxy.freeze()
        assert relay.relay_once(db) == 5
        proxy.cut()
        proxy.thaw()
    finally:
        relay.publisher.close()
    assert all(row.published_at is not None for row in rows(db).values())
    assert set(ids) == set(rows(db))
    assert drain(broker, queue) == Counter()                       # lost


# -- (b) a row no queue takes -------------------------------------------------------------
@pytest.mark.timeout(30)
def test_an_unroutable_row_backs_off_and_its_routed_batch_mates_are_marked(db, broker, queue):
    vhost, _channel = broker
    relay = make_relay(vhost.amqp_uri)
    try:
        routed = add_rows(db, f"{queue}.thing", 3)
        [stray] = add_rows(db, "nobody.listens", 1)
        routed += add_rows(db, f"{queue}.thing", 2)
        before = utcnow()
        assert relay.relay_once(db) == 6
        after = rows(db)
        assert all(after[i].published_at is not None and after[i].attempts == 1 for i in routed)
        assert after[stray].published_at is None and after[stray].attempts == 1
        assert after[stray].next_attempt_at > before
        assert relay.relay_once(db) == 0                # not retried at once
    finally:
        relay.publisher.close()
    assert drain(broker, queue) == {message_id: 1 for message_id in routed}


@pytest.mark.timeout(30)
def test_without_the_returns_an_unroutable_row_is_marked_published_and_lost(db, broker, queue, monkeypatch):
    """Companion: ignore basic.return and the row no queue took is marked
    published like the others, though nothing holds it."""
    vhost, _channel = broker
    monkeypatch.setattr(ConfirmedPublisher, "_on_return", lambda self, *args: None)
    relay = make_relay(vhost.amqp_uri)
    try:
        routed = add_rows(db, f"{queue}.thing", 2)
        [stray] = add_rows(db, "nobody.listens", 1)
        assert relay.relay_once(db) == 3
    finally:
        relay.publisher.close()
    assert rows(db)[stray].published_at is not None                # lost
    assert drain(broker, queue) == {message_id: 1 for message_id in routed}


# -- (c) two relays on one outbox -------------------------------------------------------
def two_relays(db, broker, monkeypatch, count: int = 60, batch: int = 10):
    """Relay A claims a batch and stops while publishing it (its transaction
    open); relay B, meanwhile, relays everything it can; then A goes on and
    both drain the rest. Returns the message ids added, and A's first batch."""
    vhost, _channel = broker
    monkeypatch.setattr(outbox_module, "BATCH", batch)
    relay_a, relay_b = make_relay(vhost.amqp_uri), make_relay(vhost.amqp_uri)
    publish_a = relay_a.publisher.publish
    publishing, go_on = threading.Event(), threading.Event()
    first_batch: list[str] = []

    def held_publish(messages):
        if not publishing.is_set():
            first_batch.extend(message["message_id"] for message in messages)
            publishing.set()
            assert go_on.wait(20)
        return publish_a(messages)
    relay_a.publisher.publish = held_publish
    return relay_a, relay_b, publishing, go_on, first_batch


def relay_all(relay, db) -> int:
    total = 0
    while (claimed := relay.relay_once(db)) > 0:
        total += claimed
    return total


@pytest.mark.timeout(60)
def test_two_relays_on_one_outbox_publish_every_row_exactly_once(db, broker, queue, monkeypatch):
    relay_a, relay_b, publishing, go_on, first_batch = two_relays(db, broker, monkeypatch)
    ids = add_rows(db, f"{queue}.thing", 60)
    try:
        a = InThread(lambda: relay_all(relay_a, db), "relay-a")
        assert publishing.wait(10)
        relayed_by_b = relay_all(relay_b, db)            # never waits for A's locked rows
        held = rows(db)
        assert all(held[i].published_at is None for i in first_batch)
        go_on.set()
        relayed_by_a = a.outcome(20)
    finally:
        go_on.set()
        relay_a.publisher.close()
        relay_b.publisher.close()
    assert len(first_batch) == 10 and relayed_by_b == 50 and relayed_by_a == 10
    assert {(row.published_at is not None, row.attempts) for row in rows(db).values()} == {(True, 1)}
    assert drain(broker, queue) == {message_id: 1 for message_id in ids}


@pytest.mark.timeout(60)
def test_without_skip_locked_two_relays_publish_rows_twice(db, broker, queue, monkeypatch):
    """Companion: without the lock B relays A's batch too while A is still
    publishing it: those messages go out twice."""
    monkeypatch.setattr(outbox_module, "skip_locked", lambda query, session: query)
    relay_a, relay_b, publishing, go_on, first_batch = two_relays(db, broker, monkeypatch)
    ids = add_rows(db, f"{queue}.thing", 60)
    try:
        a = InThread(lambda: relay_all(relay_a, db), "relay-a")
        assert publishing.wait(10)
        assert relay_all(relay_b, db) == 60              # A's batch included
        go_on.set()
        a.outcome(20)
    finally:
        go_on.set()
        relay_a.publisher.close()
        relay_b.publisher.close()
    seen = drain(broker, queue)
    assert set(seen) == set(ids)
    assert {message_id for message_id, times in seen.items() if times == 2} == set(first_batch)
