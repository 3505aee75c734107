"""A nameko event handler that never drops a message it failed to process.

nameko's own ``@event_handler`` acks a message whose handler raised (or, with
``requeue_on_error``, requeues it at once, looping hot on a poison message).
This one, on failure, republishes the message to a delay queue whose
dead-letter route leads back to the handler's queue, with growing delays,
and after the last attempt parks it in ``<queue>.dead``. The original is acked
only after the copy is confirmed by the broker. ``python -m shared.deadletters``
lists and replays parked messages.
"""
from __future__ import annotations

import logging
import time

import amqp
from amqp.exceptions import AMQPError
from kombu import Connection, Exchange, Queue
from kombu.exceptions import KombuError
from nameko.amqp.publish import Publisher
from nameko.events import EventHandler
from nameko.messaging import QueueConsumer
from nameko.rpc import ReplyListener, Rpc, RpcConsumer, RpcProxy

from shared import metrics
from shared.errors import NotYet

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-delivery-attempt"
DEFAULT_EXCHANGE = Exchange("", type="direct")


def type_arguments(queue_type: str) -> dict:
    """The declare arguments of a queue of the configured type."""
    return {"x-queue-type": "quorum"} if queue_type == "quorum" else {}


def retry_queue(queue_name: str, level: int, delay: float, queue_type: str) -> Queue:
    return Queue(f"{queue_name}.retry.{level}", exchange=DEFAULT_EXCHANGE,
                 routing_key=f"{queue_name}.retry.{level}", durable=True,
                 queue_arguments={"x-message-ttl": int(delay * 1000),
                                  "x-dead-letter-exchange": "",
                                  "x-dead-letter-routing-key": queue_name,
                                  **type_arguments(queue_type)})


def dead_letter_queue(queue_name: str, queue_type: str) -> Queue:
    return Queue(f"{queue_name}.dead", exchange=DEFAULT_EXCHANGE,
                 routing_key=f"{queue_name}.dead", durable=True,
                 queue_arguments=type_arguments(queue_type))


class SettlingQueueConsumer(QueueConsumer):
    """nameko's queue consumer, except that a graceful stop keeps the
    connection until the messages of running workers are settled.

    nameko's stops its consumer loop, and so closes its connection, as soon
    as its last consumer is cancelled, which is at the very start of a stop:
    a worker that finished after that acked on a closed channel (nameko skips
    that silently), and its message, whose effect was committed, went to the
    next process again (the inbox absorbed it). Entrypoints tell this one
    when work starts and when its messages are settled."""

    def __init__(self):
        super().__init__()
        self._running = 0

    def work_started(self):
        self._running += 1

    def work_settled(self):
        self._running -= 1

    def on_iteration(self):
        self._cancel_consumers_if_requested()
        if not self._consumers and self._running <= 0:
            self.should_stop = True


