"""Measure the registration pipeline on this machine.

    .venv/bin/python bench/pipeline.py [--database sqlite|postgres] [--count 50] [--burst 200]

1. latency: registrations one after another; for each, the time from the POST
   to the confirmation email's arrival at a real SMTP server (aiosmtpd).
2. burst: N registrations posted by 20 concurrent clients; the time until every
   one is decided and every email has arrived.

It runs the real services (one replica each) in a throwaway RabbitMQ vhost,
exactly as the integration tests do, and prints the conditions with the numbers.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402

from tests.harness import Stack, wait_until  # noqa: E402


def latency(stack: Stack, count: int) -> list[float]:
    event = stack.create_event(capacity=None)
    samples = []
    for index in range(count):
        address = f"latency-{index}@example.org"
        started = time.monotonic()
        stack.register(event["slug"], email=address)
        wait_until(lambda: stack.smtp.mailbox.to(address), 30, interval=0.005)
        samples.append(time.monotonic() - started)
    return samples


def burst(stack: Stack, count: int, clients: int = 20) -> tuple[float, float]:
    event = stack.create_event(capacity=None)
    url = f"{stack.base_url}/api/v1/events/{event['slug']}/registrations"
    before = len(stack.smtp.mailbox.messages)

    def post(index):
        response = requests.post(url, json={"name": "B", "email": f"burst-{index}@example.org"},
                                 timeout=60)
        response.raise_for_status()

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post, range(count)))
    accepted = time.monotonic() - started
    wait_until(lambda: len(stack.smtp.mailbox.messages) - before >= count, 300, interval=0.05)
    return accepted, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--burst", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), database=args.database)
        stack.start()
        try:
            latency(stack, 3)                                   # warm up
            samples = sorted(latency(stack, args.count))
            accepted, done = burst(stack, args.burst)
        finally:
            stack.stop()
    ms = [s * 1000 for s in samples]
    print(f"conditions: {os.cpu_count()} cores, {args.database}, one replica per service, "
          f"RabbitMQ on localhost, aiosmtpd on localhost")
    print(f"POST -> email, {args.count} sequential: median {statistics.median(ms):.0f} ms, "
          f"p95 {ms[int(len(ms) * 0.95) - 1]:.0f} ms, max {ms[-1]:.0f} ms")
    print(f"burst of {args.burst} by 20 clients: all accepted (202) in {accepted:.1f} s "
          f"({args.burst / accepted:.0f}/s); all emails in {done:.1f} s ({args.burst / done:.0f}/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
