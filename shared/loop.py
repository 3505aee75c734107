"""Work that repeats: timers whose interval may come from the settings, and
a background loop owned by a nameko dependency that runs ``tick()`` when woken
and at least every ``interval`` seconds; both stop cleanly with the container."""
from __future__ import annotations

import logging

import eventlet
from eventlet.event import Event
from nameko.extensions import DependencyProvider
from nameko.timer import Timer

log = logging.getLogger(__name__)


class SettingsTimer(Timer):
    """nameko's timer, whose ``interval`` may be a function of the settings:
    read when the service starts, not when its module is imported."""

    def __init__(self, interval, eager=False, **kwargs):
        self.interval_of = interval
        super().__init__(None if callable(interval) else interval, eager, **kwargs)

    def setup(self):
        if callable(self.interval_of):
            self.interval = float(self.interval_of(self.container.config["SETTINGS"]))


def every(interval, eager: bool = False):
    """``@every(5)`` or ``@every(lambda settings: settings.reminder_poll_seconds)``."""
    # By keyword: nameko takes a lone callable argument for the decorated method.
    return SettingsTimer.decorator(interval=interval, eager=eager)


class BackgroundLoop(DependencyProvider):
    interval = 1.0
    database_attr = "db"

    def setup(self):
        self._wake = Event()
        self._running = False
        self._thread = None
        self._wake_after: set = set()      # workers that asked for a run when done

    def start(self):
        self._running = True
        self._thread = self.container.spawn_managed_thread(self._loop)

    def stop(self):
        self._running = False
        self.wake()
        if self._thread is not None:
            self._thread.wait()

    def kill(self):
        self._running = False
        if self._thread is not None:
            self._thread.kill()

    def wake(self):
        if not self._wake.ready():
            self._wake.send(True)

    def wake_after_worker(self, worker_ctx):
        """Run the loop as soon as this worker is done (and has committed
        what the loop is to pick up). Kept per worker: another worker that
        finishes first must not take the wake-up before this one committed."""
        self._wake_after.add(worker_ctx)

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        if worker_ctx in self._wake_after:
            self._wake_after.discard(worker_ctx)
            self.wake()

    def session_factory(self):
        database = next(dep for dep in self.container.dependencies
                        if getattr(dep, "attr_name", None) == self.database_attr)
        return database.session_factory

    def _loop(self):
        while self._running:
            with eventlet.Timeout(self.interval, False):
                self._wake.wait()
            self._wake = Event()
            try:
                self.tick()
            except Exception as exc:   # a broker, database or SMTP hiccup: next round
                log.warning("%s of %s paused: %s", type(self).__name__,
                            self.container.service_name, exc)
                eventlet.sleep(self.interval)

    def tick(self):
        raise NotImplementedError