class ReliableEventHandler(EventHandler):
    queue_consumer = SettlingQueueConsumer()

    def __init__(self, source_service, event_type, **kwargs):
        # NotYet is routine (a message that overtook the one it needs): no traceback.
        kwargs.setdefault("expected_exceptions", (NotYet,))
        super().__init__(source_service, event_type, **kwargs)

    def setup(self):
        super().setup()
        settings = self.container.config["SETTINGS"]
        self.queue_type = settings.event_queue_type
        self.queue.queue_arguments = {**(self.queue.queue_arguments or {}),
                                      **type_arguments(self.queue_type)}
        self.publisher = Publisher(self.container.config["AMQP_URI"], use_confirms=True,
                                   mandatory=True)
        self.retry_delays = settings.handler_retry_delays

    def handle_message(self, body, message):
        self.note_delivery(message)
        self.queue_consumer.work_started()
        super().handle_message(body, message)

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        try:
            return super().handle_result(message, worker_ctx, result, exc_info)
        finally:
            self.queue_consumer.work_settled()

    def note_delivery(self, message):
        """Count a message the broker delivers again (the consumer it went
        to before died or closed its channel without acking it)."""
        if (message.delivery_info or {}).get("redelivered"):
            metrics.MESSAGES_REDELIVERED.labels(self.container.service_name,
                                                self.method_name).inc()

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is not None:
            try:
                self._park_for_retry(message, exc_info[1])
            except Exception:
                # Could not hand the message on: leave it unacked; the broker
                # redelivers it when this connection goes.
                log.exception("could not schedule a retry of a message from %s", self.queue.name)
                self._settle(self.queue_consumer.requeue_message, message)
                return
        self._settle(self.queue_consumer.ack_message, message)

    def _settle(self, action, message):
        """Ack or requeue; on a connection the broker just dropped that fails,
        which must not end the service: the broker redelivers the unacked
        message and the inbox recognises it."""
        try:
            action(message)
        except (OSError, KombuError, AMQPError) as exc:
            log.warning("could not settle a message from %s (broker away?): %s", self.queue.name, exc)

    def _park_for_retry(self, message, error):
        attempt = int((message.headers or {}).get(ATTEMPT_HEADER, 1))
        headers = dict(message.headers or {})
        headers[ATTEMPT_HEADER] = attempt + 1
        headers["x-last-error"] = f"{type(error).__name__}: {error}"[:500]
        service = self.container.service_name
        if attempt <= len(self.retry_delays):
            target = retry_queue(self.queue.name, attempt, self.retry_delays[attempt - 1],
                                 self.queue_type)
            log.log(logging.INFO if isinstance(error, NotYet) else logging.WARNING,
                    "%s failed (attempt %d), retrying in %ss: %s", self.queue.name, attempt,
                    self.retry_delays[attempt - 1], error)
            metrics.HANDLER_RETRIES.labels(service, self.event_type).inc()
        else:
            headers[ATTEMPT_HEADER] = attempt        # in the dead-letter queue: attempts made
            target = dead_letter_queue(self.queue.name, self.queue_type)
            log.error("%s failed %d times, parked in %s: %s", self.queue.name, attempt,
                      target.name, error)
            metrics.DEAD_LETTERS.labels(service, self.event_type).inc()
        self.publisher.publish(message.body, exchange=DEFAULT_EXCHANGE, routing_key=target.name,
                               declare=[target], headers=headers,
                               content_type=message.content_type,
                               content_encoding=message.content_encoding,
                               serializer=None)


event_handler = ReliableEventHandler.decorator


class SettlingRpcConsumer(RpcConsumer):
    queue_consumer = SettlingQueueConsumer()


class ReliableRpc(Rpc):
    """nameko's @rpc, except that a reply that cannot be sent because the
    broker went away does not kill the whole service (nameko lets that error
    end the container). The work is committed; the caller times out and
    retries, with its Idempotency-Key where it matters; the request, unacked
    on a dead channel, is redelivered and finds its work done. A call that
    runs when the service is told to stop is answered and acked before the
    connection closes (``SettlingQueueConsumer``), not run again elsewhere."""
    rpc_consumer = SettlingRpcConsumer()

    def handle_message(self, body, message):
        self.rpc_consumer.queue_consumer.work_started()
        super().handle_message(body, message)

    def handle_result(self, message, worker_ctx, result, exc_info):
        try:
            return super().handle_result(message, worker_ctx, result, exc_info)
        except (OSError, KombuError, AMQPError) as exc:
            log.warning("could not reply to %s (broker away?): %s", worker_ctx.call_id, exc)
            return result, exc_info
        finally:
            self.rpc_consumer.queue_consumer.work_settled()


rpc = ReliableRpc.decorator


class ReliableReplyListener(ReplyListener):
    """nameko's reply listener acks each reply before handing it to the
    caller; an ack on a connection the broker just dropped raised out of it
    and ended the whole container (the gateway died in a broker restart).
    The reply is handed over regardless: the work behind it is done."""

    def handle_message(self, body, message):
        try:
            self.queue_consumer.ack_message(message)
        except (OSError, KombuError, AMQPError) as exc:
            log.warning("could not ack an RPC reply (broker away?): %s", exc)
        reply_event = self._reply_events.pop(message.properties.get("correlation_id"), None)
        if reply_event is not None:
            reply_event.send(body)


class ReliableRpcProxy(RpcProxy):
    """nameko's RpcProxy with a reply listener that survives a broker restart,
    and a short publish retry: nameko's default retries for about 12 s, so a
    request made while the broker is away hung and then either went through
    or failed; now it fails within about 1.5 s and the gateway answers 503
    with Retry-After, which clients retry with their Idempotency-Key."""
    rpc_reply_listener = ReliableReplyListener()
    RETRY_POLICY = {"max_retries": 2, "interval_start": 0.5, "interval_step": 0.5,
                    "interval_max": 1.0}

    def __init__(self, target_service, **options):
        options.setdefault("retry_policy", self.RETRY_POLICY)
        super().__init__(target_service, **options)


