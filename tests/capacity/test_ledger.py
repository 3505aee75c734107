from services.capacity.ledger import Pool, Waiting, can_seat, pool_keys, promote, take


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
