"""The webinar series over the real services on PostgreSQL: sessions added to
an event followed by its attendees, a session that fills, a cancelled one,
and a PATCH sent twice."""
from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from icalendar import Calendar
from sqlalchemy import text

from shared.db import make_engine
from tests.support.stack import SEND_LEASE_SECONDS, running_stack
from tests.support.waiting import wait_until

RETRY_DELAYS = (0.5, 1, 1, 1)
QUIET = SEND_LEASE_SECONDS + max(RETRY_DELAYS) + 1   # then "nothing more" is a fact
JOIN = "https://meet.example.org/series"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from running_stack(tmp_path_factory, "series", "postgres",
                             SEND_LEASE_SECONDS=str(SEND_LEASE_SECONDS),
                             HANDLER_RETRY_DELAYS=",".join(map(str, RETRY_DELAYS)))


def webinar(slug: str, day: int, capacity: int | None = None, **fields) -> dict:
    return {"slug": slug, "title": {"en": f"Webinar {slug}", "ar": f"الندوة {slug}"},
            "starts_at": f"2027-05-{day:02d}T14:00:00+03:00",
            "ends_at": f"2027-05-{day:02d}T15:30:00+03:00", "capacity": capacity, **fields}


def series(stack, *sessions, **fields) -> dict:
    return stack.create_event(title={"en": "Webinar series", "ar": "سلسلة الندوات"},
                              languages=["en", "ar"], join_url=JOIN, capacity=None,
                              sessions=list(sessions) or [webinar("w1", 10), webinar("w2", 17)],
                              reminders=["P1D"], **fields)


def patch(stack, slug: str, **changes) -> requests.Response:
    return requests.patch(f"{stack.base_url}/api/v1/events/{slug}", json=changes,
                          headers=stack.admin_headers(), timeout=20)


def mails(stack, address: str, subject: str) -> list:
    return [m for m in stack.smtp.mailbox.to(address) if subject in m["Subject"]]


def wait_for_mail(stack, address: str, subject: str) -> object:
    return wait_until(lambda: mails(stack, address, subject), 20, interval=0.1,
                      message=f"{subject!r} to {address}")[0]


def vevents(ics: bytes | str) -> list:
    return Calendar.from_ical(ics).walk("VEVENT")


def invite_of(message) -> list:
    [invite] = [p for p in message.iter_attachments() if p.get_filename() == "invite.ics"]
    return vevents(invite.get_content())


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def pending_reminders(stack, registration_id: str) -> list[str]:
    engine = make_engine(stack.database_url("notification"), pool_size=1)
    try:
        with engine.connect() as connection:
            return sorted(connection.execute(text(
                "SELECT session_slug FROM scheduled_messages "
                "WHERE registration_id = :id AND state = 'pending'"),
                {"id": registration_id}).scalars())
    finally:
        engine.dispose()


def registered(stack, slug: str, email: str, **fields) -> dict:
    answer = stack.register_in_turn(slug, email=email, **fields)
    stack.wait_for_status(answer, "confirmed")
    wait_for_mail(stack, email, "")          # the confirmation: notification knows them now
    return answer


