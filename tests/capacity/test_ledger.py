import pytest

from services.capacity.ledger import Pool, Waiting, can_seat, give_back, pool_keys, promote, take


def pools(**capacities):
    return {key.replace("__", ":"): Pool(key.replace("__", ":"), cap) for key, cap in capacities.items()}


def test_a_seat_needs_room_in_every_pool():
    state = pools(event=10, category__local=1, session__a=5)
    needs = pool_keys("local", ["a"])
    assert needs == ["event", "category:local", "session:a"]
    take(state, needs)
    assert not can_seat(state, needs)
    assert state["event"].used == 1 and state["session:a"].used == 1   # all or nothing


def test_unlimited_pools_always_have_room():
    state = pools(event=None)
    for _ in range(1000):
        take(state, ["event"])
    assert state["event"].used == 1000


def test_promotion_keeps_order_and_skips_who_does_not_fit():
    state = pools(event=3, session__a=1, session__b=5)
    state["session:a"].used = 1
    waiting = [Waiting("w1", pool_keys(None, ["a"]), 1),
               Waiting("w2", pool_keys(None, ["b"]), 2),
               Waiting("w3", pool_keys(None, ["b"]), 3),
               Waiting("w4", pool_keys(None, ["b"]), 4)]
    seated = promote(state, waiting)
    assert [w.registration_id for w in seated] == ["w2", "w3", "w4"]
    assert state["event"].used == 3


def test_a_seat_that_does_not_fit_is_not_taken_at_all():
    state = pools(event=10, session__a=1)
    state["session:a"].used = 1
    with pytest.raises(ValueError, match="^no room$"):
        take(state, pool_keys(None, ["a"]))
    assert (state["event"].used, state["session:a"].used) == (0, 1)     # all or nothing


def test_giving_back_frees_one_seat_in_every_pool_it_drew_from_and_never_goes_below_zero():
    state = pools(event=10, category__local=2, session__a=5)
    state["event"].used, state["category:local"].used, state["session:a"].used = 3, 1, 0
    give_back(state, pool_keys("local", ["a", "b"]))   # session:b is not a pool: ignored
    assert {key: pool.used for key, pool in state.items()} == {
        "event": 2, "category:local": 0, "session:a": 0}
    give_back(state, ["other"])                        # a pool it never drew from: nothing
    assert {key: pool.used for key, pool in state.items()} == {
        "event": 2, "category:local": 0, "session:a": 0}


def test_promotion_without_an_event_pool_is_decided_by_the_other_pools():
    state = pools(session__a=1, session__b=1)
    waiting = [Waiting("w1", ["event", "session:a"], 1), Waiting("w2", ["event", "session:a"], 2),
               Waiting("w3", ["event", "session:b"], 3)]
    assert [w.registration_id for w in promote(state, waiting)] == ["w1", "w3"]


def test_promotion_follows_the_queue_not_the_list_order_and_stops_at_a_full_event():
    state = pools(event=1)
    waiting = [Waiting("late", ["event"], 7), Waiting("early", ["event"], 3)]
    assert [w.registration_id for w in promote(state, waiting)] == ["early"]
    assert promote(state, [Waiting("next", ["event"], 9)]) == []
