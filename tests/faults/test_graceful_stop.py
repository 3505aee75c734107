"""SIGTERM in the middle of a burst: the service finishes what it started,
acknowledges nothing unfinished, exits cleanly, and a fresh one takes over
with nothing lost."""
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.stack import running_stack
from tests.support.waiting import wait_until

ATTEMPTS, SEATS = 150, 60


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from running_stack(tmp_path_factory, "graceful", "postgres",
                             RECEIVED_NOTICE_SECONDS="3600")


def test_sigterm_mid_burst_loses_nothing(stack):
    event = stack.create_event(capacity=SEATS)
    url = f"{stack.base_url}/api/v1/events/{event['slug']}/registrations"

    def attempt(index):
        response = requests.post(url, json={"name": "G", "email": f"graceful-{index}@example.org"},
                                 timeout=60)
        assert response.status_code == 202, response.text
        return response.json()

    with ThreadPoolExecutor(20) as pool:
        future = pool.map(attempt, range(ATTEMPTS))
        time.sleep(1.5)
        for name in ("capacity", "notification"):
            process = next(p for p in stack.processes if p.name == name and p.alive())
            started = time.monotonic()
            assert process.stop(timeout=30) == 0               # a clean exit, in time
            stopping = time.monotonic() - started
            stack.start_service(name)
        answers = list(future)
    wait_until(lambda: requests.get(f"{stack.base_url}/api/v1/events/{event['slug']}/stats",
                                    headers=stack.admin_headers(), timeout=10).json()["pending"] == 0,
               120, interval=1, message="every registration decided")
    stats = requests.get(f"{stack.base_url}/api/v1/events/{event['slug']}/stats",
                         headers=stack.admin_headers(), timeout=10).json()
    assert (stats["confirmed"], stats["waitlisted"]) == (SEATS, ATTEMPTS - SEATS)
    wait_until(lambda: len(stack.smtp.mailbox.messages) >= ATTEMPTS, 120, interval=1,
               message="every attendee told")
    time.sleep(2)
    mail = stack.smtp.mailbox.by_recipient()
    assert len(answers) == ATTEMPTS and len(mail) == ATTEMPTS
    assert all(len(messages) == 1 for messages in mail.values())
    assert stopping < 30