def test_a_follower_gets_an_added_webinar_and_a_chooser_a_link_that_adds_it(stack):
    event = series(stack)
    slug = event["slug"]
    follower = registered(stack, slug, "follower@example.org", name="ليلى", language="ar",
                          timezone="America/Toronto")
    chooser = registered(stack, slug, "chooser@example.org", sessions=["w1"])
    assert stack.status(follower)["follows"] is True and stack.status(chooser)["follows"] is False

    added = [*event["sessions"], webinar("w3", 24)]
    assert patch(stack, slug, sessions=added).status_code == 200

    told = wait_for_mail(stack, "follower@example.org", "الندوة w3")
    body = text_of(told)
    assert JOIN in body and "تورونتو" in body and "إسطنبول" in body    # both zones, in Arabic
    assert 'dir="rtl"' in told.get_body(("html",)).get_content()
    assert len(invite_of(told)) == 3
    wait_until(lambda: "w3" in stack.status(follower)["sessions"], 10, message="w3 held")
    calendar = requests.get(follower["links"]["calendar"], timeout=10)
    assert sorted(str(v["UID"]).split(".")[1].split("@")[0] for v in vevents(calendar.content)) == \
        ["w1", "w2", "w3"]
    wait_until(lambda: pending_reminders(stack, follower["id"]) == ["w1", "w2", "w3"], 10,
               message="the new webinar's reminder planned")

    offer = wait_for_mail(stack, "chooser@example.org", "New session: Webinar w3")
    assert stack.status(chooser)["sessions"] == ["w1"]                     # not enrolled unasked
    [link] = [line for line in text_of(offer).splitlines() if "&add=w3" in line]
    assert offer["List-Unsubscribe"]
    token = parse_qs(urlparse(link).query)["token"][0]
    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and "w3" in page.text
    asked = requests.post(f"{stack.base_url}/api/v1/registrations/{chooser['id']}/sessions",
                          params={"token": token}, json={"session": "w3"}, timeout=10)
    assert asked.status_code == 202, asked.text
    wait_until(lambda: stack.status(chooser)["sessions"] == ["w1", "w3"], 10, message="w3 added")
    assert len(invite_of(wait_for_mail(stack, "chooser@example.org", "Your seat in Webinar w3"))) == 2

    # The same PATCH again, and the event as it is: nobody is told twice.
    before = {a: len(stack.smtp.mailbox.to(a)) for a in ("follower@example.org", "chooser@example.org")}
    assert patch(stack, slug, sessions=added).status_code == 200
    time.sleep(QUIET)
    assert {a: len(stack.smtp.mailbox.to(a)) for a in before} == before


def test_a_full_added_webinar_seats_followers_in_registration_order_then_waitlists(stack):
    event = series(stack)
    slug = event["slug"]
    people = [registered(stack, slug, f"order-{n}@example.org") for n in range(4)]
    assert patch(stack, slug, sessions=[*event["sessions"], webinar("w3", 24, capacity=2)]
                 ).status_code == 200
    for n in (0, 1):
        wait_for_mail(stack, f"order-{n}@example.org", "Your seat in Webinar w3")
    for n, position in ((2, 1), (3, 2)):
        waiting = wait_for_mail(stack, f"order-{n}@example.org", "Waiting list for Webinar w3")
        assert f"position {position}" in text_of(waiting)
        assert not invite_of_or_none(waiting)
    wait_until(lambda: stack.status(people[3])["sessions_waiting"] == ["w3"], 10,
               message="the waiting follower's view")
    assert "w3" not in stack.status(people[3])["sessions"]
    assert pending_reminders(stack, people[3]["id"]) == ["w1", "w2"]

    # The first follower leaves: the seat in w3 goes to the first in its line.
    requests.post(people[0]["links"]["cancel"], timeout=10).raise_for_status()
    freed = wait_for_mail(stack, "order-2@example.org", "Your seat in Webinar w3")
    assert "come free" in text_of(freed)
    wait_until(lambda: "w3" in stack.status(people[2])["sessions"], 10, message="w3 given")
    assert stack.status(people[3])["sessions_waiting"] == ["w3"]
    stats = requests.get(f"{stack.base_url}/api/v1/events/{slug}/stats",
                         headers=stack.admin_headers(), timeout=10).json()
    assert stats["per_session"]["w3"]["seats"]["used"] == 2
    assert stats["per_session"]["w3"]["waitlisted"] == 1


def invite_of_or_none(message) -> list:
    return [p for p in message.iter_attachments() if p.get_filename() == "invite.ics"]