class Unconfirmed(Exception):
    """The broker refused (nacked) a message of a batch, or did not confirm
    the batch in time: nothing of it counts as published."""


class ConfirmedPublisher:
    """Publishes a batch of messages and waits once for the broker's
    confirms, instead of once per message (py-amqp's ``basic_publish_confirm``
    and so kombu's ``confirm_publish`` wait after every message).

    The channel is in confirm mode; messages are published ``mandatory``, so
    one that no queue takes comes back (``basic.return``, which the broker
    sends before that message's ack) and is reported as unroutable. One
    connection is kept and made again after any failure.
    """

    def __init__(self, amqp_uri: str, timeout: float = 10.0):
        self.amqp_uri, self.timeout = amqp_uri, timeout
        self._connection = None
        self._channel = None
        self._declared: set[str] = set()

    def publish(self, messages: list[dict]) -> set[str]:
        """Each message: ``{"exchange", "routing_key", "body", "message_id",
        "headers"}``. Returns the ids of those no queue took; raises if any
        was not confirmed."""
        try:
            return self._publish(messages)
        except BaseException:
            # No closing handshake: a broker that stopped answering would
            # never answer it, and the relay's rows stay locked meanwhile.
            self.close(graceful=False)
            raise

    def _publish(self, messages):
        channel = self._open()
        returned: set[str] = set()
        self._returned = returned
        for item in messages:
            self._declare(channel, item["exchange"])
            channel.basic_publish(amqp.Message(
                item["body"], content_type="application/json", content_encoding="utf-8",
                delivery_mode=2, message_id=item["message_id"],
                application_headers=item.get("headers") or {}),
                exchange=item["exchange"].name, routing_key=item["routing_key"], mandatory=True)
            self._unconfirmed.add(self._next_tag)
            self._next_tag += 1
        self._wait_for_confirms()
        return returned

    def _wait_for_confirms(self):
        deadline = time.monotonic() + self.timeout
        while self._unconfirmed:
            if self._nacked:
                raise Unconfirmed("the broker refused a message")
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unconfirmed(f"no confirm within {self.timeout}s")
            try:
                self._connection.drain_events(timeout=left)
            except TimeoutError:
                pass
        if self._nacked:
            raise Unconfirmed("the broker refused a message")

    def _open(self):
        if self._channel is not None:
            return self._channel
        # Every wait on this connection is bounded, the opening ones too.
        params = Connection(self.amqp_uri, connect_timeout=self.timeout, transport_options={
            "read_timeout": self.timeout, "write_timeout": self.timeout})
        connection = params.connect().connection      # the py-amqp connection
        channel = connection.channel()
        channel.confirm_select()
        self._next_tag, self._unconfirmed, self._nacked = 1, set(), False
        self._returned = set()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        channel.events["basic_return"].add(self._on_return)
        self._params, self._connection, self._channel = params, connection, channel
        return channel

    def _declare(self, channel, exchange):
        if exchange.name not in self._declared:
            channel.exchange_declare(exchange.name, exchange.type, durable=True, auto_delete=False)
            self._declared.add(exchange.name)

    def _on_ack(self, delivery_tag, multiple):
        if multiple:     # every tag up to this one
            self._unconfirmed = {tag for tag in self._unconfirmed if tag > delivery_tag}
        else:
            self._unconfirmed.discard(delivery_tag)

    def _on_nack(self, delivery_tag, multiple):
        self._nacked = True
        self._on_ack(delivery_tag, multiple)

    def _on_return(self, exc, exchange, routing_key, message):
        self._returned.add(message.properties.get("message_id"))

    def close(self, graceful: bool = True):
        params, self._params = getattr(self, "_params", None), None
        connection, self._connection, self._channel = self._connection, None, None
        self._declared = set()
        if not graceful and connection is not None:
            connection.collect()      # drop the socket
        if params is not None:
            try:
                params.release()
            except Exception:   # already gone: nothing to close
                pass
