"""SIGTERM while a handler is provably running: the service lets it finish
(its effect committed, its messages acknowledged), exits cleanly and in time,
and a fresh one takes over with nothing lost and nothing of the finished
work delivered again.

The handler is held running on purpose: the test takes an EXCLUSIVE lock on
the service's inbox table (``processed_messages``), which the handler's
transaction writes first, so the handler waits inside its transaction,
visibly (``evreg_entrypoint_in_progress``), until the test lets go."""
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest
import requests

from tests.support.stack import SEND_LEASE_SECONDS, running_stack
from tests.support.waiting import wait_until

ATTEMPTS, SEATS = 150, 60
HELD = 1.0            # seconds the running handler is held after SIGTERM
HANDLERS = {"capacity": "on_registration_requested", "notification": "on_status_changed"}
RETRY_DELAYS = (0.5, 1, 2, 2, 2, 2, 2, 2)
# Quiet at the end for longer than a send lease and the longest retry delay:
# a message sent again when a lease ran out, or a handler retried, shows itself.
QUIET = SEND_LEASE_SECONDS + max(RETRY_DELAYS) + 1


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from running_stack(tmp_path_factory, "graceful", "postgres",
                             RECEIVED_NOTICE_SECONDS="3600",
                             SEND_LEASE_SECONDS=str(SEND_LEASE_SECONDS),
                             HANDLER_RETRY_DELAYS=",".join(map(str, RETRY_DELAYS)))


def live(stack, name):
    return next(p for p in stack.processes if p.name == name and p.alive())


def in_progress(process, entrypoint):
    try:
        return process.metric("evreg_entrypoint_in_progress", entrypoint=entrypoint)
    except requests.RequestException:
        return 0


class InboxLock:
    """An EXCLUSIVE lock on a service's inbox table, in a transaction of the
    test's: every handler of that service waits at its first write."""

    def __init__(self, stack, service):
        self.connection = psycopg2.connect(stack.postgres.url(service))
        with self.connection.cursor() as cursor:
            cursor.execute("LOCK TABLE processed_messages IN EXCLUSIVE MODE")

    def release(self):
        self.connection.rollback()
        self.connection.close()


def stop_while_running(stack, name, lock):
    """SIGTERM to the live ``name`` while its handler waits on ``lock``;
    the handler is let go ``HELD`` seconds later. Returns what was seen."""
    process, entrypoint = live(stack, name), HANDLERS[name]
    wait_until(lambda: in_progress(process, entrypoint) >= 1, 30, interval=0.05,
               message=f"{name}.{entrypoint} running (held by the inbox lock)")
    log_before = process.log_path.stat().st_size
    started = time.monotonic()
    process.terminate()
    time.sleep(HELD)
    # Still there, and still running the handler: it waits for it.
    waited = process.alive() and in_progress(process, entrypoint) >= 1
    lock.release()
    code = process.wait(30)
    stopping = time.monotonic() - started
    after = process.log_path.read_text(errors="replace")[log_before:]
    # The entrypoint's own line, written after the messages were settled
    # (acked): "event capacity.on_registration_requested ok in 1634.2 ms".
    finished = [(outcome, float(ms)) for outcome, ms in re.findall(
        rf"event {name}\.{entrypoint} (\w+) in ([\d.]+) ms", after)]
    return {"service": name, "exit_code": code, "stopping_s": round(stopping, 1),
            "waited_for_the_handler": waited, "handler_runs_after_sigterm": finished}


def test_sigterm_while_a_handler_runs_lets_it_finish_and_loses_nothing(stack):
    event = stack.create_event(capacity=SEATS)
    url = f"{stack.base_url}/api/v1/events/{event['slug']}/registrations"

    def attempt(index):
        response = requests.post(url, json={"name": "G", "email": f"graceful-{index}@example.org"},
                                 timeout=60)
        assert response.status_code == 202, response.text
        return response.json()

    stops = []
    lock = InboxLock(stack, "capacity")
    try:
        with ThreadPoolExecutor(20) as pool:
            future = pool.map(attempt, range(ATTEMPTS))
            stops.append(stop_while_running(stack, "capacity", lock))
            # Capacity's decisions are what notification handles: hold its
            # inbox before a fresh capacity starts deciding.
            lock = InboxLock(stack, "notification")
            stack.start_service("capacity")
            stops.append(stop_while_running(stack, "notification", lock))
            stack.start_service("notification")
            answers = list(future)
    finally:
        try:
            lock.release()
        except psycopg2.Error:
            pass
    wait_until(lambda: requests.get(f"{stack.base_url}/api/v1/events/{event['slug']}/stats",
                                    headers=stack.admin_headers(), timeout=10).json()["pending"] == 0,
               120, interval=1, message="every registration decided")
    stats = requests.get(f"{stack.base_url}/api/v1/events/{event['slug']}/stats",
                         headers=stack.admin_headers(), timeout=10).json()
    wait_until(lambda: len(stack.smtp.mailbox.messages) >= ATTEMPTS, 120, interval=1,
               message="every attendee told")
    time.sleep(QUIET)
    mail = stack.smtp.mailbox.by_recipient()
    fresh = {name: live(stack, name) for name in HANDLERS}
    seen = {name: {handler: {
        "redelivered": fresh[name].metric("evreg_messages_redelivered_total", handler=handler),
        "duplicates_absorbed": fresh[name].metric("evreg_duplicates_absorbed_total", handler=handler)}
        for handler in (HANDLERS[name], "on_event_published")} for name in HANDLERS}
    print("GRACEFUL STOP REPORT " + json.dumps({"stops": stops, "fresh_replicas": seen}))

    for stop in stops:
        assert stop["exit_code"] == 0, stop                        # a clean exit
        assert stop["waited_for_the_handler"], stop                # it waited for the handler
        assert HELD <= stop["stopping_s"] < 30, stop               # ... and no longer than needed
        # The held handler finished after SIGTERM, successfully, with its
        # messages acknowledged (the line is written after the ack).
        assert [o for o, _ in stop["handler_runs_after_sigterm"]][:1] == ["ok"], stop
        assert stop["handler_runs_after_sigterm"][0][1] >= HELD * 1000, stop
    for name in HANDLERS:
        # Nothing the stopped process had finished came back to the fresh one:
        # a redelivered message already processed would be counted here.
        # (Messages it had received but not started do come back, flagged
        # redelivered, and are processed there for the first time.)
        assert all(n["duplicates_absorbed"] == 0 for n in seen[name].values()), seen
    assert (stats["confirmed"], stats["waitlisted"]) == (SEATS, ATTEMPTS - SEATS)
    assert len(answers) == ATTEMPTS and len(mail) == ATTEMPTS
    assert all(len(messages) == 1 for messages in mail.values())
