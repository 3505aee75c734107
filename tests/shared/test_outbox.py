"""The outbox in-process: what a worker adds, and the relay's bookkeeping
around the publisher (a stand-in here; tests/shared/test_outbox_relay.py runs
the relay against a real RabbitMQ): rows published in order and marked, an
unroutable row kept and backed off, the backlog measured."""
import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import UniqueConstraint, delete, select, update

from shared import outbox as outbox_module
from shared.contracts import RegistrationCancelled, RegistrationConfirmed
from shared.db import transaction
from shared.messaging import ConfirmedPublisher
from shared.outbox import Outbox, OutboxRelay, outbox_table
from tests.support.databases import migrated_table

SERVICE = "outboxtest"


@pytest.fixture
def db(service_db):
    return service_db("capacity")


@pytest.fixture
def table():
    from services.capacity.models import outbox
    return outbox


def cancelled(number):
    return RegistrationCancelled(registration_id=f"r{number}", event_slug="conf")


def rows(db, table):
    with transaction(db) as session:
        return session.execute(select(table).order_by(table.c.id)).all()


def test_a_worker_adds_messages_with_its_correlation_id_or_their_causes(db, table):
    woken = []
    outbox = Outbox(table, lambda: "worker-correlation", lambda: woken.append(1))
    with transaction(db) as session:
        first = outbox.add(session, cancelled(1))
        assert outbox.add_many(session, []) == []
        ids = outbox.add_many(session, [(cancelled(2), "its-cause"), (RegistrationConfirmed(
            registration_id="r3", event_slug="conf"), None)])
    assert woken == [1, 1]                        # once per INSERT, none for nothing
    stored = rows(db, table)
    assert [row.message_id for row in stored] == [first, *ids]
    assert [row.event_type for row in stored] == ["registration.cancelled", "registration.cancelled",
                                                  "registration.confirmed"]
    bodies = [json.loads(row.body) for row in stored]
    assert [body["correlation_id"] for body in bodies] == ["worker-correlation", "its-cause",
                                                           "worker-correlation"]
    assert [body["message_id"] for body in bodies] == [first, *ids]
    assert bodies[1]["data"]["registration_id"] == "r2"
    for row in stored:
        assert row.published_at is None and row.attempts == 0 and row.next_attempt_at == row.created_at
    with transaction(db) as session:               # a plain string works as well as a callable
        Outbox(table, "fixed", lambda: None).add(session, cancelled(4))
    assert json.loads(rows(db, table)[-1].body)["correlation_id"] == "fixed"


class Publisher:
    """Stands in for ConfirmedPublisher: confirms every message but those
    named unroutable."""

    def __init__(self, unroutable=()):
        self.unroutable, self.batches = set(unroutable), []

    def publish(self, messages):
        self.batches.append(messages)
        return {m["message_id"] for m in messages} & self.unroutable

    def close(self):
        pass


def relay_for(db, table):
    relay = OutboxRelay(table)
    relay.container = SimpleNamespace(service_name=SERVICE, config={"AMQP_URI": "amqp://guest:guest@127.0.0.1:1//"})
    relay.setup()
    relay.session_factory = lambda: db
    return relay


def metric(name, **labels):
    return REGISTRY.get_sample_value(name, {"service": SERVICE, **labels}) or 0


def test_the_relay_publishes_due_rows_in_order_in_batches_and_marks_them(db, table, monkeypatch):
    monkeypatch.setattr(outbox_module, "BATCH", 2)
    outbox = Outbox(table, "c", lambda: None)
    with transaction(db) as session:
        ids = outbox.add_many(session, [(cancelled(n), f"cause-{n}") for n in range(5)])
    relay = relay_for(db, table)
    assert relay.exchange.name == f"{SERVICE}.events" and relay.exchange.type == "topic"
    assert relay.exchange.durable and relay.exchange.delivery_mode == 2
    # it publishes to the service's broker (the stand-in below takes its place)
    assert isinstance(relay.publisher, ConfirmedPublisher)
    assert relay.publisher.amqp_uri == "amqp://guest:guest@127.0.0.1:1//"
    relay.publisher = publisher = Publisher()
    published_before = metric("evreg_outbox_published_total", event_type="registration.cancelled")
    relay.tick()
    assert [[m["message_id"] for m in batch] for batch in publisher.batches] == [ids[0:2], ids[2:4], ids[4:]]
    first = publisher.batches[0][0]
    assert (first["exchange"], first["routing_key"]) == (relay.exchange, "registration.cancelled")
    assert first["headers"] == {"nameko.correlation_id": "cause-0"}
    assert json.loads(first["body"])["message_id"] == ids[0]
    assert {(row.published_at is not None, row.attempts) for row in rows(db, table)} == {(True, 1)}
    assert metric("evreg_outbox_published_total", event_type="registration.cancelled") == published_before + 5
    assert metric("evreg_outbox_backlog") == 0
    relay.tick()
    assert len(publisher.batches) == 3                  # nothing is published twice


