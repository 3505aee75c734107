"""Property-based test of the seat ledger against a real (SQLite) database:
for any sequence of reservations, cancellations, confirmations, expiries and
capacity changes, no pool ever gives more seats than it has, the counters
match the reservations, no one waits while a seat they fit is free, and the
waiting list keeps its order."""
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from services.capacity import ledger, seats
from services.capacity.models import metadata, reservations, seat_pools
from services.capacity.models import outbox as outbox_table
from shared.contracts import RegistrationCancelled, RegistrationConfirmed, RegistrationRequested
from shared.db import make_engine, transaction
from shared.schemas import EventSpec
from tests.conftest import RecordingOutbox
from tests.support.documents import event_document

CATEGORIES = ["local", "international"]
SESSIONS = ["a", "b"]
# Mostly small, finite pools: contested seats are where the rules matter.
capacities = st.sampled_from([0, 1, 1, 2, 2, 3, None])


class SeatLedger(RuleBasedStateMachine):
    registrations = Bundle("registrations")

    def __init__(self):
        super().__init__()
        self.folder = tempfile.mkdtemp()
        self.engine = make_engine(f"sqlite:///{self.folder}/capacity.db")
        metadata.create_all(self.engine)
        self.db = sessionmaker(self.engine, expire_on_commit=False)
        self.outbox = RecordingOutbox(outbox_table)
        self.revision = 0
        self.count = 0
        self.used_before = {}

    def teardown(self):
        self.engine.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)

    def describe(self, capacity, category_caps, session_caps, hold):
        self.revision += 1
        self.remember_usage()
        document = event_document(
            slug="conf", capacity=capacity, confirmation_window="PT1H" if hold else None,
            categories=[{"slug": c, "capacity": cap} for c, cap in zip(CATEGORIES, category_caps)],
            sessions=[{"slug": s, "title": {"en": s}, "capacity": cap,
                       "starts_at": "2027-01-01T10:00:00Z", "ends_at": "2027-01-01T11:00:00Z"}
                      for s, cap in zip(SESSIONS, session_caps)])
        with transaction(self.db) as session:
            seats.apply_event(session, self.outbox, EventSpec.model_validate_json(json.dumps(document)),
                              self.revision)

    @initialize(capacity=capacities, category_caps=st.tuples(capacities, capacities),
                session_caps=st.tuples(capacities, capacities), hold=st.booleans(),
                waitlist=st.sampled_from([True, True, True, False]))
    def start(self, capacity, category_caps, session_caps, hold, waitlist):
        self.hold = hold
        self.describe(capacity, category_caps, session_caps, hold)
        if not waitlist:
            with transaction(self.db) as session:
                session.execute(update(seats.seat_events).values(waitlist=False))

    def remember_usage(self):
        with transaction(self.db) as session:
            self.used_before = {r.pool: r.used for r in session.execute(select(seat_pools))}

    @rule(target=registrations, category=st.sampled_from(CATEGORIES),
          sessions=st.lists(st.sampled_from(SESSIONS), min_size=1, max_size=2, unique=True))
    def reserve(self, category, sessions):
        self.remember_usage()
        self.count += 1
        registration_id = f"r{self.count}"
        with transaction(self.db) as session:
            seats.reserve(session, self.outbox, RegistrationRequested(
                registration_id=registration_id, event_slug="conf", category=category,
                sessions=sessions, requested_at=datetime.now(UTC)))
        return registration_id

    @rule(registration_id=registrations)
    def cancel(self, registration_id):
        self.remember_usage()
        with transaction(self.db) as session:
            seats.release(session, self.outbox, RegistrationCancelled(
                registration_id=registration_id, event_slug="conf"))

    @rule(registration_id=registrations)
    def confirm(self, registration_id):
        self.remember_usage()
        with transaction(self.db) as session:
            seats.confirm_hold(session, self.outbox, RegistrationConfirmed(
                registration_id=registration_id, event_slug="conf"))

    @rule(registration_id=registrations)
    def expire(self, registration_id):
        self.remember_usage()
        past = datetime.now(UTC) - timedelta(hours=2)
        with transaction(self.db) as session:
            session.execute(update(reservations).where(
                reservations.c.registration_id == registration_id,
                reservations.c.state == "held").values(hold_expires_at=past))
        with transaction(self.db) as session:
            seats.expire_hold(session, self.outbox, registration_id, datetime.now(UTC))

    @rule(capacity=capacities, category_caps=st.tuples(capacities, capacities),
          session_caps=st.tuples(capacities, capacities))
    def change_capacity(self, capacity, category_caps, session_caps):
        self.describe(capacity, category_caps, session_caps, self.hold)

    # -- what must always hold ------------------------------------------------------------
    def state(self):
        with transaction(self.db) as session:
            pools = {r.pool: ledger.Pool(r.pool, r.capacity, r.used)
                     for r in session.execute(select(seat_pools))}
            rows = session.execute(select(reservations)).all()
        return pools, rows

    @invariant()
    def no_pool_gives_more_than_it_has(self):
        pools, _ = self.state()
        for key, pool in pools.items():
            if pool.capacity is not None:
                # Lowering a capacity keeps seats already given, but no new
                # seat is ever given beyond it.
                assert pool.used <= max(pool.capacity, self.used_before.get(key, 0)), key

    @invariant()
    def counters_match_the_reservations(self):
        pools, rows = self.state()
        for key, pool in pools.items():
            seated = sum(1 for r in rows if r.state in ("held", "confirmed")
                         and key in ledger.pool_keys(r.category, r.sessions))
            assert pool.used == seated, key

    @invariant()
    def nobody_waits_for_a_seat_that_is_free(self):
        pools, rows = self.state()
        for row in rows:
            if row.state == "waitlisted":
                assert not ledger.can_seat(pools, ledger.pool_keys(row.category, row.sessions))

    @invariant()
    def the_waiting_list_keeps_its_order(self):
        """Whoever was promoted joined the list before anyone with the same
        needs who is still waiting."""
        _, rows = self.state()
        decided = self.outbox.of_type(seats.SeatDecided)
        arrival = {d.registration_id: i for i, d in enumerate(decided) if d.outcome == "waitlisted"}
        needs = {r.registration_id: ledger.pool_keys(r.category, r.sessions) for r in rows}
        waiting = [r.registration_id for r in rows if r.state == "waitlisted"]
        for promoted in (d.registration_id for d in decided if d.promoted):
            for other in waiting:
                if needs[other] == needs[promoted]:
                    assert arrival[other] > arrival[promoted]

    @invariant()
    def positions_run_from_one_without_gaps(self):
        _, rows = self.state()
        with transaction(self.db) as session:
            for category in CATEGORIES:
                waiting = sorted((r for r in rows if r.state == "waitlisted" and r.category == category),
                                 key=lambda r: r.queue_seq)
                positions = [seats.waitlist_position(session, r.registration_id) for r in waiting]
                assert positions == list(range(1, len(waiting) + 1))


# make mutate runs this test against every mutant of the seat modules: there it runs
# the "mutation" profile (LEDGER_PROFILE=mutation): fewer examples, derandomized so that
# a mutant's verdict is the same on every run, and no shrinking (a failure is enough).
settings.register_profile("ledger", max_examples=60, stateful_step_count=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ledger-mutation", settings.get_profile("ledger"), max_examples=20,
                          derandomize=True, database=None, phases=[Phase.explicit, Phase.generate])
SeatLedger.TestCase.settings = settings.get_profile(
    "ledger-mutation" if os.environ.get("LEDGER_PROFILE") == "mutation" else "ledger")
test_seat_ledger = SeatLedger.TestCase
