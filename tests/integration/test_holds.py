"""Holds across a restart of the capacity service: expiry is read from the
database, not remembered by a running process, so a hold whose deadline (and
grace) passed while no capacity service ran is expired when one starts again,
and its seat goes to the first waiting, as a hold with a window of its own."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.support.stack import running_stack

WINDOW = timedelta(seconds=3)      # the event's confirmation window
GRACE = timedelta(seconds=2)       # services/capacity/seats.py HOLD_GRACE


@pytest.fixture(scope="module")
def holds_stack(tmp_path_factory):
    yield from running_stack(tmp_path_factory, "holds")


@pytest.mark.timeout(120)
def test_a_hold_that_runs_out_while_capacity_is_stopped_expires_when_it_is_back(holds_stack):
    stack = holds_stack
    event = stack.create_event(capacity=1, confirmation_window=f"PT{WINDOW.seconds}S")
    first = stack.register_in_turn(event["slug"], email="restart-first@example.org")
    held = stack.status(first)
    assert held["status"] == "held"
    second = stack.register_in_turn(event["slug"], email="restart-second@example.org")
    assert stack.status(second)["waitlist_position"] == 1

    [capacity] = [p for p in stack.processes if p.name == "capacity" and p.alive()]
    capacity.stop()
    try:
        # The deadline and the grace pass with no capacity service running.
        past_due = datetime.fromisoformat(held["hold_expires_at"]) + GRACE + timedelta(seconds=1)
        time.sleep(max(0.0, (past_due - datetime.now(UTC)).total_seconds()))
        assert stack.status(first)["status"] == "held"       # nothing expired it meanwhile
        # Too late to confirm: the registration service says so itself.
        assert requests.post(first["links"]["confirm"], timeout=20).status_code == 409
    finally:
        restarted = datetime.now(UTC)
        stack.start_service("capacity")

    assert stack.wait_for_status(first, "expired", timeout=20)
    promoted = stack.wait_for_status(second, "held", timeout=20)
    # The promoted attendee's window starts at the promotion, not before the stop.
    assert datetime.fromisoformat(promoted["hold_expires_at"]) >= restarted + WINDOW
    stats = requests.get(f"{stack.base_url}/api/v1/events/{event['slug']}/stats",
                         headers=stack.admin_headers(), timeout=20).json()
    assert stats["seats"] == {"capacity": 1, "used": 1, "left": 0}
    assert (stats["expired"], stats["held"], stats["waitlisted"]) == (1, 1, 0)
    subjects = [m["Subject"] for m in stack.smtp.mailbox.wait_for("restart-first@example.org", count=2)]
    assert "was released" in subjects[-1]
