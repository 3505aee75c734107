"""The outbox relay's publisher against a real RabbitMQ: one wait for a
batch's confirms, unroutable messages reported, a refused batch refused."""
import json

import pika
import pytest
from kombu import Exchange

from shared.messaging import ConfirmedPublisher, Unconfirmed
from tests.support.broker import Vhost

EXCHANGE = Exchange("test.events", type="topic", durable=True)


@pytest.fixture(scope="module")
def broker():
    vhost = Vhost().create()
    connection = pika.BlockingConnection(pika.URLParameters(vhost.amqp_uri))
    channel = connection.channel()
    channel.exchange_declare("test.events", "topic", durable=True)
    yield vhost, channel
    connection.close()
    vhost.delete()


def message(routing_key, number):
    return {"exchange": EXCHANGE, "routing_key": routing_key, "message_id": f"m{number}",
            "body": json.dumps({"number": number}), "headers": {"nameko.correlation_id": "c"}}


def test_a_batch_is_confirmed_and_the_unroutable_ones_are_named(broker):
    vhost, channel = broker
    channel.queue_declare("routed", durable=True)
    channel.queue_bind("routed", "test.events", "routed.key")
    publisher = ConfirmedPublisher(vhost.amqp_uri)
    try:
        batch = [message("routed.key", n) for n in range(50)] + [message("nobody.listens", 50)]
        assert publisher.publish(batch) == {"m50"}
        assert publisher.publish([message("routed.key", 51)]) == set()   # the connection is kept
    finally:
        publisher.close()
    bodies = []
    for _ in range(51):
        method, properties, body = channel.basic_get("routed", auto_ack=True)
        assert properties.delivery_mode == 2 and properties.content_type == "application/json"
        bodies.append(json.loads(body)["number"])
    assert bodies == list(range(50)) + [51]         # in order, each once


def test_a_batch_the_broker_refuses_is_not_confirmed(broker):
    vhost, channel = broker
    # A full queue that rejects publishes makes the broker nack them.
    channel.queue_declare("full", durable=True, arguments={"x-max-length": 1,
                                                           "x-overflow": "reject-publish"})
    channel.queue_bind("full", "test.events", "full.key")
    publisher = ConfirmedPublisher(vhost.amqp_uri, timeout=5)
    try:
        with pytest.raises(Unconfirmed):
            publisher.publish([message("full.key", n) for n in range(3)])
        channel.queue_purge("full")
        assert publisher.publish([message("full.key", 9)]) == set()    # a fresh connection
    finally:
        publisher.close()