def test_a_row_not_due_yet_waits_and_a_message_without_correlation_carries_its_own_id(db, table):
    outbox = Outbox(table, lambda: None, lambda: None)
    with transaction(db) as session:
        waiting, due = outbox.add_many(session, [(cancelled(1), None), (cancelled(2), None)])
        session.execute(update(table).where(table.c.message_id == waiting).values(
            next_attempt_at=outbox_module.utcnow() + timedelta(minutes=1)))
    relay = relay_for(db, table)
    relay.publisher = publisher = Publisher()
    assert relay.relay_once(db) == 1
    [[message]] = publisher.batches
    assert message["message_id"] == due and message["headers"] == {"nameko.correlation_id": due}


@pytest.fixture
def frozen(monkeypatch):
    """The outbox's clock, stopped: ``frozen.now``."""
    clock = SimpleNamespace(now=outbox_module.utcnow())
    monkeypatch.setattr(outbox_module, "utcnow", lambda: clock.now)
    return clock


def test_rows_go_out_in_the_order_they_were_written_whenever_each_fell_due(db, table, frozen):
    outbox = Outbox(table, "c", lambda: None)
    with transaction(db) as session:
        ids = outbox.add_many(session, [(cancelled(n), None) for n in range(3)])
        for message_id, seconds in zip(ids, (1, 3, 2), strict=True):     # the first fell due last
            session.execute(update(table).where(table.c.message_id == message_id).values(
                next_attempt_at=frozen.now - timedelta(seconds=seconds)))
    relay = relay_for(db, table)
    relay.publisher = publisher = Publisher()
    assert relay.relay_once(db) == 3
    assert [m["message_id"] for m in publisher.batches[0]] == ids


def test_a_row_written_this_instant_is_published_at_once(db, table, frozen):
    with transaction(db) as session:
        [message_id] = Outbox(table, "c", lambda: None).add_many(session, [(cancelled(1), None)])
    relay = relay_for(db, table)
    relay.publisher = publisher = Publisher()
    assert relay.relay_once(db) == 1                  # due at the instant it was written
    assert [m["message_id"] for m in publisher.batches[0]] == [message_id]


@pytest.mark.parametrize("jitter", [0.8, 1.2])
def test_an_unroutable_row_is_retried_after_its_backoff_within_a_fifth(db, table, frozen, monkeypatch, jitter):
    monkeypatch.setattr(outbox_module.random, "uniform", lambda low, high: low if jitter == 0.8 else high)
    with transaction(db) as session:
        lost = Outbox(table, "c", lambda: None).add(session, cancelled(1))
        session.execute(update(table).values(attempts=2))
    relay = relay_for(db, table)
    relay.publisher = Publisher(unroutable={lost})
    relay.relay_once(db)
    [kept] = rows(db, table)
    assert kept.next_attempt_at == frozen.now + timedelta(seconds=4 * jitter)      # 2 ** 2


def test_an_unroutable_row_is_named_in_the_log(db, table, caplog):
    with transaction(db) as session:
        lost = Outbox(table, "c", lambda: None).add(session, cancelled(1))
    relay = relay_for(db, table)
    relay.publisher = Publisher(unroutable={lost})
    with caplog.at_level("WARNING", logger=outbox_module.__name__):
        relay.relay_once(db)
    [record] = caplog.records
    assert "registration.cancelled" in record.getMessage() and lost in record.getMessage()


def test_an_unroutable_row_is_kept_and_backed_off_its_batch_mates_are_marked(db, table, monkeypatch):
    monkeypatch.setattr(outbox_module.random, "uniform", lambda low, high: high)
    outbox = Outbox(table, "c", lambda: None)
    with transaction(db) as session:
        routed, lost = outbox.add_many(session, [(cancelled(1), None), (cancelled(2), None)])
        session.execute(update(table).where(table.c.message_id == lost).values(attempts=3))
    relay = relay_for(db, table)
    relay.publisher = Publisher(unroutable={lost})
    unroutable_before = metric("evreg_outbox_unroutable_total", event_type="registration.cancelled")
    before = outbox_module.utcnow()
    relay.tick()
    after = outbox_module.utcnow()
    stored = {row.message_id: row for row in rows(db, table)}
    assert stored[routed].published_at is not None and stored[routed].attempts == 1
    kept = stored[lost]
    assert kept.published_at is None and kept.attempts == 4
    due = kept.next_attempt_at.replace(tzinfo=before.tzinfo)
    assert before + timedelta(seconds=8 * 1.2) <= due <= after + timedelta(seconds=8 * 1.2)   # 2 ** 3, +20 %
    assert metric("evreg_outbox_unroutable_total", event_type="registration.cancelled") == unroutable_before + 1
    assert metric("evreg_outbox_backlog") == 1 and metric("evreg_outbox_oldest_age_seconds") >= 0
    with transaction(db) as session:                # the backoff is capped at a minute
        session.execute(update(table).where(table.c.message_id == lost).values(
            attempts=20, next_attempt_at=outbox_module.utcnow()))
    before = outbox_module.utcnow()
    relay.relay_once(db)
    due = rows(db, table)[-1].next_attempt_at.replace(tzinfo=before.tzinfo)
    assert before + timedelta(seconds=60 * 1.2) <= due <= outbox_module.utcnow() + timedelta(seconds=60 * 1.2)