def test_a_cancelled_webinar_is_announced_its_reminders_dropped_and_its_seats_freed(stack):
    event = series(stack, webinar("w1", 10), webinar("w2", 17, capacity=1))
    slug = event["slug"]
    both = registered(stack, slug, "both@example.org", language="ar", timezone="Asia/Baghdad")
    # w2 seats one: the follower holds it; a second person waits for w2 alone.
    waiting = stack.register_in_turn(slug, email="only@example.org", sessions=["w2"])
    stack.wait_for_status(waiting, "waitlisted")
    first_sequence = max(int(v["SEQUENCE"]) for v in vevents(
        requests.get(both["links"]["calendar"], timeout=10).content))
    assert pending_reminders(stack, both["id"]) == ["w1", "w2"]

    cancelled = [webinar("w1", 10), webinar("w2", 17, capacity=1, cancelled=True)]
    assert patch(stack, slug, sessions=cancelled).status_code == 200

    told = wait_for_mail(stack, "both@example.org", "الندوة w2")
    [entry] = invite_of(told)
    assert str(entry["STATUS"]) == "CANCELLED" and str(entry["UID"]).startswith(f"{both['id']}.w2@")
    assert int(entry["SEQUENCE"]) > first_sequence
    [invite] = [p for p in told.iter_attachments() if p.get_filename() == "invite.ics"]
    assert "METHOD:CANCEL" in invite.get_content()
    wait_until(lambda: pending_reminders(stack, both["id"]) == ["w1"], 10,
               message="the cancelled webinar's reminder dropped")
    view = stack.status(both)
    assert view["sessions"] == ["w1"] and view["sessions_cancelled"] == ["w2"]
    calendar = {str(v["UID"]).split(".")[1].split("@")[0]: str(v["STATUS"])
                for v in vevents(requests.get(both["links"]["calendar"], timeout=10).content)}
    assert calendar == {"w1": "CONFIRMED", "w2": "CANCELLED"}

    # Who waited for w2 alone is told, and nobody is promoted into it.
    last = wait_for_mail(stack, "only@example.org", "Cancelled: Webinar w2")
    assert "nothing more to wait for" in text_of(last)
    time.sleep(QUIET)
    assert stack.status(waiting)["status"] == "waitlisted"
    stats = requests.get(f"{stack.base_url}/api/v1/events/{slug}/stats",
                         headers=stack.admin_headers(), timeout=10).json()
    assert stats["per_session"]["w2"]["session_cancelled"] is True
    assert stats["per_session"]["w2"]["seats"]["used"] == 0
    assert len(mails(stack, "both@example.org", "الندوة w2")) == 1

    reopened = patch(stack, slug, sessions=[webinar("w1", 10), webinar("w2", 17)])
    assert reopened.status_code == 409


def test_cancelling_the_last_session_someone_holds_says_so(stack):
    event = series(stack)
    slug = event["slug"]
    registered(stack, slug, "last@example.org", sessions=["w2"])
    assert patch(stack, slug, sessions=[event["sessions"][0], {**event["sessions"][1],
                                                               "cancelled": True}]).status_code == 200
    told = wait_for_mail(stack, "last@example.org", "Cancelled: Webinar w2")
    assert "last session in your registration" in text_of(told)


def test_a_follower_who_stops_following_is_not_enrolled_in_later_webinars(stack):
    event = series(stack)
    slug = event["slug"]
    quitter = registered(stack, slug, "quitter@example.org")
    token = parse_qs(urlparse(quitter["links"]["manage"]).query)["token"][0]
    stopped = requests.post(f"{stack.base_url}/api/v1/registrations/{quitter['id']}/unfollow",
                            params={"token": token}, timeout=10)
    assert stopped.status_code == 200 and stopped.json()["follows"] is False
    time.sleep(1)     # capacity hears of it before the PATCH below
    assert patch(stack, slug, sessions=[*event["sessions"], webinar("w3", 24)]).status_code == 200
    wait_for_mail(stack, "quitter@example.org", "New session: Webinar w3")     # told, as a chooser
    assert stack.status(quitter)["sessions"] == ["w1", "w2"]
