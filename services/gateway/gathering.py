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

import time
from collections import deque

from eventlet.queue import Empty, LightQueue

MAX_IN_FLIGHT = 2     # calls on their way at once
MAX_BATCH = 200       # requests per call at most
# A call unanswered this long (a broker gone away after the call was sent:
# its reply never comes) no longer holds its slot, so that the requests
# behind it get their own quick answer (a 503 when the broker is away)
# instead of waiting out the stalled call's timeout.
STALLED_AFTER = 1.0
_LEAD = object()


class _Waiting:
    def __init__(self, item):
        self.item = item
        self.inbox = LightQueue()      # _LEAD, then its result
        self.asked_to_lead = False


class Gatherer:
    """One per gateway process; its state is touched only between green
    thread switches, so it needs no lock."""

    def __init__(self, max_in_flight: int = MAX_IN_FLIGHT, max_batch: int = MAX_BATCH,
                 stalled_after: float = STALLED_AFTER):
        self.max_in_flight, self.max_batch = max_in_flight, max_batch
        self.stalled_after = stalled_after
        self._queue: deque[_Waiting] = deque()
        self._calls: list[float] = []        # when each call on its way started

    def submit(self, call_many, item):
        """``call_many(items) -> results`` (one per item, in order), made
        with this request's or another's; returns this item's result."""
        me = _Waiting(item)
        self._queue.append(me)
        while True:
            if self._free_slot() and me in self._queue:
                self._lead(call_many)
            try:
                outcome = me.inbox.get(timeout=self.stalled_after)
            except Empty:
                continue          # a call may have stalled: look for a slot again
            if outcome is not _LEAD:
                if isinstance(outcome, BaseException):
                    raise outcome
                return outcome
            me.asked_to_lead = False      # a later free slot may ask again

    def _free_slot(self) -> bool:
        fresh = time.monotonic() - self.stalled_after
        return sum(1 for started in self._calls if started > fresh) < self.max_in_flight

    def _lead(self, call_many):
        batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
        started = time.monotonic()
        self._calls.append(started)
        try:
            results = call_many([waiting.item for waiting in batch])
        except BaseException as exc:       # every request of the call answers with it
            results = [exc] * len(batch)
        finally:
            self._calls.remove(started)
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
