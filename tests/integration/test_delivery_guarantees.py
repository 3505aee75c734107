"""At-least-once delivery absorbed: a message delivered twice has one effect,
a message that cannot be processed is retried and then parked, never dropped,
and bad input is refused at the door with nothing stored."""
import json
import os
import subprocess
import sys
import time
import uuid

import pika
import pytest
import requests

from tests.support.paths import ROOT
from tests.support.stack import SEND_LEASE_SECONDS, Stack, running_stack
from tests.support.waiting import wait_until

RETRY_DELAYS = (0.2, 0.2)
# "Once" is judged after a quiet time longer than a send lease (a message sent
# again when its lease ran out) plus the longest handler retry delay.
QUIET = SEND_LEASE_SECONDS + max(RETRY_DELAYS) + 1


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request, tmp_path_factory):
    yield from running_stack(tmp_path_factory, "guarantees", request.param,
                             HANDLER_RETRY_DELAYS=",".join(map(str, RETRY_DELAYS)),
                             SEND_LEASE_SECONDS=str(SEND_LEASE_SECONDS))


def absorbed(stack, name) -> float:
    """Messages the inboxes of ``name``'s processes found already processed."""
    return sum(p.metric("evreg_duplicates_absorbed_total") for p in stack.processes
               if p.name == name and p.alive())


class Tap:
    """A queue of our own bound to a service's event exchange: it sees copies
    of what that service publishes, which we can then publish again."""

    def __init__(self, stack, exchange, routing_key):
        self.connection = pika.BlockingConnection(pika.URLParameters(stack.vhost.amqp_uri))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(exchange, "topic", durable=True)
        self.queue = f"tap-{uuid.uuid4().hex[:8]}"
        self.channel.queue_declare(self.queue, exclusive=True)
        self.channel.queue_bind(self.queue, exchange, routing_key)
        self.channel.confirm_delivery()

    def take(self, predicate, timeout=15):
        found = []

        def look():
            method, properties, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method and predicate(json.loads(body)):
                found.append((method, properties, body))
            return found
        return wait_until(look, timeout, interval=0.05, message="a tapped message")[0]

    def publish_again(self, tapped):
        method, properties, body = tapped
        self.channel.basic_publish(method.exchange, method.routing_key, body, properties,
                                   mandatory=True)

    def close(self):
        self.connection.close()


def test_a_twice_delivered_message_has_one_effect(stack):
    event = stack.create_event(capacity=1)
    status_tap = Tap(stack, "registration.events", "registration.status_changed")
    decision_tap = Tap(stack, "capacity.events", "seat.decided")
    try:
        first = stack.register_in_turn(event["slug"], email="dup-first@example.org")
        second = stack.register_in_turn(event["slug"], email="dup-second@example.org")
        assert stack.status(first, wait=10)["status"] == "confirmed"
        assert stack.wait_for_status(second, "waitlisted")
        confirmed = status_tap.take(lambda b: b["data"]["registration_id"] == first["id"]
                                    and b["data"]["status"] == "confirmed")
        decision = decision_tap.take(lambda b: b["data"]["registration_id"] == first["id"])
        stack.smtp.mailbox.wait_for("dup-first@example.org")
        before = {name: absorbed(stack, name) for name in ("registration", "notification")}
        for _ in range(3):
            status_tap.publish_again(confirmed)
            decision_tap.publish_again(decision)
        # A cancellation afterwards proves the duplicates were consumed first.
        requests.post(second["links"]["cancel"], timeout=10)
        stack.smtp.mailbox.wait_for("dup-second@example.org", count=2)
    finally:
        status_tap.close()
        decision_tap.close()
    # Each copy reached its consumer and was recognised there: the decision
    # by registration, the status change by notification.
    def recognised():
        return {name: absorbed(stack, name) - count for name, count in before.items()}
    wait_until(lambda: min(recognised().values()) >= 3, 10, message="the copies recognised")
    assert recognised() == {"registration": 3, "notification": 3}
    time.sleep(QUIET)
    assert len(stack.smtp.mailbox.to("dup-first@example.org")) == 1
    assert len(stack.smtp.mailbox.to("dup-second@example.org")) == 2
    assert stack.status(first)["status"] == "confirmed"


