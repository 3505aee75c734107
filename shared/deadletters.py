"""Dead letters: list, inspect and replay messages that handlers gave up on.

    python -m shared.deadletters list
    python -m shared.deadletters show QUEUE [--count N]
    python -m shared.deadletters replay QUEUE [--count N]

QUEUE is a handler queue's name (``list`` prints them). Replaying moves each
parked message back to its handler's queue with its attempt count reset; a
message is removed from the dead-letter queue only after the broker has
confirmed the copy. This runs outside eventlet, so it speaks AMQP with pika.
"""
from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")

import argparse
import json
import sys

import pika

from shared.config import SERVICES, Settings
from shared.messaging import ATTEMPT_HEADER, ReliableEventHandler
from shared.startup import service_class


def handler_queues() -> list[str]:
    """The queue of every reliable event handler of every service."""
    names = []
    for service in SERVICES:
        for attr in vars(service_class(service)).values():
            for entrypoint in getattr(attr, "nameko_entrypoints", ()):
                if isinstance(entrypoint, ReliableEventHandler):
                    names.append(f"evt-{entrypoint.source_service}-{entrypoint.event_type}"
                                 f"--{service}.{attr.__name__}")
    return sorted(names)


def connect(amqp_uri: str):
    try:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    except pika.exceptions.AMQPError as exc:
        sys.exit(f"error: cannot reach RabbitMQ at {amqp_uri.split('@')[-1]} ({exc!r})")
    channel = connection.channel()
    channel.confirm_delivery()
    return connection, channel


def depth(connection, queue: str) -> int:
    """Messages in a queue, on a channel of its own (a passive declare of a
    queue that does not exist closes the channel)."""
    channel = connection.channel()
    try:
        return channel.queue_declare(queue, passive=True).method.message_count
    except pika.exceptions.ChannelClosedByBroker:     # never declared: nothing parked
        return 0
    finally:
        if channel.is_open:
            channel.close()


def list_queues(connection) -> None:
    print(f"{'dead':>6}  handler queue")
    for queue in handler_queues():
        print(f"{depth(connection, queue + '.dead'):>6}  {queue}")


def show(channel, queue: str, count: int) -> None:
    seen = []
    for _ in range(count):
        method, properties, body = channel.basic_get(queue + ".dead")
        if method is None:
            break
        seen.append(method.delivery_tag)
        headers = properties.headers or {}
        print(json.dumps({"attempts": headers.get(ATTEMPT_HEADER),
                          "last_error": headers.get("x-last-error"),
                          "body": json.loads(body)}, indent=2, ensure_ascii=False))
    for tag in seen:          # leave them where they were
        channel.basic_nack(tag, requeue=True)
    if not seen:
        print(f"{queue}.dead is empty")


def replay(channel, queue: str, count: int) -> int:
    replayed = 0
    for _ in range(count):
        method, properties, body = channel.basic_get(queue + ".dead")
        if method is None:
            break
        headers = dict(properties.headers or {})
        headers.pop(ATTEMPT_HEADER, None)
        headers["x-replayed"] = int(headers.get("x-replayed", 0)) + 1
        channel.basic_publish("", queue, body, pika.BasicProperties(
            content_type=properties.content_type, content_encoding=properties.content_encoding,
            headers=headers, delivery_mode=2), mandatory=True)
        channel.basic_ack(method.delivery_tag)
        replayed += 1
    print(f"replayed {replayed} message(s) to {queue}")
    return replayed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.deadletters", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("list", "show", "replay"))
    parser.add_argument("queue", nargs="?")
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args(argv)
    if args.command != "list" and args.queue not in handler_queues():
        parser.error("name a handler queue; 'list' prints them")
    connection, channel = connect(Settings.from_env().amqp_uri)
    try:
        if args.command == "list":
            list_queues(connection)
        elif args.command == "show":
            show(channel, args.queue, args.count)
        else:
            replay(channel, args.queue, args.count)
    finally:
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
