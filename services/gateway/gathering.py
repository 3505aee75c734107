"""Concurrent registrations travel to the registration service together.

Each RPC costs two services a publish, a consume and a reply, and each
registration a transaction; under a rush that, not the work, is the limit. The
first request that finds a free slot carries every request waiting at that
moment in one call (``register_many``), and the answers go back to their own
requests. With light traffic a request travels alone at once; with heavy
traffic the calls grow instead of queueing. A request never waits for a
timer, only for a call already on its way.
"""
from __future__ import annotations

from collections import deque

from eventlet.queue import LightQueue

MAX_IN_FLIGHT = 2     # calls on their way at once
MAX_BATCH = 200       # requests per call at most
_LEAD = object()


class _Waiting:
    def __init__(self, item):
        self.item = item
        self.inbox = LightQueue()      # _LEAD, then its result
        self.asked_to_lead = False


class Gatherer:
    """One per gateway process; its state is touched only between green
    thread switches, so it needs no lock."""

    def __init__(self, max_in_flight: int = MAX_IN_FLIGHT, max_batch: int = MAX_BATCH):
        self.max_in_flight, self.max_batch = max_in_flight, max_batch
        self._queue: deque[_Waiting] = deque()
        self._in_flight = 0

    def submit(self, call_many, item):
        """``call_many(items) -> results`` (one per item, in order), made
        with this request's or another's; returns this item's result."""
        me = _Waiting(item)
        self._queue.append(me)
        while True:
            if self._in_flight < self.max_in_flight and me in self._queue:
                self._lead(call_many)
            outcome = me.inbox.get()
            if outcome is not _LEAD:
                if isinstance(outcome, BaseException):
                    raise outcome
                return outcome
            me.asked_to_lead = False      # a later free slot may ask again

    def _lead(self, call_many):
        batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
        self._in_flight += 1
        try:
            results = call_many([waiting.item for waiting in batch])
        except BaseException as exc:       # every request of the call answers with it
            results = [exc] * len(batch)
        finally:
            self._in_flight -= 1
            self._hand_over()
        for waiting, result in zip(batch, results):
            waiting.inbox.put(result)

    def _hand_over(self):
        """The slot is free: the oldest request not yet asked leads next."""
        for waiting in self._queue:
            if not waiting.asked_to_lead:
                waiting.asked_to_lead = True
                waiting.inbox.put(_LEAD)
                return