def test_a_poison_message_is_retried_then_parked_in_the_dead_letter_queue(stack):
    connection = pika.BlockingConnection(pika.URLParameters(stack.vhost.amqp_uri))
    channel = connection.channel()
    channel.confirm_delivery()
    queue = "evt-registration-registration.requested--capacity.on_registration_requested"
    body = json.dumps({"message_id": uuid.uuid4().hex, "type": "registration.requested",
                       "version": 1, "data": {"nonsense": True}})
    channel.basic_publish("registration.events", "registration.requested", body,
                          pika.BasicProperties(content_type="application/json", delivery_mode=2),
                          mandatory=True)

    def parked():
        return channel.queue_declare(queue + ".dead", durable=True, passive=False).method.message_count
    assert wait_until(parked, 20, interval=0.2, message="the dead-letter queue") == 1
    method, properties, dead = channel.basic_get(queue + ".dead", auto_ack=True)
    assert json.loads(dead)["data"] == {"nonsense": True}
    assert properties.headers["x-delivery-attempt"] == 3
    assert "ValidationError" in properties.headers["x-last-error"]
    channel.basic_publish("", queue + ".dead", dead, properties, mandatory=True)   # put it back

    # The operator's tool lists, shows and replays it (it fails again and returns).
    tool = [sys.executable, "-m", "shared.deadletters"]
    env = {**os.environ, "AMQP_URI": stack.vhost.amqp_uri}
    listing = subprocess.run(tool + ["list"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert f"     1  {queue}" in listing.stdout, listing.stdout + listing.stderr
    shown = subprocess.run(tool + ["show", queue], env=env, cwd=ROOT, capture_output=True, text=True)
    assert '"nonsense": true' in shown.stdout
    replayed = subprocess.run(tool + ["replay", queue], env=env, cwd=ROOT, capture_output=True,
                              text=True)
    assert "replayed 1 message(s)" in replayed.stdout
    wait_until(lambda: parked() == 1, 20, interval=0.2, message="the replayed message to return")
    connection.close()
    # The service is still healthy and deciding.
    event = stack.create_event(capacity=1)
    assert stack.status(stack.register(event["slug"]), wait=10)["status"] == "confirmed"


BAD_REQUESTS = [
    ("malformed JSON", b'{"name": ', "application/json", 400),
    ("not an object", b'["a"]', "application/json", 400),
    ("nested too deeply", b"[" * 50000, "application/json", 400),
    ("wrong content type", b'name=a', "application/x-www-form-urlencoded", 415),
    ("too large", b'{"name": "' + b"a" * 70000 + b'"}', "application/json", 413),
    ("wrong type", b'{"name": 7, "email": "a@example.org"}', "application/json", 422),
    ("bad email", b'{"name": "A", "email": "a@@example"}', "application/json", 422),
    ("unknown language", b'{"name": "A", "email": "a@example.org", "language": "tr"}',
     "application/json", 422),
    ("unknown time zone", b'{"name": "A", "email": "a@example.org", "timezone": "Moon/Base"}',
     "application/json", 422),
    ("unknown session", b'{"name": "A", "email": "a@example.org", "sessions": ["day-9"]}',
     "application/json", 422),
]


def test_bad_input_is_a_clear_4xx_and_leaves_nothing_behind(stack):
    event = stack.create_event()
    url = f"{stack.base_url}/api/v1/events/{event['slug']}/registrations"
    for label, data, content_type, expected in BAD_REQUESTS:
        response = requests.post(url, data=data, headers={"Content-Type": content_type}, timeout=10)
        assert response.status_code == expected, (label, response.text)
        assert response.headers["Content-Type"].startswith("application/problem+json"), label
        assert response.json()["status"] == expected
    unknown = requests.post(f"{stack.base_url}/api/v1/events/no-such-event/registrations",
                            json={"name": "A", "email": "a@example.org"}, timeout=10)
    assert unknown.status_code == 404
    problem = requests.post(url, json={"name": "A", "email": "nope"}, timeout=10).json()
    assert problem["errors"][0]["field"] == "email"
    seats = requests.get(f"{stack.base_url}/api/v1/events/{event['slug']}",
                         headers=stack.admin_headers(), timeout=10).json()["seats"]
    assert seats["states"] == {}                     # nothing reached capacity
    assert requests.post(f"{stack.base_url}/api/v1/events", json={"slug": "x"},
                         timeout=10).status_code == 401


@pytest.mark.parametrize("path", ["/api/v1/events/a%00b", "/api/v1/events/UPPER/stats",
                                  "/api/v1/events/a%00b/registrations",
                                  "/api/v1/registrations/%00?token=x"])
def test_a_malformed_id_in_a_path_names_nothing(stack, path):
    response = requests.get(stack.base_url + path, headers=stack.admin_headers(), timeout=10)
    assert response.status_code == 404, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    page = requests.get(f"{stack.base_url}/events/a%00b", timeout=10)
    assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html")


def test_quorum_queues_work_end_to_end(tmp_path_factory):
    """EVENT_QUEUE_TYPE=quorum declares the handler, retry and dead-letter
    queues as quorum queues (RabbitMQ 3.10 here); the pipeline is unchanged."""
    stack = Stack(tmp_path_factory.mktemp("quorum"), extra_env={"EVENT_QUEUE_TYPE": "quorum"})
    try:
        stack.start()
        event = stack.create_event(capacity=1)
        assert stack.status(stack.register(event["slug"]), wait=15)["status"] == "confirmed"
        assert stack.status(stack.register(event["slug"]), wait=15)["status"] == "waitlisted"
        listing = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", stack.vhost.name,
                                  "name", "type"], capture_output=True, text=True, timeout=60)
        types = dict(line.split("\t") for line in listing.stdout.strip().splitlines()[1:])
        queue = "evt-registration-registration.requested--capacity.on_registration_requested"
        assert types[queue] == "quorum"
    finally:
        stack.stop()


