"""``make run``: the four services as separate processes, in the foreground.

Checks the broker once (so a missing one is one line, not four), settles the
generated secrets before the children race for them, prints where the gateway
listens and the admin key, and on Ctrl-C or SIGTERM stops every child
gracefully (SIGTERM, then SIGKILL after a grace period).
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time

from shared.config import SERVICES, Settings
from shared.startup import check_broker, redact

GRACE_SECONDS = 20


def main() -> int:
    settings = Settings.from_env("gateway")
    check_broker(settings.amqp_uri, settings.startup_wait_seconds)
    admin_key = settings.admin_api_key
    settings.secret_key  # noqa: B018 - create it now, once
    children = {name: start(name) for name in SERVICES}
    host, _, port = settings.gateway_address.rpartition(":")
    shown = "localhost" if host in ("0.0.0.0", "", "::") else host
    print(f"\n  gateway:       http://{shown}:{port}/  (API under /api/v1, OpenAPI at /openapi.json)"
          f"\n  admin API key: {admin_key}"
          f"\n  broker:        {redact(settings.amqp_uri)}"
          f"\n  press Ctrl-C to stop\n", flush=True)
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    restarts: dict[str, list[float]] = {name: [] for name in SERVICES}
    while not stopping:
        time.sleep(0.2)
        for name, child in list(children.items()):
            if child.poll() is None or stopping:
                continue
            recent = [t for t in restarts[name] if t > time.monotonic() - 60]
            if child.returncode == 2 or len(recent) >= 3:
                # exit 2: a dependency is missing (said in one line above)
                print(f"error: {name} stopped (exit {child.returncode}); stopping the rest",
                      file=sys.stderr, flush=True)
                return shutdown(children)
            print(f"{name} exited ({child.returncode}); starting it again", file=sys.stderr, flush=True)
            restarts[name] = recent + [time.monotonic()]
            children[name] = start(name)
    return shutdown(children)


def start(name: str) -> subprocess.Popen:
    # Its own session: Ctrl-C reaches the supervisor only, which stops each child once.
    return subprocess.Popen([sys.executable, "-m", f"services.{name}"], start_new_session=True)


def shutdown(children: dict) -> int:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for name, child in children.items():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop in {GRACE_SECONDS}s; killing it", file=sys.stderr)
            child.kill()
            child.wait()
    return 0 if all(c.returncode in (0, -signal.SIGTERM) for c in children.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
