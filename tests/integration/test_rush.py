"""A registration rush: 1,000 concurrent attempts through the gateway for 300
seats, two capacity replicas, PostgreSQL. Exactly 300 seats are given, the
700 others wait in positions 1..700, and 50 cancellations promote the first 50
waiting, one after the other, in order."""
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.stack import running_stack
from tests.support.waiting import wait_until

ATTEMPTS, SEATS, CANCELLATIONS, CLIENTS = 1000, 300, 50, 100


@pytest.fixture(scope="module")
def rush_stack(tmp_path_factory):
    # a second capacity replica
    yield from running_stack(tmp_path_factory, "rush", "postgres", replicas=["capacity"])


def stats(stack, slug):
    return requests.get(f"{stack.base_url}/api/v1/events/{slug}/stats",
                        headers=stack.admin_headers(), timeout=30).json()


@pytest.mark.timeout(600)
def test_a_rush_never_oversells_and_keeps_the_waiting_order(rush_stack):
    stack = rush_stack
    event = stack.create_event(capacity=SEATS)
    slug = event["slug"]
    url = f"{stack.base_url}/api/v1/events/{slug}/registrations"

    def attempt(index):
        body = {"name": f"Attendee {index}", "email": f"rush-{index}@example.org"}
        for _ in range(5):
            response = requests.post(url, json=body, timeout=60,
                                     headers={"Idempotency-Key": f"rush-{index}"})
            if response.status_code == 202:
                return response.json()
            assert response.status_code == 503, response.text     # busy: retry with the key
            time.sleep(1)
        raise AssertionError("gave up")

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(attempt, range(ATTEMPTS)))
    assert len({a["id"] for a in answers}) == ATTEMPTS
    wait_until(lambda: stats(stack, slug)["pending"] == 0, 240, interval=1,
               message="every attempt to be decided")
    decided = time.monotonic() - started
    counts = stats(stack, slug)
    assert (counts["confirmed"], counts["waitlisted"]) == (SEATS, ATTEMPTS - SEATS)
    assert counts["seats"] == {"capacity": SEATS, "used": SEATS, "left": 0}

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(stack.status, answers))
    by_position = {s["waitlist_position"]: s for s in statuses if s["status"] == "waitlisted"}
    assert sorted(by_position) == list(range(1, ATTEMPTS - SEATS + 1))        # no gap, no repeat

    # Every waiting attendee was told their position once, and the told
    # positions are 1..700 too (each exact when it was given).
    wait_until(lambda: len(stack.smtp.mailbox.messages) >= ATTEMPTS, 240, interval=1,
               message="an email to every attempt")
    told = []
    mail = stack.smtp.mailbox.by_recipient()
    for status in statuses:
        messages = mail[status["email"]]
        assert len(messages) == 1, status["email"]
        if status["status"] == "waitlisted":
            text = messages[0].get_body(("plain",)).get_content()
            told.append(int(re.search(r"position (\d+)", text).group(1)))
    assert sorted(told) == list(range(1, ATTEMPTS - SEATS + 1))

    # Cancellations, one after the other: each promotes the head of the list.
    answer_of = {a["id"]: a for a in answers}
    seated = [a for a, s in zip(answers, statuses) if s["status"] == "confirmed"]
    for index in range(CANCELLATIONS):
        assert requests.post(seated[index]["links"]["cancel"], timeout=30).status_code == 200
        stack.wait_for_status(answer_of[by_position[index + 1]["id"]], "confirmed", timeout=30)
    counts = stats(stack, slug)
    assert (counts["confirmed"], counts["waitlisted"], counts["cancelled"]) == (
        SEATS, ATTEMPTS - SEATS - CANCELLATIONS, CANCELLATIONS)
    rest = [stack.status(answer_of[by_position[p]["id"]])
            for p in range(CANCELLATIONS + 1, CANCELLATIONS + 11)]
    assert [r["waitlist_position"] for r in rest] == list(range(1, 11))
    # Each promoted attendee was told twice (waiting, then promoted), each
    # cancelled one twice (seated, then cancelled): once per cause.
    wait_until(lambda: len(stack.smtp.mailbox.messages) >= ATTEMPTS + 2 * CANCELLATIONS, 60,
               message="the promotion and cancellation emails")
    time.sleep(1)
    mail = stack.smtp.mailbox.by_recipient()
    promoted = [by_position[p]["email"] for p in range(1, CANCELLATIONS + 1)]
    assert all(len(mail[address]) == 2 for address in promoted)
    assert all("now yours" in mail[address][1]["Subject"] for address in promoted)
    assert all(len(mail[a["email"]]) == 2 for a in (statuses[answers.index(x)] for x in seated[:CANCELLATIONS]))
    assert len(stack.smtp.mailbox.messages) == ATTEMPTS + 2 * CANCELLATIONS
    print(f"{ATTEMPTS} attempts by {CLIENTS} clients decided in {decided:.1f} s")


def test_holds_expire_once_each_with_two_replicas(rush_stack):
    """Five holds, five waiting; nobody confirms. Both capacity replicas run
    the expiry timer: every hold expires once, the waiting get the seats as
    holds, those expire too, and nobody is told anything twice."""
    stack = rush_stack
    event = stack.create_event(capacity=5, confirmation_window="PT2S")
    answers = [stack.register(event["slug"], email=f"expiry-{i}@example.org") for i in range(10)]
    for answer in answers:
        stack.wait_for_status(answer, "expired", timeout=60)
    counts = stats(stack, event["slug"])
    assert counts["expired"] == 10 and counts["seats"]["used"] == 0
    wait_until(lambda: sum(len(stack.smtp.mailbox.to(a)) for a in
                           (f"expiry-{i}@example.org" for i in range(10))) >= 25, 30,
               message="hold, waiting, promotion and expiry emails")
    time.sleep(1)
    mail = stack.smtp.mailbox.by_recipient()
    kinds = {"Please confirm": "hold", "is now yours": "promoted", "waiting list": "waitlisted",
             "was released": "expired"}

    def told(index):
        return [[kind for words, kind in kinds.items() if words in message["Subject"]]
                for message in mail[f"expiry-{index}@example.org"]]
    # The first five held a seat and lost it; the next five waited, were given
    # the freed seats as holds, and lost them too: each told of each step once.
    assert [told(i) for i in range(5)] == [[["hold"], ["expired"]]] * 5
    assert [told(i) for i in range(5, 10)] == [[["waitlisted"], ["promoted"], ["expired"]]] * 5