def test_a_poison_message_in_a_batch_is_parked_alone_and_the_rest_decided(stack):
    """Messages that queued up while capacity was down arrive as one batch:
    the one that cannot be read fails the batch, which is then handled one
    message at a time, so the others are decided and only it is parked."""
    queue = "evt-registration-registration.requested--capacity.on_registration_requested"
    event = stack.create_event(capacity=None)
    [capacity] = [p for p in stack.processes if p.name == "capacity" and p.alive()]
    capacity.stop()
    connection = pika.BlockingConnection(pika.URLParameters(stack.vhost.amqp_uri))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare(queue + ".dead", durable=True)
    channel.queue_purge(queue + ".dead")        # what an earlier test parked there
    try:
        answers = [stack.register(event["slug"]) for _ in range(5)]
        poison = json.dumps({"message_id": uuid.uuid4().hex, "type": "registration.requested",
                             "version": 2, "data": {"poison": True}})
        channel.basic_publish("registration.events", "registration.requested", poison,
                              pika.BasicProperties(content_type="application/json", delivery_mode=2),
                              mandatory=True)
        answers += [stack.register(event["slug"]) for _ in range(5)]
        # All of them queued, so that they arrive together.
        wait_until(lambda: channel.queue_declare(queue, durable=True, passive=True)
                   .method.message_count >= 11, 20, interval=0.1, message="the requests queued")
    finally:
        stack.start_service("capacity")
    assert [stack.status(a, wait=20)["status"] for a in answers] == ["confirmed"] * 10

    def parked():
        return channel.queue_declare(queue + ".dead", durable=True, passive=False).method.message_count
    assert wait_until(parked, 20, interval=0.2, message="the dead-letter queue") == 1
    method, _, dead = channel.basic_get(queue + ".dead", auto_ack=True)
    assert json.loads(dead)["data"] == {"poison": True}
    logs = "".join(p.log_path.read_text() for p in stack.processes if p.name == "capacity")
    assert "batch of" in logs                   # the batch did fail, and was split
    connection.close()
