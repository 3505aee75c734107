"""The one entry point every service runs through: ``python -m services.<name>``.

It is what ``make run-<service>`` and the docker-compose commands execute. It
patches eventlet before anything else is imported, checks that the broker and
the database answer (one clear line if not), applies the migrations, serves
metrics, then hands over to nameko, which turns SIGTERM into a graceful stop.
"""
from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings


def main(service: str) -> None:
    quiet_eventlet_warning()
    import eventlet
    eventlet.monkey_patch()
    from psycogreen.eventlet import patch_psycopg
    patch_psycopg()

    from shared.config import Settings
    from shared.logs import configure_logging

    settings = Settings.from_env(service)
    configure_logging(service, settings.log_format, settings.log_level)
    module = importlib.import_module(f"services.{service}.service")
    preflight(settings, getattr(module, "MIGRATIONS", None))
    if hasattr(module, "preflight"):
        module.preflight(settings)

    from shared import metrics

    metrics.serve(settings.metrics_port, readiness(settings))
    logging.getLogger(service).info("%s starting (broker %s)", service, redact(settings.amqp_uri))
    run_until_stopped(service_class(service), settings.nameko_config())
    logging.getLogger(service).info("%s stopped", service)


def service_class(service: str) -> type:
    """The nameko service class of ``services/<service>/service.py``."""
    module = importlib.import_module(f"services.{service}.service")
    return next(value for value in vars(module).values()
                if isinstance(value, type) and getattr(value, "name", None) == service)


def readiness(settings):
    """What /ready on the operations port checks: the broker and the database."""
    from kombu import Connection

    from shared.db import check_reachable, make_engine
    engine = make_engine(settings.database_url, pool_size=1) if settings.database_url else None

    def ready():
        checks = {}
        try:
            with Connection(settings.amqp_uri, connect_timeout=2) as connection:
                connection.ensure_connection(max_retries=1)
            checks["broker"] = "ok"
        except Exception:
            checks["broker"] = "unreachable"
        if engine is not None:
            try:
                check_reachable(engine)
                checks["database"] = "ok"
            except Exception:
                checks["database"] = "unreachable"
        return all(value == "ok" for value in checks.values()), checks
    return ready


def quiet_eventlet_warning() -> None:
    # eventlet announces its maintenance mode on import; nameko 2 needs it.
    warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def run_until_stopped(service_cls, config: dict) -> None:
    """Like ``nameko run``: SIGTERM or Ctrl-C stop the service gracefully
    (in-flight workers finish, their messages are acked; unstarted ones stay
    on the broker). A second signal while stopping is ignored, a third kills."""
    import errno
    import signal

    import eventlet
    from nameko.runners import ServiceRunner

    runner = ServiceRunner(config)
    runner.add_service(service_cls)
    signals = []

    def on_signal(signum, frame):
        signals.append(signum)
        if len(signals) == 1:
            eventlet.spawn_n(runner.stop)
        elif len(signals) >= 3:
            eventlet.spawn_n(runner.kill)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runner.start()
    [container] = runner.containers
    waiter = eventlet.spawn(container.wait)
    while True:
        try:
            waiter.wait()
            return
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue              # a signal arrived while waiting: keep waiting
            _die()
        except Exception:
            _die()


def _die() -> None:
    """The container died of an error it could not handle: exit, so that the
    supervisor (compose, make run) starts a fresh one."""
    logging.getLogger(__name__).critical("the service died; exiting", exc_info=True)
    sys.stdout.flush()
    os._exit(1)


def redact(url: str) -> str:
    from shared.config import redact_url
    return redact_url(url)


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def check_broker(amqp_uri: str, wait_seconds: float) -> None:
    from kombu import Connection
    try:
        with Connection(amqp_uri, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=max(1, int(wait_seconds / 2)),
                                         interval_start=1, interval_step=1, interval_max=2)
    except Exception as exc:
        fail(f"cannot reach RabbitMQ at {redact(amqp_uri)} ({type(exc).__name__}: "
             f"{str(exc)[:120]}); start one with 'rabbitmq-server -detached' "
             f"or 'docker compose up -d rabbitmq', or set AMQP_URI")


def check_database(url: str, migrations) -> None:
    from shared.db import check_reachable, make_engine, run_migrations
    engine = make_engine(url, pool_size=1)
    try:
        check_reachable(engine)
    except Exception as exc:
        hint = ("start it with 'pg_ctlcluster 15 main start' or 'docker compose up -d postgres'"
                if not url.startswith("sqlite") else "check that var/ is writable")
        first_line = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:160]
        fail(f"cannot reach the database at {redact(url)} ({first_line}); {hint}")
    try:
        if migrations is not None:
            run_migrations(engine, migrations)
    finally:
        engine.dispose()


def preflight(settings, migrations) -> None:
    check_broker(settings.amqp_uri, settings.startup_wait_seconds)
    if settings.database_url:
        check_database(settings.database_url, migrations)
