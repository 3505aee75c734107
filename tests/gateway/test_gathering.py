"""Concurrent registrations travel together: every request gets its own
answer, calls stay within their limit, and a failed call fails only its own
requests."""
import eventlet
import eventlet.event
import pytest

from services.gateway.gathering import Gatherer


class Registration:
    """A stand-in for register_many: answers each item with itself, slowly."""

    def __init__(self, fail_when=None):
        self.calls, self.in_flight, self.most_in_flight = [], 0, 0
        self.fail_when = fail_when

    def __call__(self, items):
        self.calls.append(list(items))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            eventlet.sleep(0.01)
            if self.fail_when and self.fail_when(items):
                raise ConnectionError("the broker went away")
            return [f"answer to {item}" for item in items]
        finally:
            self.in_flight -= 1


def submit_all(gatherer, registration, items):
    threads = [eventlet.spawn(gatherer.submit, registration, item) for item in items]
    results = []
    for thread in threads:
        try:
            results.append(thread.wait())
        except ConnectionError as exc:
            results.append(exc)
    return results


def test_a_request_alone_travels_alone_at_once():
    registration = Registration()
    assert Gatherer().submit(registration, "r1") == "answer to r1"
    assert registration.calls == [["r1"]]


def test_concurrent_requests_share_calls_and_each_gets_its_own_answer():
    registration = Registration()
    gatherer = Gatherer(max_in_flight=2, max_batch=50)
    items = [f"r{i}" for i in range(200)]
    assert submit_all(gatherer, registration, items) == [f"answer to {i}" for i in items]
    assert sorted(i for call in registration.calls for i in call) == sorted(items)   # each once
    assert len(registration.calls) < 20              # gathered, not one call each
    assert registration.most_in_flight <= 2
    assert max(len(call) for call in registration.calls) <= 50


def test_requests_travel_in_the_order_they_came():
    registration = Registration()
    items = [f"r{i:03d}" for i in range(100)]
    submit_all(Gatherer(max_in_flight=1), registration, items)
    assert [i for call in registration.calls for i in call] == items


def test_a_failed_call_fails_its_own_requests_only():
    registration = Registration(fail_when=lambda items: "r0" in items)
    gatherer = Gatherer(max_in_flight=1)
    results = submit_all(gatherer, registration, [f"r{i}" for i in range(30)])
    failed = {f"r{i}" for i, r in enumerate(results) if isinstance(r, ConnectionError)}
    assert failed == set(registration.calls[0])      # r0 travelled in the first call, alone
    assert all(r == f"answer to r{i}" for i, r in enumerate(results) if f"r{i}" not in failed)
    with pytest.raises(ConnectionError):
        gatherer.submit(registration, "r0")


def test_a_stalled_call_does_not_hold_up_the_requests_behind_it():
    """A call whose reply never comes (the broker went away after it was
    sent) gives up its slot after a while: the next request travels on its
    own and gets its own quick answer."""
    stalled = eventlet.event.Event()

    def register_many(items):
        if "stuck" in items:
            stalled.wait()            # a reply that never comes (until the test ends)
        return [f"answer to {item}" for item in items]

    gatherer = Gatherer(max_in_flight=1, stalled_after=0.05)
    stuck = eventlet.spawn(gatherer.submit, register_many, "stuck")
    eventlet.sleep(0)
    with eventlet.Timeout(2):
        assert gatherer.submit(register_many, "next") == "answer to next"
    stalled.send()
    assert stuck.wait() == "answer to stuck"