def test_the_backlog_is_measured_every_few_seconds_not_after_every_batch(db, table, monkeypatch):
    relay = relay_for(db, table)
    relay.publisher = Publisher()
    with transaction(db) as session:                    # an old row, left from before
        Outbox(table, "c", lambda: None).add(session, cancelled(0))
        session.execute(update(table).values(next_attempt_at=outbox_module.utcnow() + timedelta(hours=1)))
    clock = SimpleNamespace(now=0.0)                    # whatever the monotonic clock reads
    monkeypatch.setattr(outbox_module.time, "monotonic", lambda: clock.now)
    relay.tick()
    assert metric("evreg_outbox_backlog") == 1          # the first tick measures
    with transaction(db) as session:
        session.execute(delete(table))
    clock.now = 1000.0
    relay.tick()
    assert metric("evreg_outbox_backlog") == 0
    assert metric("evreg_outbox_oldest_age_seconds") == 0     # nothing waits
    with transaction(db) as session:
        Outbox(table, "c", lambda: None).add(session, cancelled(1))
        session.execute(update(table).values(next_attempt_at=outbox_module.utcnow() + timedelta(hours=1),
                                             created_at=outbox_module.utcnow() - timedelta(seconds=30)))
    clock.now += outbox_module.BACKLOG_EVERY - 0.1
    relay.tick()
    assert metric("evreg_outbox_backlog") == 0          # not measured yet
    clock.now += 0.1
    relay.tick()
    assert metric("evreg_outbox_backlog") == 1
    assert 30 <= metric("evreg_outbox_oldest_age_seconds") < 60


def test_a_row_written_this_instant_has_waited_no_time(db, table, frozen):
    with transaction(db) as session:
        Outbox(table, "c", lambda: None).add(session, cancelled(1))
        session.execute(update(table).values(next_attempt_at=frozen.now + timedelta(hours=1)))
    relay_for(db, table)._observe_backlog(db)
    assert metric("evreg_outbox_backlog") == 1 and metric("evreg_outbox_oldest_age_seconds") == 0


class Worker:
    """A worker's context as far as the outbox is concerned (hashable, like nameko's)."""

    def __init__(self, data, call_id):
        self.data, self.call_id = data, call_id


def test_a_worker_gets_an_outbox_that_wakes_the_relay_once_the_worker_is_done(db, table):
    relay = relay_for(db, table)
    worker = Worker({"correlation_id": "from-the-request"}, "call-1")
    anonymous = Worker({}, "call-2")
    with transaction(db) as session:
        relay.get_dependency(worker).add(session, cancelled(1))
        relay.get_dependency(anonymous).add(session, cancelled(2))
    assert [json.loads(row.body)["correlation_id"] for row in rows(db, table)] == ["from-the-request",
                                                                                   "call-2"]
    assert relay._wake_after == {worker, anonymous}
    relay.worker_result(worker)
    assert relay._wake.ready()


def unique_keys(table):
    return {tuple(column.name for column in constraint.columns)
            for constraint in table.constraints if isinstance(constraint, UniqueConstraint)}


@pytest.mark.parametrize("service", ["registration", "capacity"])
def test_the_outbox_table_is_the_one_each_service_migrates(tmp_path, service):
    table, reflected, dialect = migrated_table(tmp_path, service, outbox_table)
    assert table.name == "outbox"
    columns = reflected.columns
    assert [c.name for c in columns if c.primary_key] == ["id"]
    assert [(c.name, str(c.type), c.nullable) for c in columns] == [
        (c.name, c.type.compile(dialect=dialect), c.nullable) for c in table.columns]
    assert {index.name for index in table.indexes} == {index.name for index in reflected.indexes}
    # one row per message id: the same unique key as the migrated table's
    assert unique_keys(table) == unique_keys(reflected) == {("message_id",)}
