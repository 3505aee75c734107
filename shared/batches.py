"""An event handler that takes its messages in batches.

nameko's ``@event_handler`` hands one message to one worker, so every message
pays for its own transaction and commit. Under a rush that is the limit: one
event's seats can be decided no faster than one lock hold and one fsync per
registration. ``@batch_handler`` gives one worker every message that arrived
while the previous batch was being handled (a group commit: no waiting when
traffic is light, large batches when it is heavy), and acknowledges them only
after the worker has returned, that is after their effect is committed.

If a batch fails, its messages are handled again one at a time, so that one
poison message goes to the retry queues (and at last to ``<queue>.dead``)
alone instead of taking its batch with it.
"""
from __future__ import annotations

import logging
from functools import partial

import eventlet
from eventlet.event import Event
from nameko.exceptions import ContainerBeingKilled

from shared.messaging import ReliableEventHandler, SettlingQueueConsumer

log = logging.getLogger(__name__)

BATCH_SIZE = 250          # messages handed to one worker at most
PREFETCH = 2 * BATCH_SIZE  # the next batch gathers while one is handled


class BatchQueueConsumer(SettlingQueueConsumer):
    """A queue consumer with a prefetch that lets batches form, and no
    green thread per message: the handler only appends to its buffer. Its
    connection stays until a running batch is settled (a graceful stop)."""

    @property
    def prefetch_count(self):
        return PREFETCH

    def handle_message(self, provider, body, message):
        provider.handle_message(body, message)


class BatchEventHandler(ReliableEventHandler):
    queue_consumer = BatchQueueConsumer()

    def setup(self):
        super().setup()
        self._buffer: list = []
        self._draining = False
        self._stopping = False

    def stop(self):
        # No new batch once stopping: the running one finishes and is acked;
        # messages still buffered stay unacked and return to the queue when
        # the channel closes.
        self._stopping = True
        super().stop()

    def handle_message(self, body, message):
        self.note_delivery(message)
        self._buffer.append((body, message))
        if not self._draining:
            self._draining = True
            self.container.spawn_managed_thread(self._drain, identifier=f"{self.method_name}.batches")

    def _drain(self):
        try:
            while self._buffer and not self._stopping:
                # Let the consumer read what the broker has already sent.
                eventlet.sleep(0)
                batch = self._buffer[:BATCH_SIZE]
                del self._buffer[:BATCH_SIZE]
                if not self._run(batch) and len(batch) > 1:
                    for one in batch:
                        if not self._stopping:
                            self._run([one])
        finally:
            self._draining = False

    def _run(self, batch) -> bool:
        """One worker for the batch; True if it succeeded. Each message is
        settled (acked, or parked for a retry if it was alone) when the
        worker is done; a failed batch of several is left to be run again
        one by one."""
        done = Event()
        messages = [message for _, message in batch]
        context = self.unpack_message_headers(messages[0])
        self.queue_consumer.work_started()
        try:
            self.container.spawn_worker(
                self, ([body for body, _ in batch],), {}, context_data=context,
                handle_result=partial(self._settle_batch, messages, done))
        except ContainerBeingKilled:
            self.queue_consumer.work_settled()
            for message in messages:
                self._settle(self.queue_consumer.requeue_message, message)
            return True
        return done.wait()

    def _settle_batch(self, messages, done, worker_ctx, result=None, exc_info=None):
        try:
            if exc_info is None:
                for message in messages:
                    self._settle(self.queue_consumer.ack_message, message)
            elif len(messages) == 1:
                self.handle_message_processed(messages[0], result, exc_info)
            else:
                log.warning("a batch of %d from %s failed (%s: %s); handling them one by one",
                            len(messages), self.queue.name, exc_info[0].__name__, exc_info[1])
        finally:
            self.queue_consumer.work_settled()
        done.send(exc_info is None or len(messages) == 1)
        return result, exc_info


batch_handler = BatchEventHandler.decorator
