"""What the gateway makes of its services' answers, without HTTP."""
from services.gateway import views

from . import samples


def test_the_public_view_of_an_event_leaves_out_what_only_organisers_see():
    public = views.public_event(samples.event())
    assert "join_url" not in public and "revision" not in public
    assert public["slug"] == "conf" and public["sessions"] == samples.event()["sessions"]


MAIL = {"queued": 1, "sent": 5, "failed": 0, "withdrawn": 0, "undeliverable": 1, "unsubscribed": 2}


def test_stats_put_each_pool_next_to_its_counts():
    seats = {"pools": {"event": {"capacity": 10, "used": 3, "left": 7},
                       "category:local": {"capacity": 5, "used": 2, "left": 3},
                       "category:remote": {"capacity": None, "used": 0, "left": None},
                       "session:day-1": {"capacity": 8, "used": 3, "left": 5}},
             "states": {}}
    stats = views.stats("conf", samples.STATS, seats, MAIL, str.lower, [])
    assert stats["event"] == "conf"
    assert stats["seats"] == {"capacity": 10, "used": 3, "left": 7}
    assert stats["confirmed"] == 3 and stats["cancelled"] == 1
    assert stats["per_category"] == {
        "local": {"seats": {"capacity": 5, "used": 2, "left": 3}, **samples.counts(confirmed=2)},
        "remote": {"seats": {"capacity": None, "used": 0, "left": None}}}     # nobody yet
    assert stats["per_session"]["day-1"]["seats"]["left"] == 5
    assert stats["per_language"] == samples.STATS["per_language"]
    assert stats["mail"] == MAIL


def test_stats_of_an_event_capacity_has_not_heard_of_yet():
    stats = views.stats("conf", samples.STATS, {"pools": {}, "states": {}}, MAIL, str.lower,
                        [])
    assert stats["seats"] == {"capacity": None, "used": 0, "left": None}
    assert stats["per_category"] == samples.STATS["per_category"]


class Clock:
    def __init__(self):
        self.now, self.pauses = 0.0, []

    def sleep(self, seconds):
        self.pauses.append(seconds)
        self.now += seconds


def test_waiting_ends_as_soon_as_the_registration_is_decided():
    clock = Clock()
    answers = iter(["pending", "pending", "confirmed"])
    result = views.wait_while_pending(lambda: {"status": next(answers)}, 30, clock.sleep,
                                      lambda: clock.now)
    assert result == {"status": "confirmed"}
    assert clock.pauses == [0.1, 0.15000000000000002]      # growing pauses


def test_waiting_gives_up_at_the_deadline_with_the_pending_registration():
    clock = Clock()
    result = views.wait_while_pending(lambda: {"status": "pending"}, 5, clock.sleep,
                                      lambda: clock.now)
    assert result == {"status": "pending"}
    assert abs(clock.now - 5) < 1e-9 and max(clock.pauses) <= 1.0


def test_no_wait_asks_once():
    calls = []
    views.wait_while_pending(lambda: calls.append(1) or {"status": "pending"}, 0,
                             lambda s: None)
    assert calls == [1]
