"""Following a scenario while it runs: the event's counts (polled from the
stats API once a second), the mail the sink got, a progress line every two
seconds, and a deadline so that nothing waits for ever."""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from .client import Api, Attempt
from .mailcheck import is_decision
from .sink import SinkLog

STATS_EVERY = 1.0
PRINT_EVERY = 2.0
STEADY_FOR = 3.0     # "done" must hold this long: late requests may still land


def log_line(text: str) -> None:
    print(text, flush=True)


class Watch:
    def __init__(self, api: Api, log: SinkLog, label: str, slug: str, tag: str,
                 attempts: list[Attempt], total: int,
                 counts_as_mail: Callable[[tuple], bool] = lambda record: is_decision(record[3])):
        self.api, self.log, self.label, self.slug, self.tag = api, log, label, slug, tag
        self.attempts, self.total, self.counts_as_mail = attempts, total, counts_as_mail
        self.stats: dict = {}
        self.mailed: dict[str, float] = {}     # address -> arrival of its first counted message
        self.seen = 0                          # sink records already looked at
        self.milestones: dict[str, float] = {} # name -> time.time() first observed
        self.started = time.time()

    # -- what has happened so far --------------------------------------------------
    def take_mail(self) -> None:
        self.log.poll()
        prefix = self.tag + "-"
        for record in self.log.records[self.seen:]:
            if not self.counts_as_mail(record):
                continue
            for address in record[4]:
                if address.startswith(prefix) and address not in self.mailed:
                    self.mailed[address] = record[0]
        self.seen = len(self.log.records)

    def decided(self) -> int:
        counts = {k: v for k, v in self.stats.items() if isinstance(v, int)}
        return sum(counts.values()) - counts.get("pending", 0)

    def registered(self) -> int:
        return sum(v for v in self.stats.values() if isinstance(v, int))

    def all_decided_and_mailed(self) -> bool:
        """Every registration the server holds is decided and has its message."""
        registered = self.registered()
        return (registered > 0 and self.stats.get("pending", 1) == 0
                and len(self.mailed) >= registered)

    def note(self, name: str, reached: bool) -> None:
        if reached and name not in self.milestones:
            self.milestones[name] = time.time()

    def progress(self) -> str:
        answered = [a for a in self.attempts if a.answered]
        accepted = sum(a.status == 202 for a in answered)
        seats = self.stats.get("seats") or {}
        used = f" seats {seats.get('used')}/{seats.get('capacity')}" if seats.get("capacity") else ""
        return (f"[{self.label} {time.time() - self.started:5.0f}s] posted {len(self.attempts)}/{self.total}"
                f" answered {len(answered)} (202: {accepted}, other: {len(answered) - accepted})"
                f" | decided {self.decided()} pending {self.stats.get('pending', '?')}{used}"
                f" | mailed {len(self.mailed)}")

    # -- waiting -------------------------------------------------------------------
    async def until(self, done: Callable[[Watch], bool], deadline: float,
                    sending: asyncio.Task | None = None, on_stats: Callable | None = None) -> bool:
        """Polls until ``done(self)`` has held for STEADY_FOR seconds after the
        sending finished, or until ``deadline`` (time.time()). True if done."""
        next_stats = next_print = 0.0
        steady_since = None
        polling: asyncio.Task | None = None     # in the background: a slow answer must not stall the loop
        while time.time() < deadline:
            now = time.time()
            self.take_mail()
            if polling is not None and polling.done():
                self.stats = polling.result() or self.stats
                polling = None
                if on_stats:
                    on_stats(self)
            if polling is None and now >= next_stats:
                polling = asyncio.create_task(self.api.stats(self.slug))
                next_stats = now + STATS_EVERY
            if now >= next_print:
                log_line(self.progress())
                next_print = now + PRINT_EVERY
            finished_sending = sending is None or sending.done()
            if finished_sending and done(self):
                steady_since = steady_since or now
                if now - steady_since >= STEADY_FOR:
                    log_line(self.progress())
                    await _cancel(polling)
                    return True
            else:
                steady_since = None
            await asyncio.sleep(0.25)
        log_line(self.progress() + "  -- time limit reached")
        await _cancel(polling)
        return False


async def _cancel(task: asyncio.Task | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
